//! The `linkage-inbound` function (前方連携): reacts to files that core systems (基幹系) write
//! under `inbound/<system>/` of the linkage bucket. S3 notifies SQS, SQS invokes this function
//! with a batch; locally the host turns files dropped into `DATA_DIR/inbox/<system>/` into the
//! same notifications.
//!
//! What it does today: registers each arriving file exactly once. The registration is a
//! conditional write keyed by (system, object key, object version), so a redelivered
//! notification or a replayed event changes nothing. Parsing files against their layouts
//! builds on this registry.
//!
//! Contract with the event source: failures are reported per SQS message
//! (`batchItemFailures`); a message that cannot be parsed at all is a permanent failure, so it
//! is acknowledged and logged instead of looping until the dead-letter queue.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use madoguchi_domain::tenant::TenantId;
pub use madoguchi_events::decode_s3_key;
use madoguchi_events::{CreatedObject, batch_failures, objects_created};
use madoguchi_ports::{Clock, Condition, Item, ItemStore, Key, PortError};

#[derive(Clone)]
pub struct InboundState {
    pub items: Arc<dyn ItemStore>,
    pub clock: Arc<dyn Clock>,
    /// The municipality this deployment serves; core-system files carry no tenant themselves.
    pub tenant: TenantId,
}

/// A file announced by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFile {
    pub system: String,
    pub key: String,
    /// Object version id, or the event sequencer / etag when the bucket is unversioned.
    pub version: String,
    pub size: i64,
}

/// What happened to one announced file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    New,
    Duplicate,
    Ignored(&'static str),
}

fn parse_file(object: &CreatedObject) -> Result<InboundFile, &'static str> {
    let key = object.key.clone().ok_or("no key")?;
    let mut parts = key.splitn(3, '/');
    let (Some("inbound"), Some(system), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("outside inbound/<system>/");
    };
    if system.is_empty() || name.is_empty() || name.ends_with('/') {
        return Err("outside inbound/<system>/");
    }
    let version = object
        .version_id
        .clone()
        .or_else(|| object.sequencer.clone())
        .or_else(|| object.etag.clone())
        .ok_or("no version, sequencer or etag")?;
    Ok(InboundFile {
        system: system.to_owned(),
        key: key.clone(),
        version,
        size: object.size.unwrap_or(0),
    })
}

/// Registers one file; a second registration of the same version is a duplicate.
pub async fn register(state: &InboundState, file: &InboundFile) -> Result<Registration, PortError> {
    let pk = state.tenant.key(&["LINKAGE", "IN", &file.system]);
    let sk = format!("FILE#{}#{}", file.key, file.version);
    let data = serde_json::json!({
        "system": file.system,
        "key": file.key,
        "version": file.version,
        "size": file.size,
        "status": "received",
        "received_at": state.clock.now().to_string(),
    });
    match state
        .items
        .put(Item::new(Key::new(pk, sk), data), Condition::NotExists)
        .await
    {
        Ok(()) => Ok(Registration::New),
        Err(PortError::ConditionFailed { .. }) => Ok(Registration::Duplicate),
        Err(e) => Err(e),
    }
}

/// Handles one SQS batch with Lambda's partial-failure contract.
pub async fn handle(state: &InboundState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        let Ok(objects) = objects_created(body) else {
            tracing::warn!(message_id = %id, "not an S3 notification; dropped");
            continue;
        };
        let mut failed = false;
        for object in objects {
            match parse_file(&object) {
                Err(reason) => tracing::warn!(message_id = %id, reason, "object ignored"),
                Ok(file) => match register(state, &file).await {
                    Ok(Registration::New) => {
                        tracing::info!(system = %file.system, size = file.size, "file registered")
                    }
                    Ok(Registration::Duplicate) => {
                        tracing::info!(system = %file.system, "duplicate delivery ignored")
                    }
                    Ok(Registration::Ignored(reason)) => tracing::warn!(reason, "file ignored"),
                    Err(e) => {
                        tracing::warn!(message_id = %id, error = %e, "registration failed; will retry");
                        failed = true;
                    }
                },
            }
        }
        if failed {
            failures.push(id);
        }
    }
    batch_failures(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inbound_system_files_are_taken() {
        let obj = |k: &str| CreatedObject {
            bucket: None,
            key: Some(k.into()),
            size: Some(3),
            etag: Some("e".into()),
            version_id: None,
            sequencer: Some("0055".into()),
        };
        assert_eq!(
            parse_file(&obj("inbound/jumin/a.csv")).unwrap().system,
            "jumin"
        );
        assert_eq!(
            parse_file(&obj("inbound/jumin/a.csv")).unwrap().version,
            "0055"
        );
        assert!(parse_file(&obj("results/a.csv")).is_err());
        assert!(parse_file(&obj("inbound//a.csv")).is_err());
        assert!(parse_file(&obj("inbound/jumin")).is_err());
    }
}
