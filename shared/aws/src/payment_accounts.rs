//! [`GatewayAccounts`] over Secrets Manager: each tenant's payment-gateway credentials.
//!
//! - One secret per tenant, named `<prefix><tenant code>` (e.g.
//!   `madoguchi/prod/payments/131016`), whose `SecretString` is
//!   `{"secret_key":"sk_live_…","webhook_secret":"whsec_…"}` (other keys are ignored).
//! - Credentials read are kept in memory for a TTL ([`DEFAULT_TTL`] unless told otherwise), so
//!   a burst of webhooks costs one `GetSecretValue` per tenant, not one per request. A rotated
//!   key is picked up within the TTL, or at once after [`SecretsManagerAccounts::invalidate`].
//!   Two tasks missing the same tenant at the same moment may both read the secret.
//! - A missing secret (`ResourceNotFoundException`) is [`GatewayError::Config`] ("no gateway
//!   account"), remembered for [`NOT_FOUND_TTL`] (or the TTL, if shorter), so a tenant being
//!   set up is seen soon after its secret is created.
//! - A secret that is not such a JSON object (not JSON, a key missing, an empty value, a value
//!   with whitespace or control characters, a binary secret) is [`GatewayError::Config`]; the
//!   message names the tenant and what is wrong, never any part of the value. Not cached.
//! - Throttling, 5xx, timeouts and connection failures (after the SDK's retries) are
//!   [`GatewayError::Transport`] (retryable). Not cached. Any other refusal (access denied,
//!   a secret marked for deletion, a KMS decryption failure) is [`GatewayError::Config`] with
//!   the service's error code. Not cached.
//!
//! Values are never logged; log lines carry the tenant, the secret's name and error codes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_gateway::{
    GatewayAccounts, GatewayCredentials, GatewayError, GatewayResult, Secret,
};
use madoguchi_ports::PortError;
use serde::Deserialize;

use crate::error::map_sdk;

/// How long a tenant's credentials are kept when the constructor is not told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// How long "this tenant has no secret" is remembered (at most; never longer than the TTL).
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(30);
/// Cache entries above which expired ones are dropped (there is one per tenant asked about).
const CACHE_SOFT_LIMIT: usize = 4096;

/// What the cache holds for a tenant: its credentials, or the fact that it has no secret.
#[derive(Clone)]
enum Entry {
    Found(GatewayCredentials),
    Missing,
}

/// Per-tenant gateway credentials from Secrets Manager, cached in memory. See the module
/// documentation. Cheap to share (`Arc`); safe to use from many tasks at once.
pub struct SecretsManagerAccounts {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<TenantId, (Entry, Instant)>>,
}

impl fmt::Debug for SecretsManagerAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerAccounts")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The secret's JSON. `Debug` is not derived: it would print the values.
#[derive(Deserialize)]
struct SecretJson {
    secret_key: Option<String>,
    webhook_secret: Option<String>,
}

fn config(tenant: &TenantId, what: &str) -> GatewayError {
    GatewayError::Config(format!("gateway account secret of tenant {tenant}: {what}"))
}

/// A usable credential: non-empty, no whitespace or control characters (it goes into an
/// HTTP header or an HMAC key as is; a stray newline from a console paste would only fail
/// later, at the gateway, with a less helpful error).
fn credential(tenant: &TenantId, field: &str, value: Option<String>) -> GatewayResult<Secret> {
    match value {
        None => Err(config(tenant, &format!("`{field}` is missing"))),
        Some(v) if v.is_empty() => Err(config(tenant, &format!("`{field}` is empty"))),
        Some(v) if v.chars().any(|c| c.is_whitespace() || c.is_control()) => Err(config(
            tenant,
            &format!("`{field}` contains whitespace or control characters"),
        )),
        Some(v) => Ok(Secret::new(v)),
    }
}

/// Reads the secret's JSON. Errors say where parsing stopped, never what was there
/// (serde_json's own messages can quote the input).
fn parse(tenant: &TenantId, text: &str) -> GatewayResult<GatewayCredentials> {
    let json: SecretJson = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "not an object with string fields",
            _ => "not valid JSON",
        };
        config(
            tenant,
            &format!("value is {what} (line {}, column {})", e.line(), e.column()),
        )
    })?;
    Ok(GatewayCredentials {
        secret_key: credential(tenant, "secret_key", json.secret_key)?,
        webhook_secret: credential(tenant, "webhook_secret", json.webhook_secret)?,
    })
}

fn no_account(tenant: &TenantId) -> GatewayError {
    GatewayError::Config(format!("no gateway account for tenant {tenant}"))
}

