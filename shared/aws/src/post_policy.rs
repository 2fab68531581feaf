//! S3 POST policies signed with AWS Signature Version 4 (browser-based uploads).
//!
//! The AWS SDK for Rust has no helper for presigned POST, so this module builds the form the
//! way S3's documentation describes it ("Browser-Based Uploads Using POST (AWS Signature
//! Version 4)" and "Creating a POST Policy" in the Amazon S3 API reference):
//!
//! - the policy is a JSON document with an `expiration` (ISO 8601, UTC) and `conditions`
//!   that every form field must satisfy: `{"bucket"}`, `{"key"}` (exact match, so the client
//!   cannot change the key), `["content-length-range", min, max]`, `{"Content-Type"}` when
//!   the policy fixes one, and the signature's own `x-amz-algorithm`, `x-amz-credential`,
//!   `x-amz-date` (and `x-amz-security-token` for temporary credentials);
//! - the string to sign is the policy's base64 (standard alphabet, padded);
//! - the signing key is the SigV4 chain `HMAC("AWS4" + secret, yyyymmdd)` → region → `s3` →
//!   `aws4_request`, and the signature is the hex HMAC-SHA-256 of the base64 policy under it.
//!
//! Everything here is pure (no I/O, no clock): [`crate::S3BlobStore::presign_post`] supplies
//! the credentials and "now". The unit tests check the signature against AWS's own worked
//! example ("Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)").

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use madoguchi_ports::UploadPolicy;
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm S3 accepts for SigV4 POST policies.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";

/// The parts of a credential the signature needs.
#[derive(Clone, Copy)]
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Set for temporary credentials (Lambda execution roles, STS); S3 then requires the
    /// token as a form field, covered by the policy.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for SigningCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    Zeroizing::new(m.finalize().into_bytes().into())
}

/// The SigV4 signing key for `date` (`yyyymmdd`), `region` and the `s3` service.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str) -> Zeroizing<[u8; 32]> {
    let seed = Zeroizing::new(format!("AWS4{secret_access_key}"));
    let k_date = hmac(seed.as_bytes(), date.as_bytes());
    let k_region = hmac(k_date.as_ref(), region.as_bytes());
    let k_service = hmac(k_region.as_ref(), SERVICE.as_bytes());
    hmac(k_service.as_ref(), b"aws4_request")
}

/// The hex signature of a base64-encoded policy.
pub fn sign_policy(secret_access_key: &str, date: &str, region: &str, policy_b64: &str) -> String {
    let key = signing_key(secret_access_key, date, region);
    hex::encode(hmac(key.as_ref(), policy_b64.as_bytes()).as_ref())
}

/// `yyyymmddThhmmssZ`, the `x-amz-date` form.
pub fn amz_date(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The URL the form is posted to: path-style `{endpoint}/{bucket}` with an endpoint override
/// (moto, another S3-compatible server), else S3's virtual-hosted regional endpoint. A bucket
/// name with dots does not match S3's wildcard certificate, so it gets the path-style form of
/// the regional endpoint.
pub fn post_url(bucket: &str, region: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(ep) => format!("{}/{bucket}", ep.trim_end_matches('/')),
        None if bucket.contains('.') => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
    }
}

