//! HMAC-signed blob URLs for the local host.
//!
//! URL: `{public_base_url}/_blobs/{bucket}/{key, each segment percent-encoded}`
//! `?X-Method=GET|PUT&X-Expires=<epoch seconds>&X-Signature=<hex>` where the signature is
//! `HMAC-SHA-256(presign.key, "madoguchi-presign-v1\n{METHOD}\n{bucket}\n{key}\n{expires}")`.
//! The URL stays valid while `now <= expires`.
//!
//! Presigned POST (browser upload forms): `POST {public_base_url}/_blobs/{bucket}` with the
//! form fields `key`, `Content-Type` (only when the policy fixes one), `policy` and
//! `x-madoguchi-signature`, then the file part. `policy` is the unpadded base64url of
//! `{"key", "min", "max", "expires" (epoch seconds), "content_type"?}` and the signature is
//! `hex(HMAC-SHA-256(presign.key, "madoguchi-presign-post-v1\n{bucket}\n{policy}"))`, a
//! domain separate from the URLs' so neither can stand for the other. The policy holds
//! while `now <= expires`.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use madoguchi_ports::{PortError, PortResult, PresignMethod, UploadPolicy};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn method_name(method: PresignMethod) -> &'static str {
    match method {
        PresignMethod::Get => "GET",
        PresignMethod::Put => "PUT",
    }
}

fn mac(
    key: &[u8; 32],
    method: PresignMethod,
    bucket: &str,
    blob_key: &str,
    expires: i64,
) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"madoguchi-presign-v1\n");
    m.update(method_name(method).as_bytes());
    m.update(b"\n");
    m.update(bucket.as_bytes());
    m.update(b"\n");
    m.update(blob_key.as_bytes());
    m.update(b"\n");
    m.update(expires.to_string().as_bytes());
    m
}

/// The query string (without `?`) for a presigned URL.
pub(crate) fn signed_query(
    key: &[u8; 32],
    method: PresignMethod,
    bucket: &str,
    blob_key: &str,
    expires: i64,
) -> String {
    let sig = mac(key, method, bucket, blob_key, expires)
        .finalize()
        .into_bytes();
    format!(
        "X-Method={}&X-Expires={expires}&X-Signature={}",
        method_name(method),
        hex::encode(sig)
    )
}

/// Form field carrying the signature of an embedded presigned POST policy.
pub const POST_SIGNATURE_FIELD: &str = "x-madoguchi-signature";
/// Longest `policy` field accepted (a key is at most 1,024 bytes).
const MAX_POLICY_FIELD: usize = 4096;

/// The signed policy of an embedded presigned POST.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostPolicyDoc {
    key: String,
    min: u64,
    max: u64,
    expires: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
}

fn post_mac(key: &[u8; 32], bucket: &str, policy_b64: &str) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"madoguchi-presign-post-v1\n");
    m.update(bucket.as_bytes());
    m.update(b"\n");
    m.update(policy_b64.as_bytes());
    m
}

/// The form fields of a presigned POST for `policy` (checked by the caller), in order.
pub(crate) fn post_fields(
    key: &[u8; 32],
    bucket: &str,
    policy: &UploadPolicy,
    expires: i64,
) -> Vec<(String, String)> {
    let doc = PostPolicyDoc {
        key: policy.key.clone(),
        min: policy.min_bytes,
        max: policy.max_bytes,
        expires,
        content_type: policy.content_type.clone(),
    };
    let policy_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).expect("policy serializes"));
    let signature = hex::encode(post_mac(key, bucket, &policy_b64).finalize().into_bytes());
    let mut fields = vec![("key".to_owned(), policy.key.clone())];
    if let Some(ct) = &policy.content_type {
        fields.push(("Content-Type".to_owned(), ct.clone()));
    }
    fields.push(("policy".to_owned(), policy_b64));
    fields.push((POST_SIGNATURE_FIELD.to_owned(), signature));
    fields
}

/// What a verified presigned POST form allows: the object to store and its size range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostGrant {
    pub key: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub expires_at: jiff::Timestamp,
    /// The content type to store the object with (fixed by the policy), if any.
    pub content_type: Option<String>,
}

