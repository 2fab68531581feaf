//! MalwareScanner contract: what each adapter set reports for uploaded objects.
//!
//! - AWS: [`madoguchi_aws::GuardDutyTagScanner`] reads GuardDuty Malware Protection for S3's
//!   `GuardDutyMalwareScanStatus` object tag. moto has no GuardDuty scanning, so the tests
//!   put the tag themselves, as GuardDuty would after its scan.
//! - Embedded: [`madoguchi_embedded::NotScannedScanner`]: no scanner, always `NotScanned`.

use std::sync::Arc;

use bytes::Bytes;
use madoguchi_ports::{MalwareScanner, PortError, ScanVerdict};
use madoguchi_tests::{Env, Kind, contract_tests};

contract_tests!(
    verdicts_of_uploaded_objects,
    only_a_clean_scan_is_clean,
    bad_keys_refused_or_ignored,
);

async fn scanner(env: &Env, bucket: &str) -> Arc<dyn MalwareScanner> {
    match env.kind {
        Kind::Aws => env.aws_backend().unwrap().scanner(bucket),
        Kind::Embedded => env.embedded_backend().unwrap().scanner(),
    }
}

/// Uploads `key` with the given object tags (URL query form), as an object GuardDuty has
/// already tagged. AWS only.
async fn put_tagged(env: &Env, bucket: &str, key: &str, tagging: &str) {
    env.aws_backend()
        .unwrap()
        .s3_client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(b"%PDF-1.7".to_vec().into())
        .tagging(tagging)
        .send()
        .await
        .expect("put tagged object");
}

/// PutObjectTagging on an existing object, as GuardDuty does when its scan ends. Sent as
/// plain HTTP (the tests crate does not link the S3 SDK's model types): moto checks no
/// signature, but its server picks the service from the `Authorization` header's credential
/// scope (an unsigned `?tagging` PUT is answered 403), hence the unsigned stand-in. AWS only.
async fn tag_existing(bucket: &str, key: &str, value: &str) {
    let path: Vec<String> = key
        .split('/')
        .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
        .map(|s| s.replace('+', "%20"))
        .collect();
    let body = format!(
        "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>\
         <Tag><Key>GuardDutyMalwareScanStatus</Key><Value>{value}</Value></Tag>\
         </TagSet></Tagging>"
    );
    let res = reqwest::Client::new()
        .put(format!(
            "{}/{bucket}/{}?tagging",
            madoguchi_tests::aws_endpoint(),
            path.join("/")
        ))
        .header("authorization", MOTO_S3_AUTHORIZATION)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "tagging: {}", res.status());
}

/// Names S3 as the service for moto's dispatcher; moto checks no signature.
const MOTO_S3_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
    Credential=madoguchi-local/20260101/ap-northeast-1/s3/aws4_request, \
    SignedHeaders=host, Signature=0";

async fn verdicts_of_uploaded_objects(env: Env) {
    let (store, bucket) = env.blobs().await;
    let scanner = scanner(&env, &bucket).await;
    let key = "131016/attachments/a1/住民票 写し.pdf";
    store
        .put(
            key,
            Bytes::from_static(b"%PDF-1.7"),
            Some("application/pdf"),
        )
        .await
        .unwrap();
    match env.kind {
        Kind::Embedded => {
            assert_eq!(scanner.verdict(key).await.unwrap(), ScanVerdict::NotScanned);
            // It never looks at the object: a missing one is "not scanned" too.
            assert_eq!(
                scanner.verdict("131016/missing.pdf").await.unwrap(),
                ScanVerdict::NotScanned
            );
        }
        Kind::Aws => {
            assert_eq!(
                scanner.verdict(key).await.unwrap(),
                ScanVerdict::Pending,
                "no tag yet: the scan has not reported"
            );
            tag_existing(&bucket, key, "NO_THREATS_FOUND").await;
            assert_eq!(scanner.verdict(key).await.unwrap(), ScanVerdict::Clean);
            tag_existing(&bucket, key, "THREATS_FOUND").await;
            assert_eq!(scanner.verdict(key).await.unwrap(), ScanVerdict::Infected);
            assert!(matches!(
                scanner.verdict("131016/missing.pdf").await,
                Err(PortError::NotFound)
            ));
        }
    }
}

async fn only_a_clean_scan_is_clean(env: Env) {
    let (_, bucket) = env.blobs().await;
    let scanner = scanner(&env, &bucket).await;
    if env.kind == Kind::Embedded {
        assert!(!scanner.verdict("131016/a.pdf").await.unwrap().is_clean());
        return;
    }
    let cases = [
        ("NO_THREATS_FOUND", ScanVerdict::Clean),
        ("THREATS_FOUND", ScanVerdict::Infected),
        ("UNSUPPORTED", ScanVerdict::Failed),
        ("ACCESS_DENIED", ScanVerdict::Failed),
        ("FAILED", ScanVerdict::Failed),
        ("SOMETHING_NEW", ScanVerdict::Failed),
    ];
    for (i, (value, verdict)) in cases.iter().enumerate() {
        let key = format!("131016/attachments/{i}.pdf");
        put_tagged(
            &env,
            &bucket,
            &key,
            &format!("department=shimin&GuardDutyMalwareScanStatus={value}"),
        )
        .await;
        assert_eq!(scanner.verdict(&key).await.unwrap(), *verdict, "{value}");
    }
    // Other tags alone do not make a verdict.
    put_tagged(
        &env,
        &bucket,
        "131016/attachments/other.pdf",
        "department=shimin",
    )
    .await;
    assert_eq!(
        scanner
            .verdict("131016/attachments/other.pdf")
            .await
            .unwrap(),
        ScanVerdict::Pending
    );
}

async fn bad_keys_refused_or_ignored(env: Env) {
    let (_, bucket) = env.blobs().await;
    let scanner = scanner(&env, &bucket).await;
    for bad in ["", "/abs", "a/../b"] {
        match env.kind {
            Kind::Aws => assert!(
                matches!(scanner.verdict(bad).await, Err(PortError::Invalid(_))),
                "{bad:?}"
            ),
            Kind::Embedded => {
                assert_eq!(scanner.verdict(bad).await.unwrap(), ScanVerdict::NotScanned)
            }
        }
    }
}
