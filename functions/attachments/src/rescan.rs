//! Scan verdicts that arrive after the check. GuardDuty Malware Protection scans each object
//! asynchronously and tags it when done (`s3:ObjectTagging:Put` notification); the upload's
//! own check usually runs first and records `pending`. Here the record follows the tag: a
//! clean verdict is recorded, an infected file is refused and deleted even if it was already
//! accepted (staff then see it refused for malware).

use madoguchi_applications::keys::{attachment_sk, parse_quarantine_key, upload_pk};
use madoguchi_applications::{AttachmentRecord, AttachmentStatus, RefusalReason};
use madoguchi_ports::{Condition, Item, Key, PortError, PortResult, ScanVerdict};

use crate::{AttachmentsState, Outcome, scan_name};

/// Re-reads the verdict of one object and updates its record.
pub async fn rescan(state: &AttachmentsState, object_key: &str) -> PortResult<Outcome> {
    let Some((tenant, draft, id)) = parse_quarantine_key(object_key) else {
        return Ok(Outcome::Ignored("not a quarantine key"));
    };
    let record_key = Key::new(upload_pk(&tenant, &draft), attachment_sk(&id));
    let Some(item) = state.items.get(&record_key).await? else {
        return Ok(Outcome::Ignored("no record"));
    };
    let mut record: AttachmentRecord = serde_json::from_value(item.data.clone())
        .map_err(|_| PortError::Backend("attachment record does not parse".into()))?;
    if record.status != AttachmentStatus::Accepted {
        // Pending: the upload's check reads the tag itself. Refused: nothing to add.
        return Ok(Outcome::Ignored("not accepted"));
    }
    let verdict = match state.scanner.verdict(object_key).await {
        Ok(v) => v,
        Err(PortError::NotFound) => return Ok(Outcome::Ignored("object gone")),
        Err(e) => return Err(e),
    };
    let name = scan_name(verdict).to_owned();
    if record.scan.as_deref() == Some(name.as_str()) {
        return Ok(Outcome::AlreadyDone);
    }
    record.scan = Some(name);
    record.checked_at = Some(state.clock.now().to_string());
    let infected = verdict == ScanVerdict::Infected;
    if infected {
        record.status = AttachmentStatus::Refused;
        record.reason = Some(RefusalReason::Malware);
    }
    let mut next = Item::new(
        record_key,
        serde_json::to_value(&record).expect("serializable"),
    );
    next.version = item.version + 1;
    next.expires_at = item.expires_at;
    state
        .items
        .put(next, Condition::VersionEquals(item.version))
        .await?;
    if infected {
        state.blobs.delete(object_key).await?;
        tracing::warn!(attachment = %record.id, "malware found after acceptance; file deleted");
        return Ok(Outcome::Refused(RefusalReason::Malware));
    }
    Ok(Outcome::Rescanned)
}
