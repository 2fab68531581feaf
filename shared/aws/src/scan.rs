//! [`MalwareScanner`] over GuardDuty Malware Protection for S3's object tags.
//!
//! With tagging enabled on the protection plan, GuardDuty scans each newly uploaded object
//! and then adds the tag `GuardDutyMalwareScanStatus` whose value is the scan result:
//! `NO_THREATS_FOUND`, `THREATS_FOUND`, `UNSUPPORTED`, `ACCESS_DENIED` or `FAILED`
//! (Amazon GuardDuty User Guide: "Monitoring S3 object scans with GuardDuty managed tags",
//! <https://docs.aws.amazon.com/guardduty/latest/ug/monitor-enable-s3-object-tagging-malware-protection.html>,
//! and "S3 object potential scan status and result status",
//! <https://docs.aws.amazon.com/guardduty/latest/ug/monitoring-malware-protection-s3-scans-gdu.html>).
//!
//! The scanner reads that tag (S3 `GetObjectTagging`; the function's role needs
//! `s3:GetObjectTagging` on the bucket) and maps it:
//!
//! | tag value | verdict |
//! |---|---|
//! | no tag yet | `Pending` |
//! | `NO_THREATS_FOUND` | `Clean` |
//! | `THREATS_FOUND` | `Infected` |
//! | `UNSUPPORTED`, `ACCESS_DENIED`, `FAILED` | `Failed` |
//! | anything else (a value AWS adds later) | `Failed`, logged: never mistaken for clean |
//!
//! GuardDuty cannot tag an object that already has 10 tags; such an object stays `Pending`.
//! A missing object is `PortError::NotFound`.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{MalwareScanner, PortResult, ScanVerdict};

use crate::error::map_sdk;

/// The tag GuardDuty Malware Protection for S3 puts on a scanned object.
pub const SCAN_STATUS_TAG: &str = "GuardDutyMalwareScanStatus";

/// The verdict a `GuardDutyMalwareScanStatus` tag value (or its absence) means.
pub fn verdict_from_tag(value: Option<&str>) -> ScanVerdict {
    match value {
        None => ScanVerdict::Pending,
        Some("NO_THREATS_FOUND") => ScanVerdict::Clean,
        Some("THREATS_FOUND") => ScanVerdict::Infected,
        Some("UNSUPPORTED" | "ACCESS_DENIED" | "FAILED") => ScanVerdict::Failed,
        Some(_) => {
            tracing::warn!("unknown GuardDuty scan status tag value; treated as failed");
            ScanVerdict::Failed
        }
    }
}

/// Scan verdicts of one bucket's objects. Obtain it from [`crate::AwsBackend::scanner`].
#[derive(Debug, Clone)]
pub struct GuardDutyTagScanner {
    client: Client,
    bucket: String,
}

impl GuardDutyTagScanner {
    pub fn new(client: Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl MalwareScanner for GuardDutyTagScanner {
    async fn verdict(&self, bucket_key: &str) -> PortResult<ScanVerdict> {
        check_key(bucket_key)?;
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(bucket_key)
            .send()
            .await
            .map_err(|e| map_sdk("s3", "GetObjectTagging", &e))?;
        let tag = out
            .tag_set()
            .iter()
            .find(|t| t.key() == SCAN_STATUS_TAG)
            .map(|t| t.value());
        let verdict = verdict_from_tag(tag);
        tracing::debug!(bucket = %self.bucket, key = bucket_key, ?verdict, "scan verdict read");
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_map_to_verdicts_and_only_no_threats_is_clean() {
        assert_eq!(verdict_from_tag(None), ScanVerdict::Pending);
        assert_eq!(
            verdict_from_tag(Some("NO_THREATS_FOUND")),
            ScanVerdict::Clean
        );
        assert_eq!(
            verdict_from_tag(Some("THREATS_FOUND")),
            ScanVerdict::Infected
        );
        for failed in [
            "UNSUPPORTED",
            "ACCESS_DENIED",
            "FAILED",
            "no_threats_found",
            "",
        ] {
            assert_eq!(
                verdict_from_tag(Some(failed)),
                ScanVerdict::Failed,
                "{failed}"
            );
        }
    }
}
