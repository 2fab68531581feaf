//! Revocation I/O for JPKI (My Number Card) signature verification.
//!
//! [`madoguchi_jpki`] is pure: it checks a signature against a
//! [`CrlSet`](madoguchi_jpki::CrlSet) of verified CRLs at a `now` it is given, and never fetches anything. This crate does the I/O around it:
//!
//! - [`CrlCache`] fetches the CRLs of the configured [`CrlLocation`]s (`http://`/`https://`,
//!   `blob:<key>` through a [`BlobStore`](madoguchi_ports::BlobStore), `file:/abs/path`;
//!   DER or PEM), verifies each against the trust anchors
//!   ([`CrlSet::insert`](madoguchi_jpki::CrlSet::insert)) and hands out the current set as
//!   an `Arc<CrlSet>`. It refreshes when the set was never loaded, is
//!   older than `max_age`, or holds a CRL whose nextUpdate has passed. Refreshes are
//!   single-flight, a failed fetch keeps the previous CRLs (verification turns into
//!   TRY_LATER by itself once they go stale), and retries after a failure wait
//!   `retry_after`, so an unreachable server never causes a refetch storm.
//! - [`OcspClient`] posts a DER OCSP request (RFC 6960, HTTP POST) and returns the DER
//!   response; building and checking the DER is [`madoguchi_jpki`]'s job. The
//!   [`OcspTransport`] trait lets the `esign` function be tested with other transports.
//!
//! In AWS the `blob:` locations read an S3 bucket that an ops job fills with the J-LIS CRLs;
//! embedded, a local directory. `http(s)` locations fetch from J-LIS (or a mirror) directly.
//!
//! # Environment
//!
//! [`CrlSettings::from_env`] reads:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MADOGUCHI_JPKI_CRL_URLS` | comma-separated CRL locations, e.g. `https://example.jp/sign.crl,blob:jpki/crl/sign.der` | required |
//! | `MADOGUCHI_JPKI_CRL_MAX_AGE_SECS` | refetch the CRLs after this many seconds even when they are still fresh | `3600` |
//!
//! Logging: locations, issuers (CA names), sizes, times and errors; never certificate
//! serials or anything about the people being checked.

mod cache;
mod error;
mod fetch;
mod location;
mod ocsp;

pub use cache::{
    CrlCache, CrlCacheConfig, CrlInfo, CrlSettings, ENV_CRL_MAX_AGE_SECS, ENV_CRL_URLS,
    LocationOutcome, LocationStatus, RefreshOutcome, Rejection,
};
pub use error::{ConfigError, FetchError};
pub use location::{CrlLocation, decode_crls};
pub use ocsp::{OcspClient, OcspTransport};
