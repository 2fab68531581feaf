//! Resource names a function needs, read from its environment.
//!
//! # Environment variables (set by the CDK app on every Lambda function)
//! | variable | meaning | example |
//! |---|---|---|
//! | `MADOGUCHI_TABLE` | DynamoDB table (required) | `madoguchi-prod` |
//! | `MADOGUCHI_BUCKET_<NAME>` | bucket of the logical bucket `<name>` | `MADOGUCHI_BUCKET_ATTACHMENTS=madoguchi-prod-attachments` |
//! | `MADOGUCHI_QUEUE_<NAME>_URL` | URL of the logical queue `<name>` | `MADOGUCHI_QUEUE_NOTIFY_URL=https://sqs.../madoguchi-prod-notify` |
//! | `MADOGUCHI_DATA_KEY_ID` | symmetric KMS key (id, ARN or alias) for data keys | `alias/madoguchi-prod-data` |
//! | `MADOGUCHI_MAC_KEY_ID` | `HMAC_256` KMS key for blind indexes | `alias/madoguchi-prod-mac` |
//! | `MADOGUCHI_MAIL_FROM` | verified SES sender address | `no-reply@city.example.lg.jp` |
//!
//! `<NAME>` is the logical name upper-cased with `-` written as `_`: the logical bucket
//! `linkage-inbound` is `MADOGUCHI_BUCKET_LINKAGE_INBOUND`. A dead-letter queue is an ordinary
//! logical queue named `<name>-dlq` (`MADOGUCHI_QUEUE_NOTIFY_DLQ_URL`). Only the table is
//! required at load time; asking for a bucket, queue, key or sender that was not set is an
//! `Invalid` error naming the missing variable, so a function fails at init, not mid-request.

use std::collections::BTreeMap;

use madoguchi_ports::{PortError, PortResult};

pub const TABLE_VAR: &str = "MADOGUCHI_TABLE";
pub const BUCKET_PREFIX: &str = "MADOGUCHI_BUCKET_";
pub const QUEUE_PREFIX: &str = "MADOGUCHI_QUEUE_";
pub const QUEUE_SUFFIX: &str = "_URL";
pub const DATA_KEY_VAR: &str = "MADOGUCHI_DATA_KEY_ID";
pub const MAC_KEY_VAR: &str = "MADOGUCHI_MAC_KEY_ID";
pub const MAIL_FROM_VAR: &str = "MADOGUCHI_MAIL_FROM";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsResources {
    pub table: String,
    /// Logical name (`attachments`) → bucket name.
    pub buckets: BTreeMap<String, String>,
    /// Logical name (`notify`, `notify-dlq`) → queue URL.
    pub queues: BTreeMap<String, String>,
    pub data_key_id: Option<String>,
    pub mac_key_id: Option<String>,
    pub mail_from: Option<String>,
}

/// `linkage-inbound` → `LINKAGE_INBOUND`.
pub fn env_name(logical: &str) -> String {
    logical.to_ascii_uppercase().replace('-', "_")
}

/// `LINKAGE_INBOUND` → `linkage-inbound`.
pub fn logical_name(env: &str) -> String {
    env.to_ascii_lowercase().replace('_', "-")
}

fn missing(var: &str) -> PortError {
    PortError::Invalid(format!("environment variable {var} is not set"))
}

