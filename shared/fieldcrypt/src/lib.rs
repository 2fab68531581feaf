//! Envelope encryption of sensitive fields (個人番号 / My Number and the like) and blind
//! indexes, over the [`Keys`] port (KMS in AWS, the local key file embedded).
//!
//! # Scheme
//! - **Data keys** come from [`Keys::generate_data_key`] under the encryption context
//!   `{tenant, purpose: "field"}` ([`DATA_KEY_PURPOSE`]), so KMS (or the local key file)
//!   refuses to unwrap one tenant's data key for another.
//! - **Each field** is AES-256-GCM with a fresh random 96-bit nonce. The associated data is
//!   the length-prefixed canonical form ([`EncryptionContext::canonical_bytes`]) of
//!   `{tenant, purpose: "field", record, field, v}`: a ciphertext copied to another record,
//!   another field or another tenant fails to open, as does one whose version was changed.
//! - **Stored form**: [`Sealed`], versioned, JSON-serializable, carrying its wrapped data key.
//! - **Blind index**: [`Keys::mac`] (HMAC-SHA-256) under `{tenant, purpose:
//!   "blind-index:<purpose>"}`, hex. Equal values give equal indexes within one tenant and
//!   purpose only.
//!
//! # Data-key cache
//! A burst of submissions must not become a burst of KMS calls, and a plain data key must not
//! live or serve forever. [`FieldCipher`] keeps two bounded caches ([`CachePolicy`]):
//! - **sealing**, one data key per tenant, used for at most `max_uses` seals and `max_age`,
//!   at most `max_entries` tenants;
//! - **opening**, plain keys by `(tenant, wrapped key)`, kept `max_age`, at most
//!   `max_entries`, so reading a page of records costs one `Decrypt` per data key rather than
//!   one per record. Uses are not counted here: a use limit bounds how much is *encrypted*
//!   under one key (nonce collisions, exposure of one key), and opening encrypts nothing (the
//!   AWS Encryption SDK's caching works the same way).
//!
//! A key generated for sealing also primes the opening cache (a handler that writes and then
//! reads back makes no `Decrypt` call).
//! Concurrent misses on one cache key wait for a single KMS call (no stampede), and a failed
//! call is reported to every caller that waited on it, then forgotten. Plain keys are
//! `Zeroizing`: wiped when evicted (or on [`FieldCipher::clear_cache`], or drop) once no
//! operation in flight still holds them.
//!
//! The AES key schedule inside `aes-gcm`'s cipher object is built per operation and not
//! zeroized by that crate (its `aes` dependency's `zeroize` feature is off in this workspace).
//!
//! # Errors
//! Any failure to open (wrong tenant, record or field, tampered bytes, a data key KMS refuses)
//! is [`PortError::DecryptionRefused`], never saying which; an unknown format version or an
//! empty binding is [`PortError::Invalid`]; KMS errors pass through as the adapter mapped them.
//! Error texts and logs never contain field values.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{Clock, EncryptionContext, Keys, PortError, PortResult};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

mod cache;
mod sealed;

use cache::{CachedKey, KeyCache};
pub use sealed::{SEALED_VERSION, Sealed};

/// The `purpose` of the encryption context under which field data keys are generated.
pub const DATA_KEY_PURPOSE: &str = "field";
/// Prefix of the `purpose` of a blind index's MAC context: `blind-index:<purpose>`.
pub const BLIND_INDEX_PURPOSE_PREFIX: &str = "blind-index:";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// KMS ciphertext blobs are at most 6144 bytes; anything longer is not a wrapped key.
const MAX_WRAPPED_KEY: usize = 6144;

/// Bounds of the data-key caches (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long a data key is used after KMS handed it out (sealing) or unwrapped it
    /// (opening). Zero disables caching.
    pub max_age: Duration,
    /// How many fields one cached data key seals at most. Zero or one: a data key per field.
    pub max_uses: u32,
    /// How many keys each cache holds at most (tenants for sealing, distinct data keys for
    /// opening); the least recently used goes first.
    pub max_entries: usize,
}