/// Percent-encodes a blob key for a URL path, keeping `/` between segments.
pub(crate) fn encode_key_path(key: &str) -> String {
    key.split('/')
        .map(|seg| urlencoding::encode(seg).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks presigned URLs made by [`crate::FsBlobStore::presign`]. Cheap to clone.
#[derive(Clone)]
pub struct PresignVerifier {
    key: Arc<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for PresignVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignVerifier").finish_non_exhaustive()
    }
}

impl PresignVerifier {
    pub(crate) fn new(key: Arc<Zeroizing<[u8; 32]>>) -> Self {
        Self { key }
    }

    /// Checks a presigned URL's query (as produced by FsBlobStore::presign) for
    /// `bucket`/`key`/method at `now`.
    ///
    /// `key` is the decoded blob key (the URL path after `/_blobs/{bucket}/`, percent-decoded);
    /// `query` is the raw query string, with or without its leading `?`. Every refusal
    /// (missing or repeated parameter, other method, expired, bad signature) is
    /// `PortError::Invalid` with a short reason that holds no part of the URL.
    pub fn verify(
        &self,
        bucket: &str,
        key: &str,
        method: PresignMethod,
        query: &str,
        now: jiff::Timestamp,
    ) -> Result<(), PortError> {
        let refuse = |why: &str| PortError::Invalid(format!("presigned url refused: {why}"));
        let mut got_method = None;
        let mut expires = None;
        let mut signature = None;
        for pair in query
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = urlencoding::decode(value).map_err(|_| refuse("bad encoding"))?;
            let slot = match name {
                "X-Method" => &mut got_method,
                "X-Expires" => &mut expires,
                "X-Signature" => &mut signature,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(refuse("repeated parameter"));
            }
        }
        let (Some(got_method), Some(expires), Some(signature)) = (got_method, expires, signature)
        else {
            return Err(refuse("missing parameter"));
        };
        if got_method != method_name(method) {
            return Err(refuse("method"));
        }
        let expires_at: i64 = expires.parse().map_err(|_| refuse("bad expiry"))?;
        // Check the signature before trusting the expiry it covers.
        let sig = hex::decode(&signature).map_err(|_| refuse("signature"))?;
        mac(&self.key, method, bucket, key, expires_at)
            .verify_slice(&sig)
            .map_err(|_| refuse("signature"))?;
        if now.as_second() > expires_at {
            return Err(refuse("expired"));
        }
        Ok(())
    }
}

impl PresignVerifier {
    /// Checks the fields of a presigned POST form (as produced by
    /// [`crate::FsBlobStore::presign_post`] for `bucket`, as the client sent them, before the
    /// file part) at `now`, and returns what the form allows.
    ///
    /// Refused, as `PortError::Invalid` with a short reason that holds no field value:
    /// a missing, repeated or unknown field (names compare case-insensitively; only `key`,
    /// `Content-Type`, `policy` and `x-madoguchi-signature` are allowed, as S3 refuses fields
    /// its policy does not cover), a bad signature (another bucket, a changed policy), a
    /// `key` other than the signed one, a `Content-Type` other than the signed one (or one
    /// the policy does not fix), and an expired policy.
    pub fn verify_post_form(
        &self,
        bucket: &str,
        fields: &[(String, String)],
        now: jiff::Timestamp,
    ) -> Result<PostGrant, PortError> {
        let refuse = |why: &str| PortError::Invalid(format!("presigned post refused: {why}"));
        let mut key = None;
        let mut content_type = None;
        let mut policy = None;
        let mut signature = None;
        for (name, value) in fields {
            let slot = match name.to_ascii_lowercase().as_str() {
                "key" => &mut key,
                "content-type" => &mut content_type,
                "policy" => &mut policy,
                POST_SIGNATURE_FIELD => &mut signature,
                _ => return Err(refuse("field not allowed by the policy")),
            };
            if slot.replace(value.as_str()).is_some() {
                return Err(refuse("repeated field"));
            }
        }
        let (Some(key), Some(policy), Some(signature)) = (key, policy, signature) else {
            return Err(refuse("missing field"));
        };
        if policy.len() > MAX_POLICY_FIELD {
            return Err(refuse("policy"));
        }
        // Check the signature before trusting anything the policy says.
        let sig = hex::decode(signature).map_err(|_| refuse("signature"))?;
        post_mac(&self.key, bucket, policy)
            .verify_slice(&sig)
            .map_err(|_| refuse("signature"))?;
        let doc: PostPolicyDoc = URL_SAFE_NO_PAD
            .decode(policy)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refuse("policy"))?;
        if key != doc.key {
            return Err(refuse("key"));
        }
        if content_type != doc.content_type.as_deref() {
            return Err(refuse("content type"));
        }
        if now.as_second() > doc.expires {
            return Err(refuse("expired"));
        }
        Ok(PostGrant {
            key: doc.key,
            min_bytes: doc.min,
            max_bytes: doc.max,
            expires_at: jiff::Timestamp::from_second(doc.expires).map_err(|_| refuse("policy"))?,
            content_type: doc.content_type,
        })
    }
}

