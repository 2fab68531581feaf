//! Webhook signatures in Stripe's scheme.
//!
//! The `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each `v1`
//! is the hex HMAC-SHA256, keyed with the endpoint's signing secret, of `"<t>.<raw body>"`.
//! Several `v1` values appear while a secret is being rolled; any one matching is enough.
//! Other schemes (`v0`, test schemes, future ones) are ignored. The timestamp must be within
//! the tolerance of the clock time the caller passes (either direction), which bounds how
//! long a captured request can be replayed.
//!
//! Verification runs on the exact bytes received: parse JSON only after [`verify`], never
//! re-serialise before it.

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;
use thiserror::Error;

use crate::port::Event;

/// The header's name (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Stripe's libraries' default tolerance.
pub const DEFAULT_TOLERANCE: SignedDuration = SignedDuration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    Malformed(&'static str),
    #[error("no signature matches the body")]
    NoMatchingSignature,
    #[error("timestamp {timestamp} outside the tolerance around {now}")]
    TimestampOutsideTolerance { timestamp: i64, now: i64 },
    /// The signature was good but the body is not an event we can read.
    #[error("invalid event payload: {0}")]
    InvalidPayload(String),
}

fn mac(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The hex `v1` signature of `body` at time `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, t, body).finalize().into_bytes())
}

/// The header value a gateway would send: `t=<t>,v1=<hex>`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", signature(secret, t, body))
}

struct Parsed {
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Parsed, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or(WebhookError::Malformed("element without '='"))?;
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::Malformed("more than one timestamp"));
                }
                let t = v
                    .parse::<i64>()
                    .map_err(|_| WebhookError::Malformed("timestamp is not a number"))?;
                timestamp = Some(t);
            }
            // A v1 that is not 32 bytes of hex can never match; skipping it keeps a
            // well-formed sibling usable.
            "v1" => {
                if let Ok(bytes) = hex::decode(v)
                    && bytes.len() == 32
                {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::Malformed("no timestamp"))?;
    Ok(Parsed { timestamp, v1 })
}

/// Checks the header against the raw body; returns the signed timestamp.
///
/// `header` is `None` when the request had no `Stripe-Signature` header.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<i64, WebhookError> {
    let header = header.ok_or(WebhookError::MissingHeader)?;
    let parsed = parse(header)?;
    if parsed.v1.is_empty() {
        return Err(WebhookError::NoMatchingSignature);
    }
    let expected = mac(secret, parsed.timestamp, body);
    // `verify_slice` compares in constant time.
    let matched = parsed
        .v1
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok());
    if !matched {
        return Err(WebhookError::NoMatchingSignature);
    }
    // The time check comes after the signature so that an unsigned request learns nothing
    // about our clock.
    let now_s = now.as_second();
    let age = now_s.saturating_sub(parsed.timestamp);
    if age.unsigned_abs() > tolerance.as_secs().unsigned_abs() {
        return Err(WebhookError::TimestampOutsideTolerance {
            timestamp: parsed.timestamp,
            now: now_s,
        });
    }
    Ok(parsed.timestamp)
}

/// [`verify`], then parse the body as an [`Event`].
pub fn construct_event(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<Event, WebhookError> {
    verify(secret, header, body, now, tolerance)?;
    serde_json::from_slice(body).map_err(|e| WebhookError::InvalidPayload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let h = sign("whsec_x", 1_700_000_000, b"{}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify("whsec_x", Some(&h), b"{}", now, DEFAULT_TOLERANCE),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn malformed_headers() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        for (h, want) in [
            ("v1=abcd", WebhookError::Malformed("no timestamp")),
            (
                "t=abc,v1=00",
                WebhookError::Malformed("timestamp is not a number"),
            ),
            (
                "t=1,t=2,v1=00",
                WebhookError::Malformed("more than one timestamp"),
            ),
            ("garbage", WebhookError::Malformed("element without '='")),
            ("t=1700000000,v0=abcd", WebhookError::NoMatchingSignature),
        ] {
            assert_eq!(
                verify("s", Some(h), b"", now, DEFAULT_TOLERANCE),
                Err(want),
                "{h}"
            );
        }
    }
}
