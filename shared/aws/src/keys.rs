//! [`Keys`] over KMS.
//!
//! - Data keys: `GenerateDataKey` (`AES_256`) and `Decrypt` under a symmetric KMS key, both
//!   with the port's [`EncryptionContext`] as KMS encryption context, so KMS itself refuses to
//!   unwrap a key under another context (`InvalidCiphertextException` → `DecryptionRefused`).
//! - MAC (blind indexes): an `HMAC_256` KMS key never leaves KMS. For each encryption context
//!   the adapter asks KMS once for `K_ctx = GenerateMac(HMAC_SHA_256, "madoguchi/blind-index/v1\n"
//!   || canonical JSON of the context)` and then computes `HMAC-SHA-256(K_ctx, data)` locally.
//!   `K_ctx` is a per-context subkey (HMAC as a PRF, as in HKDF-Expand), cached in memory
//!   (zeroized on eviction) for [`MAC_KEY_TTL`], at most [`MAC_KEY_CACHE`] contexts, so a
//!   burst of lookups costs one KMS call per tenant and purpose rather than one per value.
//!   Same `(context, data)` → same 32 bytes; other contexts → unrelated subkeys.
//!
//! The SDK's own response buffers holding plaintext key bytes are not zeroized by the SDK;
//! the copies this crate keeps are.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, MacAlgorithmSpec};
use hmac::{Hmac, Mac};
use madoguchi_ports::{DataKey, EncryptionContext, Keys, PortError, PortResult};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{malformed, map_sdk};

/// How long a derived per-context MAC key is kept in memory.
pub const MAC_KEY_TTL: Duration = Duration::from_secs(15 * 60);
/// How many contexts' MAC keys are kept at most (when full: expired ones go, then the oldest).
pub const MAC_KEY_CACHE: usize = 1024;
const MAC_LABEL: &[u8] = b"madoguchi/blind-index/v1\n";
/// KMS `GenerateMac` accepts at most 4096 bytes.
const MAX_MAC_MESSAGE: usize = 4096;
/// KMS ciphertext blobs are at most 6144 bytes.
const MAX_CIPHERTEXT: usize = 6144;

const REFUSED: &[&str] = &[
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "InvalidKeyUsageException",
];

/// A derived MAC subkey and when it was derived.
type CachedKey = (Zeroizing<[u8; 32]>, Instant);

pub struct KmsKeys {
    client: Client,
    data_key_id: String,
    mac_key_id: String,
    mac_keys: Mutex<HashMap<Vec<u8>, CachedKey>>,
    /// Held while a subkey is derived, so a burst of requests on a cold cache makes one
    /// `GenerateMac` call instead of one each (misses are rare: a few contexts per tenant).
    deriving: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KmsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKeys")
            .field("data_key_id", &self.data_key_id)
            .field("mac_key_id", &self.mac_key_id)
            .finish_non_exhaustive()
    }
}

fn kms_context(context: &EncryptionContext) -> HashMap<String, String> {
    context
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn key32(bytes: &[u8]) -> PortResult<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(malformed("data key length"));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

impl KmsKeys {
    pub fn new(client: Client, data_key_id: &str, mac_key_id: &str) -> Self {
        Self {
            client,
            data_key_id: data_key_id.to_owned(),
            mac_key_id: mac_key_id.to_owned(),
            mac_keys: Mutex::new(HashMap::new()),
            deriving: tokio::sync::Mutex::new(()),
        }
    }

    fn cached_mac_key(&self, label: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let cache = self.mac_keys.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(label)
            .filter(|(_, at)| at.elapsed() < MAC_KEY_TTL)
            .map(|(k, _)| k.clone())
    }

    async fn mac_key(&self, context: &EncryptionContext) -> PortResult<Zeroizing<[u8; 32]>> {
        let mut message = MAC_LABEL.to_vec();
        // serde_json writes a BTreeMap sorted and escaped: one unambiguous byte string per
        // context (unlike `k=v` lines, whose values could contain `=` or newlines).
        serde_json::to_writer(&mut message, &context.0).map_err(|_| malformed("context"))?;
        if message.len() > MAX_MAC_MESSAGE {
            return Err(PortError::Invalid("encryption context too long".into()));
        }
        if let Some(key) = self.cached_mac_key(&message) {
            return Ok(key);
        }
        let _deriving = self.deriving.lock().await;
        // Someone else may have derived it while we waited.
        if let Some(key) = self.cached_mac_key(&message) {
            return Ok(key);
        }
        let out = self
            .client
            .generate_mac()
            .key_id(&self.mac_key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message.clone()))
            .send()
            .await
            .map_err(|e| map_sdk("kms", "GenerateMac", &e))?;
        let key = key32(
            out.mac()
                .ok_or_else(|| malformed("GenerateMac response"))?
                .as_ref(),
        )?;
        let mut cache = self.mac_keys.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAC_KEY_CACHE {
            cache.retain(|_, (_, at)| at.elapsed() < MAC_KEY_TTL);
        }
        if cache.len() >= MAC_KEY_CACHE
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(message, (key.clone(), Instant::now()));
        tracing::debug!(key_id = %self.mac_key_id, cached = cache.len(), "mac subkey derived");
        Ok(key)
    }
}

#[async_trait]
impl Keys for KmsKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> PortResult<DataKey> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.data_key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(kms_context(context)))
            .send()
            .await
            .map_err(|e| map_sdk("kms", "GenerateDataKey", &e))?;
        let plaintext = key32(
            out.plaintext()
                .ok_or_else(|| malformed("GenerateDataKey response"))?
                .as_ref(),
        )?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| malformed("GenerateDataKey response"))?
            .as_ref()
            .to_vec();
        tracing::debug!(key_id = %self.data_key_id, "data key generated");
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> PortResult<Zeroizing<[u8; 32]>> {
        if wrapped.is_empty() || wrapped.len() > MAX_CIPHERTEXT {
            return Err(PortError::DecryptionRefused);
        }
        let out = self
            .client
            .decrypt()
            .key_id(&self.data_key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(kms_context(context)))
            .send()
            .await
            .map_err(|e| {
                let code = e
                    .as_service_error()
                    .and_then(aws_sdk_kms::error::ProvideErrorMetadata::code);
                if code.is_some_and(|c| REFUSED.contains(&c)) {
                    tracing::info!(key_id = %self.data_key_id, "data key unwrap refused");
                    PortError::DecryptionRefused
                } else {
                    map_sdk("kms", "Decrypt", &e)
                }
            })?;
        let key = key32(
            out.plaintext()
                .ok_or_else(|| malformed("Decrypt response"))?
                .as_ref(),
        )?;
        tracing::debug!(key_id = %self.data_key_id, "data key unwrapped");
        Ok(key)
    }

    async fn mac(&self, context: &EncryptionContext, data: &[u8]) -> PortResult<[u8; 32]> {
        let key = self.mac_key(context).await?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.as_ref()).map_err(|_| malformed("mac key"))?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().into())
    }
}