impl AwsResources {
    /// Reads the process environment (see the module docs).
    pub fn from_env() -> PortResult<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Same as [`AwsResources::from_env`] over any list of variables (tests, config files).
    pub fn from_vars<I, K, V>(vars: I) -> PortResult<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut r = AwsResources::default();
        let mut table = None;
        for (k, v) in vars {
            let (k, v) = (k.as_ref(), v.as_ref().trim());
            if v.is_empty() {
                continue;
            }
            match k {
                TABLE_VAR => table = Some(v.to_owned()),
                DATA_KEY_VAR => r.data_key_id = Some(v.to_owned()),
                MAC_KEY_VAR => r.mac_key_id = Some(v.to_owned()),
                MAIL_FROM_VAR => r.mail_from = Some(v.to_owned()),
                _ => {
                    if let Some(name) = k.strip_prefix(BUCKET_PREFIX).filter(|n| !n.is_empty()) {
                        r.buckets.insert(logical_name(name), v.to_owned());
                    } else if let Some(name) = k
                        .strip_prefix(QUEUE_PREFIX)
                        .and_then(|n| n.strip_suffix(QUEUE_SUFFIX))
                        .filter(|n| !n.is_empty())
                    {
                        r.queues.insert(logical_name(name), v.to_owned());
                    }
                }
            }
        }
        r.table = table.ok_or_else(|| missing(TABLE_VAR))?;
        Ok(r)
    }

    /// The variables that [`AwsResources::from_vars`] reads back into `self`.
    pub fn to_vars(&self) -> Vec<(String, String)> {
        let mut out = vec![(TABLE_VAR.to_owned(), self.table.clone())];
        for (name, bucket) in &self.buckets {
            out.push((format!("{BUCKET_PREFIX}{}", env_name(name)), bucket.clone()));
        }
        for (name, url) in &self.queues {
            out.push((
                format!("{QUEUE_PREFIX}{}{QUEUE_SUFFIX}", env_name(name)),
                url.clone(),
            ));
        }
        for (var, value) in [
            (DATA_KEY_VAR, &self.data_key_id),
            (MAC_KEY_VAR, &self.mac_key_id),
            (MAIL_FROM_VAR, &self.mail_from),
        ] {
            if let Some(v) = value {
                out.push((var.to_owned(), v.clone()));
            }
        }
        out
    }

    pub fn bucket(&self, logical: &str) -> PortResult<&str> {
        self.buckets
            .get(logical)
            .map(String::as_str)
            .ok_or_else(|| missing(&format!("{BUCKET_PREFIX}{}", env_name(logical))))
    }

    pub fn queue_url(&self, logical: &str) -> PortResult<&str> {
        self.queues.get(logical).map(String::as_str).ok_or_else(|| {
            missing(&format!(
                "{QUEUE_PREFIX}{}{QUEUE_SUFFIX}",
                env_name(logical)
            ))
        })
    }

    pub fn data_key_id(&self) -> PortResult<&str> {
        self.data_key_id
            .as_deref()
            .ok_or_else(|| missing(DATA_KEY_VAR))
    }

    pub fn mac_key_id(&self) -> PortResult<&str> {
        self.mac_key_id
            .as_deref()
            .ok_or_else(|| missing(MAC_KEY_VAR))
    }

    pub fn mail_from(&self) -> PortResult<&str> {
        self.mail_from
            .as_deref()
            .ok_or_else(|| missing(MAIL_FROM_VAR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_variable() {
        let r = AwsResources::from_vars([
            ("MADOGUCHI_TABLE", "t"),
            ("MADOGUCHI_BUCKET_LINKAGE_INBOUND", "b1"),
            ("MADOGUCHI_QUEUE_NOTIFY_URL", "http://q/notify"),
            ("MADOGUCHI_QUEUE_NOTIFY_DLQ_URL", "http://q/notify-dlq"),
            ("MADOGUCHI_DATA_KEY_ID", "alias/d"),
            ("MADOGUCHI_MAC_KEY_ID", "alias/m"),
            ("MADOGUCHI_MAIL_FROM", "a@example.com"),
            ("PATH", "/bin"),
            ("MADOGUCHI_QUEUE_ODD", "ignored: no _URL"),
        ])
        .unwrap();
        assert_eq!(r.table, "t");
        assert_eq!(r.bucket("linkage-inbound").unwrap(), "b1");
        assert_eq!(r.queue_url("notify").unwrap(), "http://q/notify");
        assert_eq!(r.queue_url("notify-dlq").unwrap(), "http://q/notify-dlq");
        assert_eq!(r.data_key_id().unwrap(), "alias/d");
        assert_eq!(r.mac_key_id().unwrap(), "alias/m");
        assert_eq!(r.mail_from().unwrap(), "a@example.com");
        assert_eq!(r.queues.len(), 2);
        assert_eq!(AwsResources::from_vars(r.to_vars()).unwrap(), r);
    }

    #[test]
    fn missing_values_name_their_variable() {
        let err = AwsResources::from_vars([("X", "y")]).unwrap_err();
        assert!(err.to_string().contains("MADOGUCHI_TABLE"));
        let r = AwsResources::from_vars([("MADOGUCHI_TABLE", "t")]).unwrap();
        assert!(
            r.bucket("linkage-outbound")
                .unwrap_err()
                .to_string()
                .contains("MADOGUCHI_BUCKET_LINKAGE_OUTBOUND")
        );
        assert!(
            r.mac_key_id()
                .unwrap_err()
                .to_string()
                .contains("MADOGUCHI_MAC_KEY_ID")
        );
    }
}
