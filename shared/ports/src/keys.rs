//! Keys: envelope encryption and keyed hashes (KMS in AWS, a local key file embedded).
//!
//! # Contract
//! - `generate_data_key` returns a fresh 256-bit data key in plain and wrapped form. The
//!   wrapped form is bound to the encryption context: `unwrap_data_key` with any other context
//!   (a different tenant or purpose, an extra or missing pair) fails with `DecryptionRefused`.
//! - `mac` is a deterministic keyed hash (HMAC-SHA-256) for blind indexes: the same
//!   `(context, data)` always gives the same 32 bytes, other contexts give unrelated values.
//! - Plain key material is zeroized when dropped and never logged.

use std::collections::BTreeMap;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::error::PortResult;

/// Pairs bound to a wrapped key (KMS encryption context). Always holds at least the tenant
/// and the purpose, so a key wrapped for one tenant cannot be unwrapped for another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncryptionContext(pub BTreeMap<String, String>);

impl EncryptionContext {
    pub fn new(tenant: &str, purpose: &str) -> Self {
        let mut map = BTreeMap::new();
        map.insert("tenant".to_owned(), tenant.to_owned());
        map.insert("purpose".to_owned(), purpose.to_owned());
        Self(map)
    }
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.to_owned(), value.to_owned());
        self
    }
    /// A canonical byte form for use as associated data: the pairs sorted by key, each key
    /// and value preceded by its length (u32, big endian). Length prefixes keep it
    /// unambiguous whatever the strings hold (`{"a=b": "c"}` and `{"a": "b=c"}` differ).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            for s in [k, v] {
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }
}

pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

#[async_trait]
pub trait Keys: Send + Sync {
    async fn generate_data_key(&self, context: &EncryptionContext) -> PortResult<DataKey>;
    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> PortResult<Zeroizing<[u8; 32]>>;
    async fn mac(&self, context: &EncryptionContext, data: &[u8]) -> PortResult<[u8; 32]>;
}

#[cfg(test)]
mod tests {
    use super::EncryptionContext;

    #[test]
    fn canonical_bytes_keep_pairs_apart() {
        let a = EncryptionContext::default().with("a=b", "c");
        let b = EncryptionContext::default().with("a", "b=c");
        let c = EncryptionContext::default().with("a", "b").with("c", "");
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        assert_ne!(b.canonical_bytes(), c.canonical_bytes());
        let x = EncryptionContext::new("131016", "p\ntenant=999999");
        let y = EncryptionContext::new("999999", "p");
        assert_ne!(x.canonical_bytes(), y.canonical_bytes());
    }
}
