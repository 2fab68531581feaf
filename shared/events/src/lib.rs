//! Reading S3 object-created notifications out of SQS messages, leniently, and building
//! Lambda's partial batch response.
//!
//! S3 sends an `s3:TestEvent` without records when a notification is configured, keys are
//! URL-encoded with `+` for spaces, and any field may be missing in a hand-made test event:
//! none of that may fail a batch.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct S3Record {
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: Option<S3Bucket>,
    object: Option<S3Object>,
}

#[derive(Debug, Deserialize)]
struct S3Bucket {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    key: Option<String>,
    size: Option<i64>,
    #[serde(rename = "eTag")]
    e_tag: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// An object announced as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: Option<String>,
    /// Decoded key (`None` when the notification had no key or it does not decode).
    pub key: Option<String>,
    pub size: Option<i64>,
    pub etag: Option<String>,
    /// Object version id; `None` for unversioned buckets (S3 writes `"null"`).
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

/// The message body is not an S3 notification at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotS3Notification;

/// S3 object keys in notifications are URL-encoded with `+` for spaces.
pub fn decode_s3_key(raw: &str) -> Option<String> {
    urlencoding::decode(&raw.replace('+', " "))
        .ok()
        .map(|c| c.into_owned())
}

/// The objects an SQS message body announces as created (other event kinds and test events
/// give none).
pub fn objects_created(body: &str) -> Result<Vec<CreatedObject>, NotS3Notification> {
    objects_with_event(body, "ObjectCreated")
}

/// The objects whose tags were set (`s3:ObjectTagging:Put`; GuardDuty Malware Protection
/// tags each object it scanned).
pub fn objects_tagged(body: &str) -> Result<Vec<CreatedObject>, NotS3Notification> {
    objects_with_event(body, "ObjectTagging:Put")
}

fn objects_with_event(
    body: &str,
    event_prefix: &str,
) -> Result<Vec<CreatedObject>, NotS3Notification> {
    let notification: S3Notification = serde_json::from_str(body).map_err(|_| NotS3Notification)?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    Ok(notification
        .records
        .into_iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .unwrap_or("")
                .trim_start_matches("s3:")
                .starts_with(event_prefix)
        })
        .filter_map(|r| r.s3)
        .filter_map(|s3| {
            let bucket = s3.bucket.and_then(|b| b.name);
            s3.object.map(|o| CreatedObject {
                bucket,
                key: o.key.as_deref().and_then(decode_s3_key),
                size: o.size,
                etag: o.e_tag,
                version_id: o.version_id.filter(|v| !v.is_empty() && v != "null"),
                sequencer: o.sequencer,
            })
        })
        .collect())
}

/// Lambda's partial batch response naming the failed message ids.
pub fn batch_failures(ids: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(
            decode_s3_key("inbound/jumin/2026+11%2F%E4%BD%8F%E6%B0%91.csv").as_deref(),
            Some("inbound/jumin/2026 11/住民.csv")
        );
    }

    #[test]
    fn lenient_with_test_events_and_missing_fields() {
        assert_eq!(
            objects_created(r#"{"Event":"s3:TestEvent","Service":"Amazon S3"}"#),
            Ok(vec![])
        );
        assert_eq!(objects_created("not json"), Err(NotS3Notification));
        let body = r#"{"Records":[
            {"eventName":"ObjectRemoved:Delete","s3":{"object":{"key":"a"}}},
            {"eventName":"ObjectCreated:Post","s3":{"bucket":{"name":"b"},"object":{"key":"q/a+b.pdf","size":3,"versionId":"null"}}},
            {"eventName":"ObjectCreated:Put"}
        ]}"#;
        let objects = objects_created(body).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key.as_deref(), Some("q/a b.pdf"));
        assert_eq!(objects[0].bucket.as_deref(), Some("b"));
        assert_eq!(objects[0].version_id, None);
        let tagged = r#"{"Records":[
            {"eventName":"ObjectTagging:Put","s3":{"object":{"key":"quarantine/a"}}},
            {"eventName":"ObjectCreated:Put","s3":{"object":{"key":"quarantine/b"}}}
        ]}"#;
        let objects = objects_tagged(tagged).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key.as_deref(), Some("quarantine/a"));
        assert_eq!(objects_created(tagged).unwrap().len(), 1);
    }
}
