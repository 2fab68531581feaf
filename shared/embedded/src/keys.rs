//! `Keys` over a local master key file (`DATA_DIR/keys/master.key`, 32 random bytes, 0600).
//!
//! - Wrapped data key: `0x01 || nonce (12) || AES-256-GCM(master, data key, aad)` where
//!   `aad = EncryptionContext::canonical_bytes()`. 61 bytes.
//! - `mac(context, data) = HMAC-SHA-256(K_ctx, data)` with
//!   `K_ctx = HMAC-SHA-256(master, "mac\n" || canonical_bytes(context))`.
//!
//! The canonical form is length-prefixed, so any two different contexts give different
//! associated data.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use madoguchi_ports::{DataKey, EncryptionContext, Keys, PortError, PortResult};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::fsutil;

type HmacSha256 = Hmac<Sha256>;

const WRAP_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;

/// Reads a 32-byte key file, or creates it with 32 random bytes and mode 0600.
///
/// Creation writes a private temp file, fsyncs it and hard-links it into place, so a crash
/// never leaves a short key file and two processes starting together agree on one key.
/// An existing file of the wrong length is an error, never replaced: data may depend on it.
pub(crate) fn load_or_create_key(path: &Path) -> PortResult<Zeroizing<[u8; 32]>> {
    match read_key(path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_err("read key file", e)),
    }
    let dir = path
        .parent()
        .ok_or_else(|| PortError::Backend("key file has no directory".into()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let tmp = fsutil::temp_path(dir);
    let written = (|| {
        let mut f = fsutil::create_new_with_mode(&tmp, 0o600)?;
        f.write_all(key.as_ref())?;
        f.sync_all()?;
        drop(f);
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            fsutil::sync_dir(dir).map_err(|e| key_file_err("sync key dir", e))?;
            tracing::info!(file = %file_name(path), "key file created");
            Ok(key)
        }
        // Someone else created it first: theirs wins.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_key(path).map_err(|e| key_file_err("read key file", e))
        }
        Err(e) => Err(key_file_err("create key file", e)),
    }
}

fn read_key(path: &Path) -> io::Result<Zeroizing<[u8; 32]>> {
    let mut f = std::fs::File::open(path)?;
    if fsutil::is_wider_than_owner(path)? {
        tracing::warn!(file = %file_name(path), "key file is readable by others than its owner; chmod 600 it");
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(33));
    Read::by_ref(&mut f).take(33).read_to_end(&mut buf)?;
    if buf.len() != 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "key file is not 32 bytes",
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&buf);
    Ok(key)
}

fn key_file_err(what: &str, e: io::Error) -> PortError {
    PortError::Backend(format!("{what}: {e}"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Envelope keys and blind-index MACs from a local master key.
pub struct LocalKeys {
    master: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeys")
            .field("master", &"<redacted>")
            .finish()
    }
}

impl LocalKeys {
    pub(crate) fn new(master: Zeroizing<[u8; 32]>) -> Self {
        Self { master }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.master.as_ref().into())
    }

    fn mac_key(&self, aad: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.master.as_ref())
            .expect("HMAC takes any key length");
        m.update(b"mac\n");
        m.update(aad);
        let mut out = m.finalize().into_bytes();
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&out);
        out.as_mut_slice().zeroize();
        key
    }
}

/// The associated data for a context.
fn associated_data(context: &EncryptionContext) -> PortResult<Vec<u8>> {
    Ok(context.canonical_bytes())
}

