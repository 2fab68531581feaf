//! HMAC-signed blob URLs for the local host.
//!
//! URL: `{public_base_url}/_blobs/{bucket}/{key, each segment percent-encoded}`
//! `?X-Method=GET|PUT&X-Expires=<epoch seconds>&X-Signature=<hex>` where the signature is
//! `HMAC-SHA-256(presign.key, "madoguchi-presign-v1\n{METHOD}\n{bucket}\n{key}\n{expires}")`.
//! The URL stays valid while `now <= expires`.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use madoguchi_ports::{PortError, PortResult, PresignMethod};
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

pub(crate) fn check_expiry_window(expires_in: std::time::Duration) -> PortResult<()> {
    // S3 (SigV4) presigned URLs live at most 7 days; refuse the same here.
    if expires_in.is_zero() || expires_in > std::time::Duration::from_secs(7 * 24 * 3600) {
        return Err(PortError::Invalid(
            "presigned url lifetime is 1 second to 7 days".into(),
        ));
    }
    Ok(())
}
