//! The stored form of one encrypted field.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The only format written today.
pub const SEALED_VERSION: u8 = 1;

/// One encrypted field value, as stored beside the record.
///
/// JSON: `{"v":1,"key":"<b64>","nonce":"<b64>","ct":"<b64>"}` (standard base64 with padding):
/// - `v`: format version (1: AES-256-GCM, 96-bit random nonce, associated data as described
///   on [`crate::FieldCipher::seal`]);
/// - `key`: the data key wrapped by KMS (or the local key file) under the encryption context
///   `{tenant, purpose: "field"}`;
/// - `nonce`: 12 bytes;
/// - `ct`: ciphertext followed by the 16-byte GCM tag.
///
/// Holds no plaintext; its `Debug` prints only the version and lengths anyway.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    v: u8,
    #[serde(with = "b64")]
    key: Vec<u8>,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
    #[serde(with = "b64")]
    ct: Vec<u8>,
}

impl Sealed {
    pub(crate) fn new(key: Vec<u8>, nonce: Vec<u8>, ct: Vec<u8>) -> Self {
        Self {
            v: SEALED_VERSION,
            key,
            nonce,
            ct,
        }
    }

    /// The format version.
    pub fn version(&self) -> u8 {
        self.v
    }

    /// The wrapped data key (KMS ciphertext blob). Fields sealed within one cache period share
    /// it; re-encryption jobs can group by it.
    pub fn wrapped_key(&self) -> &[u8] {
        &self.key
    }

    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// Ciphertext with the GCM tag appended.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ct
    }

    #[cfg(test)]
    pub(crate) fn parts_mut(&mut self) -> (&mut u8, &mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>) {
        (&mut self.v, &mut self.key, &mut self.nonce, &mut self.ct)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("v", &self.v)
            .field("key_len", &self.key.len())
            .field("ct_len", &self.ct.len())
            .finish_non_exhaustive()
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|_| de::Error::custom("invalid base64"))
    }
}
