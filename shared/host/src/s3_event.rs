//! S3-format object-created notifications, for the objects the host itself creates (inbox
//! files, presigned uploads), so the consumers on one box get the same events as on AWS,
//! where S3 bucket notifications send them to SQS.
//!
//! [`ObjectCreated`] builds the message body S3 sends to SQS (one record, URL-encoded key);
//! [`UploadNotifier`] is the hook the upload routes call once an object is stored, and
//! [`QueueNotifier`] the notifier that sends the event to the queue configured for the
//! bucket, as a bucket's `QueueConfiguration` would.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use madoguchi_ports::{OutgoingMessage, PortResult, Queue};

/// S3 URL-encodes keys in notifications (form encoding: space as `+`), slashes kept.
pub fn encode_s3_key(key: &str) -> String {
    key.split('/')
        .map(|seg| urlencoding::encode(seg).replace("%20", "+"))
        .collect::<Vec<_>>()
        .join("/")
}

/// A new S3-style `sequencer`: S3's orders events per key; a time-ordered id does the same.
pub fn new_sequencer() -> String {
    uuid::Uuid::now_v7().simple().to_string().to_uppercase()
}

/// One created object, as an S3 bucket notification describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key as stored (not encoded; [`ObjectCreated::notification`] encodes it).
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// S3's event name without the `s3:` prefix: [`ObjectCreated::PUT`] or
    /// [`ObjectCreated::POST`].
    pub event_name: &'static str,
    /// RFC 3339 instant.
    pub event_time: String,
    pub sequencer: String,
    /// Who made the object: the record's `userIdentity.principalId` and `configurationId`
    /// (`madoguchi-inbox`, `madoguchi-upload`).
    pub source: &'static str,
}

impl ObjectCreated {
    pub const PUT: &'static str = "ObjectCreated:Put";
    pub const POST: &'static str = "ObjectCreated:Post";

    /// The message body S3 sends to SQS for this object.
    pub fn notification(&self) -> serde_json::Value {
        let bucket = &self.bucket;
        serde_json::json!({
            "Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": self.event_time,
                "eventName": self.event_name,
                "userIdentity": {"principalId": self.source},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": self.source,
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "madoguchi"}, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": encode_s3_key(&self.key), "size": self.size, "eTag": self.etag, "sequencer": self.sequencer}
                }
            }]
        })
    }
}

/// Told about every object an upload route stored (the hook of
/// [`crate::blobs_http::routes_with_notifier`]), as S3 tells a bucket's notification
/// targets.
#[async_trait]
pub trait UploadNotifier: Send + Sync {
    /// Called once the object is stored, before the client gets its answer. An error makes
    /// the upload answer 500: the object stays stored, and the client's retry stores it
    /// again and notifies again (consumers are idempotent).
    async fn object_created(&self, event: &ObjectCreated) -> PortResult<()>;
}

/// Sends each bucket's object-created events to that bucket's queue as S3's SQS message
/// body; buckets without a queue notify nobody (like a bucket without a notification
/// configuration).
#[derive(Default, Clone)]
pub struct QueueNotifier {
    queues: HashMap<String, Arc<dyn Queue>>,
}

impl std::fmt::Debug for QueueNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buckets: Vec<&String> = self.queues.keys().collect();
        buckets.sort();
        f.debug_struct("QueueNotifier")
            .field("buckets", &buckets)
            .finish()
    }
}

impl QueueNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Objects created in `bucket` are notified to `queue`.
    pub fn bucket(mut self, bucket: &str, queue: Arc<dyn Queue>) -> Self {
        self.queues.insert(bucket.to_owned(), queue);
        self
    }
}

#[async_trait]
impl UploadNotifier for QueueNotifier {
    async fn object_created(&self, event: &ObjectCreated) -> PortResult<()> {
        let Some(queue) = self.queues.get(&event.bucket) else {
            return Ok(());
        };
        queue
            .send_batch(vec![OutgoingMessage::new(event.notification().to_string())])
            .await?;
        tracing::debug!(bucket = %event.bucket, size = event.size, "object-created event sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_does() {
        assert_eq!(
            encode_s3_key("inbound/jumin/a b+c.csv"),
            "inbound/jumin/a+b%2Bc.csv"
        );
        assert_eq!(
            madoguchi_linkage_inbound::decode_s3_key(&encode_s3_key("inbound/jumin/住民 記録.csv"))
                .as_deref(),
            Some("inbound/jumin/住民 記録.csv")
        );
    }

    #[test]
    fn the_notification_parses_as_lambda_s3_event() {
        let event = ObjectCreated {
            bucket: "attachments".into(),
            key: "131016/a 1.pdf".into(),
            size: 12,
            etag: "abc".into(),
            event_name: ObjectCreated::POST,
            event_time: "2026-11-23T01:02:03Z".into(),
            sequencer: new_sequencer(),
            source: "madoguchi-upload",
        };
        let parsed: aws_lambda_events::event::s3::S3Event =
            serde_json::from_value(event.notification()).unwrap();
        let record = &parsed.records[0];
        assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Post"));
        assert_eq!(record.s3.bucket.name.as_deref(), Some("attachments"));
        assert_eq!(record.s3.object.key.as_deref(), Some("131016/a+1.pdf"));
        assert_eq!(record.s3.object.size, Some(12));
    }
}
