//! Errors: configuration (at start-up) and fetching (per location, per request).

use serde::{Serialize, Serializer};

/// A configuration that cannot work: a bad location string, a missing or malformed
/// environment variable, a `blob:` location without a blob store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The location starts with none of the accepted schemes.
    #[error(
        "unknown CRL location scheme in {0:?}: expected http://…, https://…, blob:<key> or file:/absolute/path"
    )]
    UnknownScheme(String),
    /// The scheme is known but the rest is not usable.
    #[error("CRL location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as configured.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `blob:` location was configured but the cache was given no blob store.
    #[error("CRL location {0:?} needs a blob store, and none was given")]
    NoBlobStore(String),
    /// A required environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    MissingVar(&'static str),
    /// An environment variable does not parse.
    #[error("environment variable {var}: {reason}")]
    InvalidVar {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// An OCSP responder URL that is not an absolute `http(s)` URL.
    #[error("OCSP responder URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("HTTP client: {0}")]
    HttpClient(String),
}

/// Why bytes could not be fetched from one location or responder. Messages name no person:
/// they carry statuses, sizes, content types and transport errors only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The whole fetch took longer than the configured timeout.
    #[error("timed out")]
    Timeout,
    /// The HTTP server answered with a status other than the one expected.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The HTTP response's content type is not the one required (OCSP).
    #[error("unexpected content type {0:?}")]
    ContentType(String),
    /// The body is larger than the size cap.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// Connecting, TLS, or reading the HTTP body failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The file or blob does not exist.
    #[error("not found")]
    NotFound,
    /// Reading a file failed.
    #[error("I/O: {0}")]
    Io(String),
    /// The blob store failed (other than not found).
    #[error("blob store: {0}")]
    Blob(String),
    /// The bytes are neither a DER CRL nor PEM `X509 CRL` blocks, or a CRL does not parse;
    /// or an OCSP response is empty.
    #[error("decode: {0}")]
    Decode(String),
}

/// Serialised as its message, for the ops endpoint's JSON.
impl Serialize for FetchError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reqwest error as a [`FetchError`], with its source chain (reqwest's own message is
/// only "error sending request") and without the URL (the caller logs the location).
pub(crate) fn from_reqwest(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    FetchError::Transport(msg)
}
