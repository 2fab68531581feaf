//! The `attachments` function: checks each file a citizen uploaded into the quarantine prefix
//! of the attachments bucket, then accepts or refuses it and records why.
//!
//! Checks, in order: the upload belongs to a pending attachment record (otherwise the object
//! is an orphan and is deleted); the real size (1 byte to the field's limit); the file's
//! leading bytes match its extension (an extension that lies is refused); the malware verdict
//! (GuardDuty's tag in AWS; "not scanned" embedded); the draft's running total stays within the
//! form's limit (≤ 100 MB). The total and the acceptance are written in one transaction that
//! is conditional on both records' versions, so two files checked at once cannot both slip
//! under the limit, and a redelivered event changes nothing.
//!
//! In AWS the malware verdict usually comes after this check (GuardDuty tags the object when
//! its scan ends): the file is accepted with the scan `pending`, and the tagging notification
//! updates it ([`rescan`]); an infected file is refused and deleted then.
//!
//! A refused file is marked first, then deleted; a redelivery of a refused file deletes it
//! again (idempotent), so no refused object is left behind.

pub mod rescan;

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use madoguchi_applications::keys::{
    UPLOAD_TOTAL_SK, attachment_sk, parse_quarantine_key, upload_pk,
};
use madoguchi_applications::{AttachmentRecord, AttachmentStatus, RefusalReason};
use madoguchi_domain::filetype::{SNIFF_BYTES, content_matches};
use madoguchi_events::{batch_failures, objects_created, objects_tagged};
use madoguchi_ports::{
    BlobStore, Clock, Condition, Item, ItemStore, Key, MalwareScanner, PortError, PortResult,
    ScanVerdict, TxOp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

#[derive(Clone)]
pub struct AttachmentsState {
    pub items: Arc<dyn ItemStore>,
    /// The attachments bucket.
    pub blobs: Arc<dyn BlobStore>,
    pub scanner: Arc<dyn MalwareScanner>,
    pub clock: Arc<dyn Clock>,
}

/// What the check decided for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(RefusalReason),
    /// Checked before, or not ours to check.
    AlreadyDone,
    /// No pending record: deleted.
    Orphan,
    /// A later scan verdict was recorded on an accepted file.
    Rescanned,
    Ignored(&'static str),
}

/// The per-draft byte total of accepted files.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Total {
    bytes: u64,
}

/// Handles one SQS batch of S3 notifications with Lambda's partial-failure contract.
pub async fn handle(state: &AttachmentsState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let Ok(objects) = objects_created(message.body.as_deref().unwrap_or("")) else {
            tracing::warn!(message_id = %id, "not an S3 notification; dropped");
            continue;
        };
        let mut failed = false;
        for object in objects {
            let Some(key) = object.key else { continue };
            match check(state, &key).await {
                Ok(outcome) => tracing::info!(?outcome, "attachment checked"),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "check failed; will retry");
                    failed = true;
                }
            }
        }
        let tagged = objects_tagged(message.body.as_deref().unwrap_or("")).unwrap_or_default();
        for object in tagged {
            let Some(key) = object.key else { continue };
            match rescan::rescan(state, &key).await {
                Ok(outcome) => tracing::info!(?outcome, "scan verdict recorded"),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "rescan failed; will retry");
                    failed = true;
                }
            }
        }
        if failed {
            failures.push(id);
        }
    }
    batch_failures(failures)
}