/// The signed form for `policy`: the policy document (JSON, as signed) and the form fields in
/// the order the client must send them (`key`, `Content-Type`?, `x-amz-algorithm`,
/// `x-amz-credential`, `x-amz-date`, `x-amz-security-token`?, `policy`, `x-amz-signature`).
///
/// `now` dates the credential scope and `x-amz-date`; `expires_at` becomes the policy's
/// `expiration`. The caller has checked the policy ([`UploadPolicy::check`]).
pub fn form_fields(
    bucket: &str,
    region: &str,
    credentials: SigningCredentials<'_>,
    policy: &UploadPolicy,
    now: jiff::Timestamp,
    expires_at: jiff::Timestamp,
) -> (String, Vec<(String, String)>) {
    let date = now.strftime("%Y%m%d").to_string();
    let amz_date = amz_date(now);
    let credential = format!(
        "{}/{date}/{region}/{SERVICE}/aws4_request",
        credentials.access_key_id
    );
    let mut conditions = vec![
        serde_json::json!({ "bucket": bucket }),
        serde_json::json!({ "key": policy.key }),
        serde_json::json!(["content-length-range", policy.min_bytes, policy.max_bytes]),
    ];
    if let Some(ct) = &policy.content_type {
        conditions.push(serde_json::json!({ "Content-Type": ct }));
    }
    conditions.push(serde_json::json!({ "x-amz-algorithm": ALGORITHM }));
    conditions.push(serde_json::json!({ "x-amz-credential": credential }));
    conditions.push(serde_json::json!({ "x-amz-date": amz_date }));
    if let Some(token) = credentials.session_token {
        conditions.push(serde_json::json!({ "x-amz-security-token": token }));
    }
    let document = serde_json::json!({
        "expiration": expires_at.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        "conditions": conditions,
    })
    .to_string();
    let policy_b64 = STANDARD.encode(document.as_bytes());
    let signature = sign_policy(credentials.secret_access_key, &date, region, &policy_b64);

    let mut fields = vec![("key".to_owned(), policy.key.clone())];
    if let Some(ct) = &policy.content_type {
        fields.push(("Content-Type".to_owned(), ct.clone()));
    }
    fields.push(("x-amz-algorithm".to_owned(), ALGORITHM.to_owned()));
    fields.push(("x-amz-credential".to_owned(), credential));
    fields.push(("x-amz-date".to_owned(), amz_date));
    if let Some(token) = credentials.session_token {
        fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    fields.push(("policy".to_owned(), policy_b64));
    fields.push(("x-amz-signature".to_owned(), signature));
    (document, fields)
}

/// The policy document of a form's `policy` field (for checks and diagnostics; S3 is the
/// one that enforces it). `None` when it is not base64 of a JSON document.
pub fn decode_policy(policy_b64: &str) -> Option<serde_json::Value> {
    let bytes = STANDARD.decode(policy_b64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    // AWS's worked example: "Example: Browser-Based Upload using HTTP POST (Using AWS
    // Signature Version 4)", Amazon S3 API Reference
    // (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html). It publishes
    // the example credentials, the policy's exact base64 form (CRLF line ends included) and
    // the resulting signature "as test suite to verify your signature calculation code".
    const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const EXAMPLE_POLICY_B64: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
    const EXAMPLE_SIGNATURE: &str =
        "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";

    #[test]
    fn signature_matches_the_aws_documentation_example() {
        // The example's inputs: the policy is signed as its base64 text, scope
        // 20151229/us-east-1/s3/aws4_request.
        let decoded = String::from_utf8(STANDARD.decode(EXAMPLE_POLICY_B64).unwrap()).unwrap();
        assert!(decoded.contains(
            r#""x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request""#
        ));
        assert!(decoded.contains(r#""expiration": "2015-12-30T12:00:00.000Z""#));
        assert_eq!(
            sign_policy(EXAMPLE_SECRET, "20151229", "us-east-1", EXAMPLE_POLICY_B64),
            EXAMPLE_SIGNATURE
        );
        // One bit of the policy, the date or the region changes the signature.
        let other = EXAMPLE_POLICY_B64.replacen('e', "f", 1);
        assert_ne!(
            sign_policy(EXAMPLE_SECRET, "20151229", "us-east-1", &other),
            EXAMPLE_SIGNATURE
        );
        assert_ne!(
            sign_policy(EXAMPLE_SECRET, "20151230", "us-east-1", EXAMPLE_POLICY_B64),
            EXAMPLE_SIGNATURE
        );
        assert_ne!(
            sign_policy(
                EXAMPLE_SECRET,
                "20151229",
                "ap-northeast-1",
                EXAMPLE_POLICY_B64
            ),
            EXAMPLE_SIGNATURE
        );
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_form_covers_every_field_with_a_condition_and_signs_the_policy() {
        let creds = SigningCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: EXAMPLE_SECRET,
            session_token: Some("FwoGZXIvYXdzE//token+/="),
        };
        let policy = UploadPolicy::new(
            "131016/attachments/申請書 1.pdf",
            1,
            10 * 1024 * 1024,
            Duration::from_secs(600),
        )
        .with_content_type("application/pdf");
        let now = ts("2026-11-23T01:02:03.456Z");
        let expires_at = policy.expires_at(now);
        let (document, fields) = form_fields(
            "mdg-attachments",
            "ap-northeast-1",
            creds,
            &policy,
            now,
            expires_at,
        );
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "Content-Type",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "x-amz-security-token",
                "policy",
                "x-amz-signature"
            ]
        );
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(
            get("x-amz-credential"),
            "AKIAIOSFODNN7EXAMPLE/20261123/ap-northeast-1/s3/aws4_request"
        );
        assert_eq!(get("x-amz-date"), "20261123T010203Z");
        assert_eq!(STANDARD.decode(get("policy")).unwrap(), document.as_bytes());
        assert_eq!(
            decode_policy(&get("policy")),
            serde_json::from_str(&document).ok()
        );
        assert_eq!(decode_policy("not base64!"), None);

        let doc: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(doc["expiration"], "2026-11-23T01:12:03.000Z");
        let conditions = doc["conditions"].as_array().unwrap();
        assert!(conditions.contains(&serde_json::json!({"bucket": "mdg-attachments"})));
        assert!(conditions.contains(&serde_json::json!([
            "content-length-range",
            1,
            10 * 1024 * 1024
        ])));
        // Every field but the policy and the signature is pinned by an exact condition.
        for (name, value) in &fields {
            if name == "policy" || name == "x-amz-signature" {
                continue;
            }
            assert!(
                conditions.contains(&serde_json::json!({ name.as_str(): value })),
                "{name} is not covered by the policy"
            );
        }
        // The signature is the SigV4 HMAC of the base64 policy under the scope's date.
        assert_eq!(
            get("x-amz-signature"),
            sign_policy(EXAMPLE_SECRET, "20261123", "ap-northeast-1", &get("policy"))
        );
    }

    #[test]
    fn permanent_credentials_send_no_token_and_no_content_type_unless_fixed() {
        let creds = SigningCredentials {
            access_key_id: "AKID",
            secret_access_key: "secret",
            session_token: None,
        };
        let policy = UploadPolicy::new("a/b.jpg", 0, 5, Duration::from_secs(60));
        let now = ts("2026-01-01T00:00:00Z");
        let (document, fields) = form_fields("b", "ap-northeast-1", creds, &policy, now, now);
        assert!(!document.contains("x-amz-security-token"));
        assert!(!document.contains("Content-Type"));
        assert!(
            fields
                .iter()
                .all(|(k, _)| k != "x-amz-security-token" && k != "Content-Type")
        );
        assert!(format!("{creds:?}").contains("AKID") && !format!("{creds:?}").contains("secret"));
    }

    #[test]
    fn urls_are_path_style_with_an_endpoint_and_virtual_hosted_otherwise() {
        assert_eq!(
            post_url("b-1", "ap-northeast-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/b-1"
        );
        assert_eq!(
            post_url("b-1", "ap-northeast-1", None),
            "https://b-1.s3.ap-northeast-1.amazonaws.com"
        );
        assert_eq!(
            post_url("b.jp", "ap-northeast-3", None),
            "https://s3.ap-northeast-3.amazonaws.com/b.jp"
        );
    }
}
