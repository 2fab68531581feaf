//! OCSP over HTTP (RFC 6960 appendix A.1, POST). Only bytes move here: building the
//! request and checking the response's signature and contents is `madoguchi_jpki`'s job.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::error::{ConfigError, FetchError, from_reqwest};
use crate::fetch::read_response;

const OCSP_REQUEST: &str = "application/ocsp-request";
const OCSP_RESPONSE: &str = "application/ocsp-response";

/// Sends a DER `OCSPRequest` to a responder and returns the DER `OCSPResponse`, unchecked.
/// [`OcspClient`] does it over HTTP; tests of the `esign` function can plug in another.
#[async_trait]
pub trait OcspTransport: Send + Sync {
    /// One request, one response.
    async fn post(&self, request_der: &[u8]) -> Result<Vec<u8>, FetchError>;
}

/// An HTTP client for one OCSP responder.
#[derive(Debug, Clone)]
pub struct OcspClient {
    url: reqwest::Url,
    http: reqwest::Client,
    max_bytes: u64,
}

impl OcspClient {
    /// Largest response accepted unless [`with_max_bytes`](Self::with_max_bytes) says
    /// otherwise: 1 MiB (a response is a few kilobytes; the cap stops a broken responder).
    pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

    /// A client posting to `url` (`http` or `https`); `timeout` bounds each whole exchange,
    /// connecting through reading the body.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would turn the POST into a GET without the request; RFC 6960
            // responders answer where they are asked.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("madoguchi-revocation/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            url: parsed,
            http,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        })
    }

    /// The same client with another response size cap.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The responder's URL.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// POSTs `request_der` with `Content-Type: application/ocsp-request` and returns the
    /// body of a `200` answer whose content type is `application/ocsp-response`. Any other
    /// status, another content type, an empty or too large body, or a timeout is an error.
    pub async fn post(&self, request_der: &[u8]) -> Result<Vec<u8>, FetchError> {
        let response = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, OCSP_REQUEST)
            .header(ACCEPT, OCSP_RESPONSE)
            .body(request_der.to_vec())
            .send()
            .await
            .map_err(from_reqwest)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(OCSP_RESPONSE) {
            return Err(FetchError::ContentType(content_type));
        }
        let body = read_response(response, self.max_bytes).await?;
        if body.is_empty() {
            return Err(FetchError::Decode("empty OCSP response".into()));
        }
        Ok(body)
    }
}

#[async_trait]
impl OcspTransport for OcspClient {
    async fn post(&self, request_der: &[u8]) -> Result<Vec<u8>, FetchError> {
        OcspClient::post(self, request_der).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_urls_are_checked() {
        assert!(OcspClient::new("http://ocsp.example.jp/", Duration::from_secs(5)).is_ok());
        for bad in ["ftp://x/", "not a url", "file:/x"] {
            assert!(
                matches!(
                    OcspClient::new(bad, Duration::from_secs(5)),
                    Err(ConfigError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }
}
