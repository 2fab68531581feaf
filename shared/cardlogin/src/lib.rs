//! Tokens for citizens who log in with the My Number Card (マイナンバーカードでのログイン).
//!
//! After the `esign` function has verified a card's user certificate and its signature over a
//! challenge, it issues a JWT here, signed with the tenant's own Ed25519 key. The key's seed is
//! a data key of the keys port (KMS in AWS), stored wrapped in the item store with its public
//! half; it is created on first use. Every function that accepts citizens trusts these tokens
//! through [`CardJwks`], which reads the public half from the item store by `kid`, so no key
//! material is configured per function and a key never leaves its tenant.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{CARD_KEY_PURPOSE, CardKeyRecord, card_key_pk};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::{AuthError, IssuerKind, JwkProvider, JwksSource, TrustedIssuer};
use madoguchi_http::dev_issuer::ed25519_jwk;
use madoguchi_ports::{
    Clock, Condition, EncryptionContext, Item, ItemStore, Key, Keys, PortError, PortResult,
};
use serde::Serialize;
use tokio::sync::RwLock;

/// `iss` of card-login tokens.
pub const CARD_ISSUER: &str = "urn:madoguchi:card-login";
/// `aud` of card-login tokens.
pub const CARD_AUDIENCE: &str = "madoguchi-citizen";

/// The issuer entry every citizen-facing function adds to its authenticator.
pub fn trusted_issuer(items: Arc<dyn ItemStore>) -> TrustedIssuer {
    TrustedIssuer {
        issuer: CARD_ISSUER.to_owned(),
        audience: CARD_AUDIENCE.to_owned(),
        kind: IssuerKind::CardLogin,
        default_tenant: None,
        jwks: JwksSource::Provider(Arc::new(CardJwks::new(items))),
    }
}

fn context(tenant: &TenantId) -> EncryptionContext {
    EncryptionContext::new(tenant.as_str(), CARD_KEY_PURPOSE)
}

fn kid_for(tenant: &TenantId, public: &[u8; 32]) -> String {
    format!("card-{}-{}", tenant.as_str(), hex::encode(&public[..8]))
}

/// Signs card-login tokens (the `esign` function).
pub struct CardTokens {
    items: Arc<dyn ItemStore>,
    keys: Arc<dyn Keys>,
    clock: Arc<dyn Clock>,
    /// tenant → (kid, PKCS#8 DER): unwrapping costs a KMS call, so once per process.
    cache: RwLock<HashMap<String, (String, Vec<u8>)>>,
}

impl std::fmt::Debug for CardTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardTokens").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    tenant: &'a str,
    role: &'a str,
    /// How the citizen authenticated (RFC 8176 `amr`): a hardware key (the card) and a PIN.
    amr: [&'a str; 2],
    iat: i64,
    exp: i64,
}

impl CardTokens {
    pub fn new(items: Arc<dyn ItemStore>, keys: Arc<dyn Keys>, clock: Arc<dyn Clock>) -> Self {
        Self {
            items,
            keys,
            clock,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// A token for `sub` of `tenant`, valid `ttl_secs`; returns it with its expiry (epoch s).
    pub async fn issue(
        &self,
        tenant: &TenantId,
        sub: &str,
        ttl_secs: i64,
    ) -> PortResult<(String, i64)> {
        let (kid, der) = self.key(tenant).await?;
        let now = self.clock.now().as_second();
        let exp = now + ttl_secs;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let claims = Claims {
            iss: CARD_ISSUER,
            aud: CARD_AUDIENCE,
            sub,
            tenant: tenant.as_str(),
            role: "citizen",
            amr: ["hwk", "pin"],
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der))
            .map_err(|e| PortError::Backend(format!("signing a card token: {e}")))?;
        Ok((token, exp))
    }

    async fn key(&self, tenant: &TenantId) -> PortResult<(String, Vec<u8>)> {
        if let Some(k) = self.cache.read().await.get(tenant.as_str()) {
            return Ok(k.clone());
        }
        let key = Key::new(card_key_pk(tenant), SINGLE_SK);
        let record = match self.items.get(&key).await? {
            Some(item) => parse(&item)?,
            None => {
                let fresh = self.keys.generate_data_key(&context(tenant)).await?;
                let signing = SigningKey::from_bytes(&fresh.plaintext);
                let public = signing.verifying_key().to_bytes();
                let record = CardKeyRecord {
                    kid: kid_for(tenant, &public),
                    public: URL_SAFE_NO_PAD.encode(public),
                    wrapped: STANDARD.encode(&fresh.wrapped),
                    created_at: self.clock.now().to_string(),
                };
                let item = Item::new(key.clone(), serde_json::to_value(&record).expect("record"));
                match self.items.put(item, Condition::NotExists).await {
                    Ok(()) => record,
                    // Another instance created it first: use theirs.
                    Err(PortError::ConditionFailed { .. }) => {
                        let item = self.items.get(&key).await?.ok_or(PortError::NotFound)?;
                        parse(&item)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let wrapped = STANDARD
            .decode(&record.wrapped)
            .map_err(|_| PortError::Backend("card key record".into()))?;
        let seed = self
            .keys
            .unwrap_data_key(&wrapped, &context(tenant))
            .await?;
        let der = SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map_err(|_| PortError::Backend("encoding the card key".into()))?
            .as_bytes()
            .to_vec();
        let entry = (record.kid, der);
        self.cache
            .write()
            .await
            .insert(tenant.as_str().to_owned(), entry.clone());
        Ok(entry)
    }
}

fn parse(item: &Item) -> PortResult<CardKeyRecord> {
    serde_json::from_value(item.data.clone())
        .map_err(|_| PortError::Backend("card key record does not parse".into()))
}

/// Public card-login keys by `kid`, read from the item store and cached.
#[derive(Clone)]
pub struct CardJwks {
    items: Arc<dyn ItemStore>,
    cache: Arc<RwLock<HashMap<String, Jwk>>>,
}

impl std::fmt::Debug for CardJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardJwks").finish_non_exhaustive()
    }
}

impl CardJwks {
    pub fn new(items: Arc<dyn ItemStore>) -> Self {
        Self {
            items,
            cache: Arc::new(RwLock::new(HashMap::new())),
        }
    }
}

#[async_trait::async_trait]
impl JwkProvider for CardJwks {
    async fn find(&self, kid: &str) -> Result<Option<Jwk>, AuthError> {
        if let Some(jwk) = self.cache.read().await.get(kid) {
            return Ok(Some(jwk.clone()));
        }
        // `card-<tenant>-<hex>`: anything else is not ours (and costs no read).
        let Some(tenant) = kid
            .strip_prefix("card-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(t, _)| TenantId::parse(t).ok())
        else {
            return Ok(None);
        };
        let item = self
            .items
            .get(&Key::new(card_key_pk(&tenant), SINGLE_SK))
            .await
            .map_err(|_| AuthError::JwksUnavailable)?;
        let Some(record) = item.as_ref().and_then(|i| parse(i).ok()) else {
            return Ok(None);
        };
        if record.kid != kid {
            return Ok(None);
        }
        let public: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&record.public)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::UnknownKey)?;
        let jwk = ed25519_jwk(kid, &public);
        self.cache.write().await.insert(kid.to_owned(), jwk.clone());
        Ok(Some(jwk))
    }
}