impl Default for CachePolicy {
    /// 5 minutes, 10,000 uses, 64 entries.
    ///
    /// - **5 minutes**: a plain data key stays in a warm environment's memory at most that
    ///   long, and disabling the KMS key or revoking the function's grant stops new seals
    ///   within it. A steadily busy tenant costs 12 `GenerateDataKey` calls an hour per warm
    ///   environment (more only above 10,000 seals in 5 minutes); a burst (a deadline, an
    ///   application window opening) costs one.
    /// - **10,000 uses**: far below the 2³² encryptions per key that NIST SP 800-38D allows
    ///   with random 96-bit nonces (the chance of any nonce repeating among 10,000 is about
    ///   10⁻²¹), and one exposed data key opens at most 10,000 field values.
    /// - **64 entries**: a deployment normally serves one tenant (`MADOGUCHI_TENANT`), so the
    ///   sealing cache holds one key; 64 covers a shared embedded host while bounding the plain
    ///   keys in memory (at most 64 per cache, 32 bytes each). For opening, 64 data keys cover
    ///   records sealed in 64 different cache periods, more than any one list page reads.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(5 * 60),
            max_uses: 10_000,
            max_entries: 64,
        }
    }
}

/// Where a sealed value belongs: bound into the associated data, so the ciphertext opens only
/// for the same tenant, record and field. Identifiers only, never personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The record the value belongs to, e.g. the application id.
    pub record: &'a str,
    /// The field within the record, e.g. `my_number`.
    pub field: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(record: &'a str, field: &'a str) -> Self {
        Self { record, field }
    }

    fn associated_data(&self, tenant: &TenantId, version: u8) -> PortResult<Vec<u8>> {
        if self.record.is_empty() || self.field.is_empty() {
            return Err(PortError::Invalid(
                "field binding needs a record and a field".into(),
            ));
        }
        Ok(EncryptionContext::new(tenant.as_str(), DATA_KEY_PURPOSE)
            .with("record", self.record)
            .with("field", self.field)
            .with("v", &version.to_string())
            .canonical_bytes())
    }
}

/// Seals and opens sensitive fields with cached data keys; computes blind indexes.
///
/// Build one per process and share it (cloning is cheap, the caches are shared): the caches
/// only help if every request goes through the same instance.
#[derive(Clone)]
pub struct FieldCipher {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Arc<dyn Keys>,
    policy: CachePolicy,
    /// Sealing keys by tenant code.
    sealing: KeyCache<String>,
    /// Opening keys by (tenant code, wrapped key).
    opening: KeyCache<(String, Vec<u8>)>,
}

impl fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldCipher")
            .field("policy", &self.inner.policy)
            .field("sealing", &self.inner.sealing)
            .field("opening", &self.inner.opening)
            .finish_non_exhaustive()
    }
}

fn data_key_context(tenant: &TenantId) -> EncryptionContext {
    EncryptionContext::new(tenant.as_str(), DATA_KEY_PURPOSE)
}

fn cipher(key: &CachedKey) -> Aes256Gcm {
    Aes256Gcm::new(key.plaintext.as_ref().into())
}

