//! What the verifier trusts, per environment: the JPKI CA certificates (never in the code),
//! where their CRLs come from, an optional OCSP responder, and the policy.
//!
//! Two sets, because the card holds two certificates issued by two CAs:
//! - signing (署名用電子証明書, signatures on applications): `MADOGUCHI_JPKI_SIGN_ANCHORS`,
//!   `MADOGUCHI_JPKI_SIGN_CRLS`, `MADOGUCHI_JPKI_SIGN_OCSP_URL`;
//! - login (利用者証明用電子証明書, card login): `MADOGUCHI_JPKI_AUTH_ANCHORS`,
//!   `MADOGUCHI_JPKI_AUTH_CRLS`, `MADOGUCHI_JPKI_AUTH_OCSP_URL`.
//!
//! Anchors: a PEM bundle at `blob:<key>` (the trust bucket, e.g. `anchors/sign.pem`) or
//! `file:<path>`, or the PEM text itself. CRLs: comma-separated
//! locations (`https://…`, `blob:<key>`, `file:<path>`), fetched and cached by
//! [`madoguchi_revocation::CrlCache`]. A set left unconfigured turns its routes into 503
//! `esign-not-configured`: nothing is verified against a guess.

use std::sync::Arc;

use madoguchi_jpki::{CrlSet, Policy, RevocationFacts, TrustAnchors};
use madoguchi_ports::BlobStore;
use madoguchi_revocation::{CrlCache, CrlCacheConfig, CrlLocation, OcspClient, OcspTransport};

/// One trust set (signing or login).
#[derive(Clone)]
pub struct TrustSet {
    pub anchors: Arc<TrustAnchors>,
    pub crls: Arc<CrlCache>,
    pub ocsp: Option<Arc<dyn OcspTransport>>,
    pub policy: Policy,
}

impl std::fmt::Debug for TrustSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustSet")
            .field("anchors", &self.anchors.len())
            .field("ocsp", &self.ocsp.is_some())
            .finish()
    }
}

/// Both trust sets; either may be absent.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub sign: Option<TrustSet>,
    pub auth: Option<TrustSet>,
}

impl TrustSet {
    /// A set from its anchors and CRL locations (configuration strings).
    pub fn new(
        anchors: TrustAnchors,
        crl_locations: &[String],
        ocsp_url: Option<&str>,
        blobs: Option<Arc<dyn BlobStore>>,
    ) -> Result<Self, String> {
        let anchors = Arc::new(anchors);
        let policy = Policy::default();
        let locations = crl_locations
            .iter()
            .map(|l| l.parse::<CrlLocation>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let crls = CrlCache::new(
            locations,
            anchors.clone(),
            policy.clone(),
            blobs,
            CrlCacheConfig {
                // Inside an API request (API Gateway waits 30 s at most): a CRL that cannot be
                // fetched in this time is fetched on a later request, and the ones held meanwhile
                // still decide. Large CRLs belong in the trust bucket (`blob:`), mirrored by ops.
                fetch_timeout: std::time::Duration::from_secs(20),
                ..CrlCacheConfig::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let ocsp = match ocsp_url {
            Some(url) => Some(Arc::new(
                OcspClient::new(url, std::time::Duration::from_secs(5))
                    .map_err(|e| e.to_string())?,
            ) as Arc<dyn OcspTransport>),
            None => None,
        };
        Ok(Self {
            anchors,
            crls: Arc::new(crls),
            ocsp,
            policy,
        })
    }

    /// The CRLs to verify with at `now` (refreshed by the cache as needed).
    pub async fn crls(&self, now: jiff::Timestamp) -> Arc<CrlSet> {
        self.crls.current(now).await
    }

    /// An OCSP answer about `cert` (issued by `issuer`), when a responder is configured and
    /// answers in time with a response that verifies; `None` otherwise (the CRL decides).
    pub async fn ocsp(
        &self,
        cert: &[u8],
        issuer: &[u8],
        now: jiff::Timestamp,
    ) -> Option<RevocationFacts> {
        let transport = self.ocsp.as_ref()?;
        let mut nonce = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let request = madoguchi_jpki::ocsp::ocsp_request(cert, issuer, Some(&nonce)).ok()?;
        match transport.post(&request).await {
            Ok(response) => match madoguchi_jpki::ocsp::check_ocsp_response(
                &response,
                cert,
                issuer,
                Some(&nonce),
                &self.policy,
                now,
            ) {
                Ok(facts) => Some(facts),
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP response refused; the CRL decides");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "OCSP responder unavailable; the CRL decides");
                None
            }
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn anchors_from(
    value: &str,
    blobs: Option<&Arc<dyn BlobStore>>,
) -> Result<TrustAnchors, String> {
    let pem = if let Some(path) = value.strip_prefix("file:") {
        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?
    } else if let Some(key) = value.strip_prefix("blob:") {
        let blobs = blobs.ok_or("no trust bucket for a blob: location")?;
        let (_, mut body) = blobs.get(key).await.map_err(|e| format!("{key}: {e}"))?;
        let mut pem = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut body, &mut pem)
            .await
            .map_err(|e| format!("{key}: {e}"))?;
        pem
    } else {
        value.as_bytes().to_vec()
    };
    TrustAnchors::from_pem_bundle(&pem).map_err(|e| e.to_string())
}

async fn set_from_env(
    prefix: &str,
    blobs: Option<Arc<dyn BlobStore>>,
) -> Result<Option<TrustSet>, String> {
    let Some(anchors) = var(&format!("MADOGUCHI_JPKI_{prefix}_ANCHORS")) else {
        return Ok(None);
    };
    let anchors = anchors_from(&anchors, blobs.as_ref())
        .await
        .map_err(|e| format!("MADOGUCHI_JPKI_{prefix}_ANCHORS: {e}"))?;
    let crls: Vec<String> = var(&format!("MADOGUCHI_JPKI_{prefix}_CRLS"))
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let ocsp = var(&format!("MADOGUCHI_JPKI_{prefix}_OCSP_URL"));
    TrustSet::new(anchors, &crls, ocsp.as_deref(), blobs)
        .map(Some)
        .map_err(|e| format!("MADOGUCHI_JPKI_{prefix}_CRLS: {e}"))
}

impl Trust {
    /// Both sets from the environment (module docs); `blobs` serves `blob:` CRL locations.
    pub async fn from_env(blobs: Option<Arc<dyn BlobStore>>) -> Result<Self, String> {
        Ok(Self {
            sign: set_from_env("SIGN", blobs.clone()).await?,
            auth: set_from_env("AUTH", blobs).await?,
        })
    }
}