/// Checks one uploaded object. Errors are transient (retry the message).
pub async fn check(state: &AttachmentsState, object_key: &str) -> PortResult<Outcome> {
    let Some((tenant, draft, id)) = parse_quarantine_key(object_key) else {
        return Ok(Outcome::Ignored("not a quarantine key"));
    };
    let record_key = Key::new(upload_pk(&tenant, &draft), attachment_sk(&id));
    let Some(item) = state.items.get(&record_key).await? else {
        // Nobody asked for this upload (or its draft expired): it has no business here.
        state.blobs.delete(object_key).await?;
        return Ok(Outcome::Orphan);
    };
    let record: AttachmentRecord = serde_json::from_value(item.data.clone())
        .map_err(|_| PortError::Backend("attachment record does not parse".into()))?;
    match record.status {
        AttachmentStatus::Accepted => return Ok(Outcome::AlreadyDone),
        AttachmentStatus::Refused => {
            state.blobs.delete(object_key).await?;
            return Ok(Outcome::AlreadyDone);
        }
        AttachmentStatus::Pending => {}
    }
    let Some(meta) = state.blobs.head(object_key).await? else {
        // Deleted since the event (e.g. a refused redelivery); nothing to check.
        return Ok(Outcome::Ignored("object gone"));
    };
    let verdict = if meta.size == 0 {
        Err(RefusalReason::Empty)
    } else if meta.size > record.max_bytes {
        Err(RefusalReason::TooLarge)
    } else {
        match read_object(state, object_key).await {
            Ok((head, digest)) if content_matches(&record.extension, &head) => Ok(digest),
            Ok(_) => Err(RefusalReason::ContentMismatch),
            Err(PortError::NotFound) => Err(RefusalReason::Unreadable),
            Err(e) => return Err(e),
        }
    };
    let scan = match verdict {
        Err(_) => None,
        Ok(_) => Some(state.scanner.verdict(object_key).await?),
    };
    let verdict = match (verdict, scan) {
        (Err(r), _) => Err(r),
        (Ok(_), Some(ScanVerdict::Infected)) => Err(RefusalReason::Malware),
        (Ok(digest), _) => Ok(digest),
    };
    let now = state.clock.now().to_string();
    let scan_name = scan.map(|s| scan_name(s).to_owned());
    match verdict {
        Err(reason) => {
            refuse(
                state,
                &record_key,
                &item,
                record,
                reason,
                meta.size,
                now,
                object_key,
            )
            .await
        }
        Ok(digest) => {
            let total_key = Key::new(upload_pk(&tenant, &draft), UPLOAD_TOTAL_SK);
            let current = state.items.get(&total_key).await?;
            let (total, condition, next_version) = match &current {
                Some(t) => (
                    serde_json::from_value::<Total>(t.data.clone()).unwrap_or_default(),
                    Condition::VersionEquals(t.version),
                    t.version + 1,
                ),
                None => (Total::default(), Condition::NotExists, 1),
            };
            if total.bytes + meta.size > record.max_total_bytes {
                return refuse(
                    state,
                    &record_key,
                    &item,
                    record,
                    RefusalReason::TotalExceeded,
                    meta.size,
                    now,
                    object_key,
                )
                .await;
            }
            let mut accepted = record;
            accepted.status = AttachmentStatus::Accepted;
            accepted.size = Some(meta.size);
            accepted.scan = scan_name;
            accepted.checked_at = Some(now);
            accepted.sha256 = Some(digest);
            let mut record_item = Item::new(
                record_key,
                serde_json::to_value(&accepted).expect("serializable"),
            );
            record_item.version = item.version + 1;
            record_item.expires_at = item.expires_at;
            let mut total_item = Item::new(
                total_key,
                serde_json::to_value(Total {
                    bytes: total.bytes + meta.size,
                })
                .expect("serializable"),
            );
            total_item.version = next_version;
            total_item.expires_at = item.expires_at;
            // Conflicts (another file of the draft checked at the same moment, or this event
            // redelivered concurrently) fail the message; the retry sees the new state.
            state
                .items
                .transact(vec![
                    TxOp::Put(record_item, Condition::VersionEquals(item.version)),
                    TxOp::Put(total_item, condition),
                ])
                .await?;
            Ok(Outcome::Accepted)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn refuse(
    state: &AttachmentsState,
    record_key: &Key,
    current: &Item,
    mut record: AttachmentRecord,
    reason: RefusalReason,
    size: u64,
    now: String,
    object_key: &str,
) -> PortResult<Outcome> {
    record.status = AttachmentStatus::Refused;
    record.reason = Some(reason);
    record.size = Some(size);
    record.checked_at = Some(now);
    let mut item = Item::new(
        record_key.clone(),
        serde_json::to_value(&record).expect("serializable"),
    );
    item.version = current.version + 1;
    // The record expires with its draft, refused or not (its file name is personal data).
    item.expires_at = current.expires_at;
    state
        .items
        .put(item, Condition::VersionEquals(current.version))
        .await?;
    state.blobs.delete(object_key).await?;
    Ok(Outcome::Refused(reason))
}

/// The first [`SNIFF_BYTES`] of the object (fewer if it is shorter) and the SHA-256 (hex)
/// of all of it, read as a stream: the digest is what an e-signature covers.
async fn read_object(state: &AttachmentsState, key: &str) -> PortResult<(Vec<u8>, String)> {
    let (_, mut body) = state.blobs.get(key).await?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(|e| PortError::Unavailable(format!("reading the object: {}", e.kind())))?;
        if n == 0 {
            break;
        }
        let room = SNIFF_BYTES.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&buf[..room]);
        hasher.update(&buf[..n]);
    }
    Ok((head, hex::encode(hasher.finalize())))
}

pub fn scan_name(v: ScanVerdict) -> &'static str {
    match v {
        ScanVerdict::NotScanned => "not_scanned",
        ScanVerdict::Pending => "pending",
        ScanVerdict::Clean => "clean",
        ScanVerdict::Infected => "infected",
        ScanVerdict::Failed => "failed",
    }
}
