//! The inbox: files dropped into `DATA_DIR/inbox/<system>/` become objects under
//! `inbound/<system>/` of the linkage bucket plus the object-created notification S3 would
//! send, so core-system linkage runs the same path on one box as on AWS.
//!
//! A file is taken once it has stopped changing for one scan (size and modification time
//! equal twice), so a file still being copied in is not picked up half-written. Names
//! starting with `.` or ending in `.tmp` / `.part` are left alone for the same reason. The
//! file is removed from the inbox only after the object is stored and the notification sent;
//! a crash in between re-sends on the next start, which the consumer's exactly-once
//! registration absorbs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use madoguchi_ports::{BlobStore, Clock, OutgoingMessage, Queue};
use tokio_util::sync::CancellationToken;

pub use crate::s3_event::encode_s3_key;
use crate::s3_event::{ObjectCreated, new_sequencer};

pub struct Inbox {
    pub dir: PathBuf,
    pub bucket_name: String,
    pub blobs: Arc<dyn BlobStore>,
    /// Where the notifications go (the linkage-inbound queue).
    pub notify: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    size: u64,
    modified: Option<SystemTime>,
}

/// Names the inbox in its notifications (`userIdentity.principalId`, `configurationId`).
pub const INBOX_SOURCE: &str = "madoguchi-inbox";

/// The notification body S3 sends to SQS for one created object.
pub fn s3_notification(
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    sequencer: &str,
    event_time: &str,
) -> serde_json::Value {
    ObjectCreated {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        etag: etag.to_owned(),
        event_name: ObjectCreated::PUT,
        event_time: event_time.to_owned(),
        sequencer: sequencer.to_owned(),
        source: INBOX_SOURCE,
    }
    .notification()
}

fn skip_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
}

impl Inbox {
    pub async fn run(self, stop: CancellationToken) {
        let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
        tracing::info!("inbox watcher started");
        loop {
            if let Err(e) = self.scan(&mut seen).await {
                tracing::warn!(error = %e, "inbox scan failed");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
        tracing::info!("inbox watcher stopped");
    }

    /// One pass: takes every file that was already seen unchanged in the previous pass.
    pub async fn scan(&self, seen: &mut HashMap<PathBuf, Seen>) -> std::io::Result<usize> {
        let mut now_seen = HashMap::new();
        let mut taken = 0;
        let mut systems = match tokio::fs::read_dir(&self.dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        while let Some(system) = systems.next_entry().await? {
            if !system.file_type().await?.is_dir() {
                continue;
            }
            let system_name = system.file_name().to_string_lossy().into_owned();
            if skip_name(&system_name) {
                continue;
            }
            let mut files = tokio::fs::read_dir(system.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let name = file.file_name().to_string_lossy().into_owned();
                let meta = file.metadata().await?;
                if !meta.is_file() || skip_name(&name) {
                    continue;
                }
                let state = Seen {
                    size: meta.len(),
                    modified: meta.modified().ok(),
                };
                let path = file.path();
                if seen.get(&path) == Some(&state) {
                    match self.take(&system_name, &name, &path).await {
                        Ok(()) => taken += 1,
                        Err(e) => {
                            tracing::warn!(system = %system_name, error = %e, "inbox file not taken; will retry");
                            now_seen.insert(path, state);
                        }
                    }
                } else {
                    now_seen.insert(path, state);
                }
            }
        }
        *seen = now_seen;
        Ok(taken)
    }

    async fn take(&self, system: &str, name: &str, path: &Path) -> anyhow::Result<()> {
        let body = tokio::fs::read(path).await?;
        let size = body.len() as u64;
        let key = format!("inbound/{system}/{name}");
        let meta = self.blobs.put(&key, body.into(), None).await?;
        let now = self.clock.now();
        let sequencer = new_sequencer();
        let note = s3_notification(
            &self.bucket_name,
            &key,
            size,
            &meta.etag,
            &sequencer,
            &now.to_string(),
        );
        self.notify
            .send_batch(vec![OutgoingMessage::new(note.to_string())])
            .await?;
        tokio::fs::remove_file(path).await?;
        tracing::info!(system, size, "inbox file taken");
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
    fn the_inbox_notification_is_unchanged() {
        // The exact body the inbox has always sent (pinned when the builder moved to
        // `s3_event`).
        let note = s3_notification(
            "linkage",
            "inbound/jumin/a b.csv",
            42,
            "e7a9",
            "0190ABC",
            "2026-11-23T01:02:03Z",
        );
        let expected = serde_json::json!({
            "Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": "2026-11-23T01:02:03Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "madoguchi-inbox"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "madoguchi-inbox",
                    "bucket": {"name": "linkage", "ownerIdentity": {"principalId": "madoguchi"}, "arn": "arn:aws:s3:::linkage"},
                    "object": {"key": "inbound/jumin/a+b.csv", "size": 42, "eTag": "e7a9", "sequencer": "0190ABC"}
                }
            }]
        });
        assert_eq!(note, expected);
    }
}