impl FieldCipher {
    pub fn new(keys: Arc<dyn Keys>, clock: Arc<dyn Clock>, policy: CachePolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys,
                policy,
                sealing: KeyCache::new(
                    clock.clone(),
                    policy.max_age,
                    Some(policy.max_uses),
                    policy.max_entries,
                ),
                opening: KeyCache::new(clock, policy.max_age, None, policy.max_entries),
            }),
        }
    }

    pub fn policy(&self) -> CachePolicy {
        self.inner.policy
    }

    /// Encrypts `plaintext` with AES-256-GCM under the tenant's cached data key (encryption
    /// context `{tenant, purpose: "field"}`), a random 96-bit nonce, and associated data
    /// binding tenant, `binding.record`, `binding.field` and the format version. A ciphertext
    /// copied to another record, field or tenant fails to [`open`](Self::open).
    pub async fn seal(
        &self,
        tenant: &TenantId,
        binding: &Binding<'_>,
        plaintext: &[u8],
    ) -> PortResult<Sealed> {
        let aad = binding.associated_data(tenant, SEALED_VERSION)?;
        let inner = &self.inner;
        let tenant_key = tenant.as_str().to_owned();
        let got = inner
            .sealing
            .get_or_load(&tenant_key, || async {
                let dk = inner
                    .keys
                    .generate_data_key(&data_key_context(tenant))
                    .await?;
                tracing::debug!(tenant = %tenant.as_str(), "field data key generated");
                Ok(CachedKey {
                    plaintext: dk.plaintext,
                    wrapped: dk.wrapped,
                })
            })
            .await?;
        if got.loaded {
            inner
                .opening
                .insert((tenant_key, got.key.wrapped.clone()), got.key.clone());
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encrypt in place in a buffer that already has room for the tag: no reallocation
        // leaves a copy of the plaintext behind.
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        if cipher(&got.key)
            .encrypt_in_place(Nonce::from_slice(&nonce), &aad, &mut buf)
            .is_err()
        {
            buf.zeroize();
            return Err(PortError::Invalid("field value too long to encrypt".into()));
        }
        Ok(Sealed::new(got.key.wrapped.clone(), nonce.to_vec(), buf))
    }

    /// Decrypts a value sealed for the same tenant and binding. Anything else (another
    /// tenant, record or field, tampered bytes, a data key KMS refuses) is
    /// [`PortError::DecryptionRefused`]; an unknown version is [`PortError::Invalid`].
    pub async fn open(
        &self,
        tenant: &TenantId,
        binding: &Binding<'_>,
        sealed: &Sealed,
    ) -> PortResult<Zeroizing<Vec<u8>>> {
        if sealed.version() != SEALED_VERSION {
            return Err(PortError::Invalid(format!(
                "unsupported sealed field version {}",
                sealed.version()
            )));
        }
        let aad = binding.associated_data(tenant, SEALED_VERSION)?;
        let wrapped = sealed.wrapped_key();
        if sealed.nonce().len() != NONCE_LEN
            || sealed.ciphertext().len() < TAG_LEN
            || wrapped.is_empty()
            || wrapped.len() > MAX_WRAPPED_KEY
        {
            return Err(PortError::DecryptionRefused);
        }
        let inner = &self.inner;
        let got = inner
            .opening
            .get_or_load(&(tenant.as_str().to_owned(), wrapped.to_vec()), || async {
                let plaintext = inner
                    .keys
                    .unwrap_data_key(wrapped, &data_key_context(tenant))
                    .await?;
                tracing::debug!(tenant = %tenant.as_str(), "field data key unwrapped");
                Ok(CachedKey {
                    plaintext,
                    wrapped: wrapped.to_vec(),
                })
            })
            .await?;
        // Decrypt in a zeroizing buffer: GCM decrypts before it checks the tag, so even a
        // refused ciphertext leaves (near-)plaintext in the buffer.
        let mut buf = Zeroizing::new(sealed.ciphertext().to_vec());
        cipher(&got.key)
            .decrypt_in_place(Nonce::from_slice(sealed.nonce()), &aad, &mut *buf)
            .map_err(|_| PortError::DecryptionRefused)?;
        Ok(buf)
    }

    /// A blind index of `value` for matching without decrypting: HMAC-SHA-256 through
    /// [`Keys::mac`] under `{tenant, purpose: "blind-index:<purpose>"}`, as 64 lowercase hex
    /// digits. Deterministic for one tenant and purpose; unrelated across tenants and
    /// purposes. Normalize `value` first (e.g. digits only for a My Number).
    pub async fn blind_index(
        &self,
        tenant: &TenantId,
        purpose: &str,
        value: &[u8],
    ) -> PortResult<String> {
        if purpose.is_empty() {
            return Err(PortError::Invalid("blind index needs a purpose".into()));
        }
        let context = EncryptionContext::new(
            tenant.as_str(),
            &format!("{BLIND_INDEX_PURPOSE_PREFIX}{purpose}"),
        );
        let mac = self.inner.keys.mac(&context, value).await?;
        Ok(hex::encode(mac))
    }

    /// Drops every cached plain key now (e.g. on shutdown); the next operations go to KMS.
    pub fn clear_cache(&self) {
        self.inner.sealing.clear();
        self.inner.opening.clear();
    }
}

#[cfg(test)]
mod tests;