#[async_trait]
impl Keys for LocalKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> PortResult<DataKey> {
        let aad = associated_data(context)?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(plaintext.as_mut());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_ref(),
                    aad: &aad,
                },
            )
            .map_err(|_| PortError::Backend("data key wrap failed".into()))?;
        let mut wrapped = Vec::with_capacity(WRAPPED_LEN);
        wrapped.push(WRAP_VERSION);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&sealed);
        tracing::debug!(context_pairs = context.0.len(), "data key generated");
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> PortResult<Zeroizing<[u8; 32]>> {
        let aad = associated_data(context)?;
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != WRAP_VERSION {
            return Err(PortError::DecryptionRefused);
        }
        let (nonce, sealed) = wrapped[1..].split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| PortError::DecryptionRefused)?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&plain);
        Ok(key)
    }

    async fn mac(&self, context: &EncryptionContext, data: &[u8]) -> PortResult<[u8; 32]> {
        let aad = associated_data(context)?;
        let key = self.mac_key(&aad);
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(key.as_ref()).expect("HMAC takes any key length");
        m.update(data);
        Ok(m.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn keys() -> LocalKeys {
        LocalKeys::new(Zeroizing::new([7u8; 32]))
    }

    #[tokio::test]
    async fn wrap_unwrap_roundtrip_and_context_binding() {
        let k = keys();
        let ctx = EncryptionContext::new("131016", "field").with("app", "A1");
        let dk = k.generate_data_key(&ctx).await.unwrap();
        assert_eq!(dk.wrapped.len(), WRAPPED_LEN);
        assert_eq!(dk.wrapped[0], WRAP_VERSION);
        let back = k.unwrap_data_key(&dk.wrapped, &ctx).await.unwrap();
        assert_eq!(*back, *dk.plaintext);

        for other in [
            EncryptionContext::new("131024", "field").with("app", "A1"),
            EncryptionContext::new("131016", "field"),
            EncryptionContext::new("131016", "field")
                .with("app", "A1")
                .with("x", "y"),
        ] {
            assert!(matches!(
                k.unwrap_data_key(&dk.wrapped, &other).await,
                Err(PortError::DecryptionRefused)
            ));
        }
        let mut tampered = dk.wrapped.clone();
        tampered[20] ^= 1;
        assert!(matches!(
            k.unwrap_data_key(&tampered, &ctx).await,
            Err(PortError::DecryptionRefused)
        ));
        assert!(matches!(
            k.unwrap_data_key(&dk.wrapped[..10], &ctx).await,
            Err(PortError::DecryptionRefused)
        ));
        let other_master = LocalKeys::new(Zeroizing::new([8u8; 32]));
        assert!(matches!(
            other_master.unwrap_data_key(&dk.wrapped, &ctx).await,
            Err(PortError::DecryptionRefused)
        ));
    }

    #[tokio::test]
    async fn mac_is_deterministic_and_context_separated() {
        let k = keys();
        let a = EncryptionContext::new("131016", "blind-index");
        let b = EncryptionContext::new("131024", "blind-index");
        let m1 = k.mac(&a, b"123456789012").await.unwrap();
        assert_eq!(m1, k.mac(&a, b"123456789012").await.unwrap());
        assert_ne!(m1, k.mac(&b, b"123456789012").await.unwrap());
        assert_ne!(m1, k.mac(&a, b"123456789013").await.unwrap());
    }

    #[tokio::test]
    async fn contexts_with_separators_stay_apart() {
        let k = keys();
        let a = EncryptionContext::new("131016", "p").with("a=b", "c");
        let b = EncryptionContext::new("131016", "p").with("a", "b=c");
        let wrapped = k.generate_data_key(&a).await.unwrap().wrapped;
        assert!(matches!(
            k.unwrap_data_key(&wrapped, &b).await,
            Err(PortError::DecryptionRefused)
        ));
        assert_ne!(
            k.mac(&a, b"x").await.unwrap(),
            k.mac(&b, b"x").await.unwrap()
        );
    }

    #[test]
    fn key_file_is_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let k1 = load_or_create_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        let k2 = load_or_create_key(&path).unwrap();
        assert_eq!(*k1, *k2);
        // Only the key file is left: no temp files.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);
    }

    #[test]
    fn short_key_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create_key(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }
}
