//! Where a CRL is read from, and how its bytes become [`Crl`]s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use madoguchi_jpki::Crl;
use serde::{Serialize, Serializer};

use crate::error::{ConfigError, FetchError};

/// One configured source of CRLs. Parsed from configuration strings:
///
/// - `http://…`, `https://…`: fetched with an HTTP GET (conditional, with the validators of
///   the last answer);
/// - `blob:<key>`: read through the [`BlobStore`](madoguchi_ports::BlobStore) given to the
///   cache (AWS: the S3 bucket an ops job mirrors the J-LIS CRLs into; embedded: a local
///   directory);
/// - `file:/absolute/path` (also `file:///absolute/path`): a local file, for tests and the
///   embedded mode.
///
/// The bytes may be one DER CRL or one or more PEM `X509 CRL` blocks.
#[derive(Clone, PartialEq, Eq)]
pub enum CrlLocation {
    /// An `http` or `https` URL.
    Http(reqwest::Url),
    /// A key of the cache's blob store.
    Blob(String),
    /// An absolute path.
    File(PathBuf),
}

impl CrlLocation {
    /// Parses one location string (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        let invalid = |reason: &str| ConfigError::InvalidLocation {
            location: s.to_owned(),
            reason: reason.to_owned(),
        };
        let scheme = s
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => {
                let url = reqwest::Url::parse(s).map_err(|e| invalid(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("the URL has no host"));
                }
                Ok(Self::Http(url))
            }
            Some("blob") => {
                let key = &s["blob:".len()..];
                madoguchi_ports::blob::check_key(key).map_err(|_| {
                    invalid("not a valid blob key (relative, `/`-separated, no `..`)")
                })?;
                Ok(Self::Blob(key.to_owned()))
            }
            Some("file") => {
                let rest = &s["file:".len()..];
                // `file:///x` is the URL form of `file:/x`; `file://host/x` is not supported.
                let path = match rest.strip_prefix("//") {
                    Some(p) if p.starts_with('/') => p,
                    Some(_) => return Err(invalid("file URLs with a host are not supported")),
                    None => rest,
                };
                if !Path::new(path).is_absolute() {
                    return Err(invalid("the path must be absolute"));
                }
                Ok(Self::File(PathBuf::from(path)))
            }
            _ => Err(ConfigError::UnknownScheme(s.to_owned())),
        }
    }

    /// Parses a comma-separated list, skipping empty entries (a trailing comma is harmless).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, ConfigError> {
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Self::parse)
            .collect()
    }
}

impl FromStr for CrlLocation {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The location as configured, except that URL credentials are masked (this is what logs
/// and the ops endpoint show).
impl fmt::Display for CrlLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(url) if !url.username().is_empty() || url.password().is_some() => {
                let mut shown = url.clone();
                let _ = shown.set_password(None);
                let _ = shown.set_username("***");
                write!(f, "{shown}")
            }
            Self::Http(url) => write!(f, "{url}"),
            Self::Blob(key) => write!(f, "blob:{key}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// Same as `Display`, so that credentials in a URL never reach a debug log either.
impl fmt::Debug for CrlLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CrlLocation")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// Serialised as its `Display` string.
impl Serialize for CrlLocation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const PEM_BEGIN: &[u8] = b"-----BEGIN X509 CRL-----";
const PEM_END: &[u8] = b"-----END X509 CRL-----";

/// Parses the CRLs in `bytes`: one DER CRL, or one or more PEM `X509 CRL` blocks (text
/// around the blocks is ignored, as `openssl crl -text` output has some). Signatures are not
/// checked here; that happens when a CRL joins a [`CrlSet`](madoguchi_jpki::CrlSet).
pub fn decode_crls(bytes: &[u8]) -> Result<Vec<Crl>, FetchError> {
    let parse = |der: &[u8]| Crl::parse(der).map_err(|e| FetchError::Decode(e.to_string()));
    // A DER CRL is a SEQUENCE; PEM starts with text.
    if bytes.first() == Some(&0x30) {
        return Ok(vec![parse(bytes)?]);
    }
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut crls = Vec::new();
    let mut rest = bytes;
    while let Some(start) = find(rest, PEM_BEGIN) {
        let body = &rest[start + PEM_BEGIN.len()..];
        let end = find(body, PEM_END)
            .ok_or_else(|| FetchError::Decode("unterminated PEM X509 CRL block".into()))?;
        let b64: Vec<u8> = body[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|e| FetchError::Decode(format!("PEM X509 CRL block: {e}")))?;
        crls.push(parse(&der)?);
        rest = &body[end + PEM_END.len()..];
    }
    if crls.is_empty() {
        return Err(FetchError::Decode(
            "neither a DER CRL nor PEM X509 CRL blocks".into(),
        ));
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_by_scheme() {
        assert!(matches!(
            CrlLocation::parse(" https://crl.example.jp/sign.crl ").unwrap(),
            CrlLocation::Http(u) if u.as_str() == "https://crl.example.jp/sign.crl"
        ));
        assert!(matches!(
            CrlLocation::parse("HTTP://127.0.0.1:8080/a").unwrap(),
            CrlLocation::Http(_)
        ));
        assert_eq!(
            CrlLocation::parse("blob:jpki/crl/sign.der").unwrap(),
            CrlLocation::Blob("jpki/crl/sign.der".into())
        );
        assert_eq!(
            CrlLocation::parse("file:/var/lib/crl.pem").unwrap(),
            CrlLocation::File("/var/lib/crl.pem".into())
        );
        assert_eq!(
            CrlLocation::parse("file:///var/lib/crl.pem").unwrap(),
            CrlLocation::File("/var/lib/crl.pem".into())
        );
    }

    #[test]
    fn bad_locations_say_why() {
        for (input, want) in [
            ("ftp://x/y", "unknown CRL location scheme"),
            ("s3://bucket/key", "unknown CRL location scheme"),
            ("/etc/crl.pem", "unknown CRL location scheme"),
            ("", "unknown CRL location scheme"),
            ("blob:../x", "not a valid blob key"),
            ("blob:", "not a valid blob key"),
            ("file:relative/x", "absolute"),
            ("file://host/x", "host"),
            ("https://", "CRL location"),
        ] {
            let err = CrlLocation::parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
        assert!(
            CrlLocation::parse("gopher://x")
                .unwrap_err()
                .to_string()
                .contains("expected http://")
        );
    }

    #[test]
    fn lists_skip_empty_entries() {
        let list = CrlLocation::parse_list("https://a.example/x, blob:b ,,").unwrap();
        assert_eq!(list.len(), 2);
        assert!(CrlLocation::parse_list("https://a.example/x,nope").is_err());
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        let loc = CrlLocation::parse("https://user:secret@crl.example.jp/a.crl").unwrap();
        let shown = format!("{loc} {loc:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("crl.example.jp/a.crl"));
    }

    #[test]
    fn undecodable_bytes_are_errors() {
        for input in [
            &b""[..],
            b"garbage",
            b"\x30\x03\x02\x01\x00",
            b"-----BEGIN X509 CRL-----\nAAAA",
            b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(decode_crls(input), Err(FetchError::Decode(_))),
                "{input:?}"
            );
        }
    }
}