impl SecretsManagerAccounts {
    /// `prefix` is put before the tenant code to name its secret (e.g.
    /// `madoguchi/prod/payments/`); `ttl` is how long read credentials are kept
    /// ([`DEFAULT_TTL`] in production; zero reads the secret on every call).
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The name of `tenant`'s secret.
    pub fn secret_name(&self, tenant: &TenantId) -> String {
        format!("{}{}", self.prefix, tenant.as_str())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets what is cached for `tenant`, so the next call reads the secret again (e.g.
    /// after the gateway refused the key as revoked: it may just have been rotated).
    pub fn invalidate(&self, tenant: &TenantId) {
        self.lock().remove(tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (Entry, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry_ttl(&self, entry: &Entry) -> Duration {
        match entry {
            Entry::Found(_) => self.ttl,
            Entry::Missing => self.ttl.min(NOT_FOUND_TTL),
        }
    }

    fn cached(&self, tenant: &TenantId) -> Option<Entry> {
        let cache = self.lock();
        let (entry, at) = cache.get(tenant)?;
        (at.elapsed() < self.entry_ttl(entry)).then(|| entry.clone())
    }

    fn remember(&self, tenant: &TenantId, entry: Entry) {
        if self.entry_ttl(&entry).is_zero() {
            return;
        }
        let mut cache = self.lock();
        if cache.len() >= CACHE_SOFT_LIMIT {
            let now = Instant::now();
            cache.retain(|_, (e, at)| now.duration_since(*at) < self.entry_ttl(e));
        }
        cache.insert(*tenant, (entry, Instant::now()));
    }

    /// One `GetSecretValue`, mapped (see the module documentation).
    async fn fetch(&self, tenant: &TenantId) -> GatewayResult<Entry> {
        let name = self.secret_name(tenant);
        let out = match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match map_sdk("secretsmanager", "GetSecretValue", &e) {
                    PortError::NotFound => {
                        tracing::info!(tenant = %tenant, secret = %name, "no gateway account secret");
                        Ok(Entry::Missing)
                    }
                    PortError::Unavailable(why) => Err(GatewayError::Transport(format!(
                        "secrets manager unavailable ({why})"
                    ))),
                    other => Err(config(tenant, &format!("cannot be read ({other})"))),
                };
            }
        };
        let Some(text) = out.secret_string() else {
            tracing::warn!(tenant = %tenant, secret = %name, "gateway account secret has no SecretString");
            return Err(config(tenant, "has no SecretString (a binary secret?)"));
        };
        match parse(tenant, text) {
            Ok(credentials) => Ok(Entry::Found(credentials)),
            Err(e) => {
                tracing::warn!(tenant = %tenant, secret = %name, error = %e, "unusable gateway account secret");
                Err(e)
            }
        }
    }
}

#[async_trait]
impl GatewayAccounts for SecretsManagerAccounts {
    async fn credentials(&self, tenant: &TenantId) -> GatewayResult<GatewayCredentials> {
        let entry = match self.cached(tenant) {
            Some(entry) => entry,
            None => {
                let entry = self.fetch(tenant).await?;
                self.remember(tenant, entry.clone());
                entry
            }
        };
        match entry {
            Entry::Found(credentials) => Ok(credentials),
            Entry::Missing => Err(no_account(tenant)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::from_five_digits("13101").unwrap()
    }

    #[test]
    fn a_good_secret_reads_and_extra_keys_are_ignored() {
        let c = parse(
            &tenant(),
            r#"{"secret_key":"sk_test_1","webhook_secret":"whsec_1","publishable_key":"pk"}"#,
        )
        .unwrap();
        assert_eq!(c.secret_key.expose(), "sk_test_1");
        assert_eq!(c.webhook_secret.expose(), "whsec_1");
    }

    #[test]
    fn bad_secrets_are_config_errors_without_the_value() {
        let cases = [
            "sk_live_SECRETVALUE",
            r#"{"secret_key":"sk_live_SECRETVALUE"}"#,
            r#"{"secret_key":"sk_live_SECRETVALUE","webhook_secret":""}"#,
            r#"{"secret_key":"sk_live_SECRETVALUE","webhook_secret":"whsec_SECRETVALUE\n"}"#,
            r#"{"secret_key":12345678,"webhook_secret":"whsec_SECRETVALUE"}"#,
            r#"{"secret_key":"sk_live_SECRETVALUE","webhook_secret":true}"#,
            r#"["sk_live_SECRETVALUE"]"#,
            r#"{"secret_key":"sk_live_SECRETVALUE", "#,
        ];
        for text in cases {
            let err = match parse(&tenant(), text) {
                Ok(_) => panic!("accepted a bad secret"),
                Err(e) => e,
            };
            assert!(matches!(err, GatewayError::Config(_)), "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("SECRETVALUE"), "{shown}");
            assert!(!shown.contains("12345678"), "{shown}");
            assert!(shown.contains("131016"), "{shown}");
        }
    }
}
