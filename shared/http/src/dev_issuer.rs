//! The development issuer (開発用発行者): signs tokens for local work and tests, in place of
//! the Cognito user pools. Its Ed25519 key is created on first run under
//! `DATA_DIR/keys/dev-issuer.pk8` (mode 0600) and its public half is served as a JWKS, so
//! tokens go through exactly the verification path production tokens do.
//!
//! Never configured in AWS: the CDK app trusts only the Cognito pools.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use madoguchi_domain::tenant::TenantId;
use serde::Serialize;

use crate::auth::{IssuerKind, JwksSource, Role, TrustedIssuer};

pub const DEV_ISSUER: &str = "urn:madoguchi:dev-issuer";
pub const DEV_AUDIENCE: &str = "madoguchi-local";

pub struct DevIssuer {
    pkcs8: Vec<u8>,
    kid: String,
    public: [u8; 32],
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer").field("kid", &self.kid).finish()
    }
}

/// What a development token says.
#[derive(Debug, Clone)]
pub struct DevTokenRequest {
    pub sub: String,
    pub tenant: TenantId,
    pub role: Role,
    pub depts: Vec<String>,
    /// Seconds from `now` until expiry; negative values mint an already expired token
    /// (useful in tests).
    pub ttl_seconds: i64,
    pub now: i64,
    /// Mail address claim (`email`), as a Cognito ID token would carry it.
    pub email: Option<String>,
}

#[derive(Serialize)]
struct DevClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    tenant: &'a str,
    role: Role,
    depts: &'a [String],
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

impl DevIssuer {
    /// Loads the key from `keys_dir/dev-issuer.pk8`, creating it (0600) if absent.
    pub fn load_or_create(keys_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(keys_dir)?;
        let path = keys_dir.join("dev-issuer.pk8");
        match std::fs::read(&path) {
            Ok(der) => Self::from_pkcs8(der)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                    .as_bytes()
                    .to_vec();
                write_private(&path, &der)?;
                Self::from_pkcs8(der)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }
            Err(e) => Err(e),
        }
    }

    /// A fresh in-memory issuer (tests).
    pub fn ephemeral() -> Self {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = key.to_pkcs8_der().expect("encode key").as_bytes().to_vec();
        Self::from_pkcs8(der).expect("fresh key")
    }

    fn from_pkcs8(der: Vec<u8>) -> Result<Self, String> {
        let key = SigningKey::from_pkcs8_der(&der).map_err(|e| e.to_string())?;
        let public = key.verifying_key().to_bytes();
        let kid = format!("dev-{}", &hex_prefix(&public));
        Ok(Self {
            pkcs8: der,
            kid,
            public,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![ed25519_jwk(&self.kid, &self.public)],
        }
    }

    /// The issuer entry that trusts this key.
    pub fn trusted(&self) -> TrustedIssuer {
        TrustedIssuer {
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_AUDIENCE.to_owned(),
            kind: IssuerKind::Development,
            default_tenant: None,
            jwks: JwksSource::Static(self.jwks()),
        }
    }

    pub fn mint(&self, req: &DevTokenRequest) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = DevClaims {
            iss: DEV_ISSUER,
            aud: DEV_AUDIENCE,
            sub: &req.sub,
            tenant: req.tenant.as_str(),
            role: req.role,
            depts: &req.depts,
            iat: req.now,
            exp: req.now + req.ttl_seconds,
            email: req.email.as_deref(),
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .expect("Ed25519 signing does not fail for a valid key")
    }
}

impl DevIssuer {
    /// Signs arbitrary claims with this issuer's key and `kid`: for tests that need a token
    /// the issuer would never mint (another audience, missing claims).
    pub fn mint_claims(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .expect("Ed25519 signing does not fail for a valid key")
    }
}

/// The public JWK of an Ed25519 (EdDSA) signing key.
pub fn ed25519_jwk(kid: &str, public: &[u8; 32]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public),
        }),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