pub(crate) fn check_expiry_window(expires_in: std::time::Duration) -> PortResult<()> {
    // S3 (SigV4) presigned URLs live at most 7 days; refuse the same here.
    if expires_in.is_zero() || expires_in > std::time::Duration::from_secs(7 * 24 * 3600) {
        return Err(PortError::Invalid(
            "presigned url lifetime is 1 second to 7 days".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn verifier() -> (PresignVerifier, Arc<Zeroizing<[u8; 32]>>) {
        let key = Arc::new(Zeroizing::new([7u8; 32]));
        (PresignVerifier::new(key.clone()), key)
    }

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| {
                let v = if k == name { value } else { v };
                (k.clone(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn a_post_form_verifies_and_grants_its_policy() {
        let (v, key) = verifier();
        let policy = UploadPolicy::new("131016/a b.pdf", 1, 100, Duration::from_secs(60))
            .with_content_type("application/pdf");
        let fields = post_fields(&key, "uploads", &policy, 1_060);
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["key", "Content-Type", "policy", POST_SIGNATURE_FIELD]
        );
        let grant = v.verify_post_form("uploads", &fields, at(1_060)).unwrap();
        assert_eq!(
            grant,
            PostGrant {
                key: "131016/a b.pdf".into(),
                min_bytes: 1,
                max_bytes: 100,
                expires_at: at(1_060),
                content_type: Some("application/pdf".into()),
            }
        );
        // Field names compare case-insensitively, as S3's do.
        let upper: Vec<_> = fields
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        assert!(v.verify_post_form("uploads", &upper, at(1_000)).is_ok());
    }

    #[test]
    fn changed_or_extra_fields_other_buckets_and_late_forms_are_refused() {
        let (v, key) = verifier();
        let policy = UploadPolicy::new("131016/a.pdf", 0, 100, Duration::from_secs(60));
        let fields = post_fields(&key, "uploads", &policy, 1_060);
        let ok = |f: &[(String, String)]| v.verify_post_form("uploads", f, at(1_000));
        assert!(ok(&fields).is_ok());
        let policy_b64 = fields
            .iter()
            .find(|(k, _)| k == "policy")
            .unwrap()
            .1
            .clone();

        let mut cases: Vec<(&str, Vec<(String, String)>)> = vec![
            ("other key", with(&fields, "key", "131016/other.pdf")),
            (
                "tampered policy",
                with(&fields, "policy", &format!("{policy_b64}A")),
            ),
            ("bad signature", with(&fields, POST_SIGNATURE_FIELD, "00")),
            ("missing signature", fields[..2].to_vec()),
        ];
        let mut extra = fields.clone();
        extra.push(("x-amz-meta-note".into(), "x".into()));
        cases.push(("extra field", extra));
        let mut repeated = fields.clone();
        repeated.insert(1, ("key".into(), "131016/a.pdf".into()));
        cases.push(("repeated key", repeated));
        let mut with_ct = fields.clone();
        with_ct.insert(1, ("Content-Type".into(), "text/html".into()));
        cases.push(("content type the policy does not fix", with_ct));
        for (why, f) in &cases {
            assert!(ok(f).is_err(), "{why} must be refused");
        }
        assert!(v.verify_post_form("other", &fields, at(1_000)).is_err());
        assert!(v.verify_post_form("uploads", &fields, at(1_060)).is_ok());
        assert!(v.verify_post_form("uploads", &fields, at(1_061)).is_err());

        // A form signed by another data directory's key is refused.
        let other = post_fields(&[8u8; 32], "uploads", &policy, 1_060);
        assert!(ok(&other).is_err());

        let fixed = policy.clone().with_content_type("image/png");
        let fields = post_fields(&key, "uploads", &fixed, 1_060);
        assert!(ok(&fields).is_ok());
        assert!(ok(&with(&fields, "Content-Type", "text/html")).is_err());
        let without: Vec<_> = fields
            .iter()
            .filter(|(k, _)| k != "Content-Type")
            .cloned()
            .collect();
        assert!(ok(&without).is_err(), "the fixed content type is required");
    }

    #[test]
    fn refusals_name_no_field_value() {
        let (v, key) = verifier();
        let policy = UploadPolicy::new("131016/秘密.pdf", 0, 1, Duration::from_secs(60));
        let fields = post_fields(&key, "uploads", &policy, 10);
        let err = v
            .verify_post_form("uploads", &with(&fields, "key", "131016/他人.pdf"), at(0))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("秘密") && !err.contains("他人"), "{err}");
    }
}
