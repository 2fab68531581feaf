//! A throwaway JPKI-style PKI made by the openssl CLI at test time (an independent
//! implementation), for the e-signature and card-login tests: a signing CA with a signer
//! carrying JPKI-style 基本4情報 (a made-up person) and a revoked one, a user-certificate CA
//! with a login certificate and a revoked one, and their CRLs. Nothing is committed.

use std::path::PathBuf;

use crate::openssl_ca::{gencrl, make_ca, make_leaf, openssl, revoke};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A throwaway PKI: a signing CA with a signer carrying JPKI-style 基本4情報 and a revoked
/// one, a user-certificate CA with a login certificate and a revoked one, and their CRLs.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
}

/// The extension sections both CAs issue with: a 署名用 certificate carrying JPKI-style
/// 基本4情報 of a made-up person, and a 利用者証明用 one with none.
const SECTIONS: &str = r#"[ sign_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
subjectAltName = @jpki_san
[ auth_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[ jpki_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:署名　花子
otherName.2 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:419900401
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:2
otherName.4 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:大阪府泉大津市東雲町9番12号
otherName.5 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:00000
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:00000000000000"#;

impl Pki {
    pub fn make() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        make_ca(&dir, "signca", "Test JPKI Sign CA", SECTIONS);
        make_ca(&dir, "authca", "Test JPKI Auth CA", SECTIONS);
        for (ca, name, ext) in [
            ("signca", "hanako", "sign_ext"),
            ("signca", "revoked", "sign_ext"),
            ("authca", "login", "auth_ext"),
            ("authca", "login-revoked", "auth_ext"),
        ] {
            make_leaf(&dir, ca, name, ext, None);
        }
        for (ca, revoked) in [("signca", "revoked"), ("authca", "login-revoked")] {
            revoke(&dir, ca, revoked);
            gencrl(&dir, ca, &format!("{ca}-crl"), &[]);
        }
        Pki { _dir: tmp, dir }
    }

    /// The host's `MADOGUCHI_JPKI_*` variables for this PKI (`file:` locations).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let p = |f: &str| format!("file:{}", self.dir.join(f).display());
        vec![
            ("MADOGUCHI_JPKI_SIGN_ANCHORS", p("signca.pem")),
            ("MADOGUCHI_JPKI_SIGN_CRLS", p("signca-crl.pem")),
            ("MADOGUCHI_JPKI_AUTH_ANCHORS", p("authca.pem")),
            ("MADOGUCHI_JPKI_AUTH_CRLS", p("authca-crl.der")),
        ]
    }

    /// `openssl cms -sign` (detached, SHA-256, signed attributes) over `payload`, base64.
    pub fn cms(&self, signer: &str, payload: &[u8]) -> String {
        let input = self
            .dir
            .join(format!("payload-{}.bin", uuid::Uuid::now_v7()));
        std::fs::write(&input, payload).unwrap();
        let der = openssl(
            &self.dir,
            &[
                "cms",
                "-sign",
                "-binary",
                "-md",
                "sha256",
                "-in",
                input.to_str().unwrap(),
                "-signer",
                &format!("{signer}.pem"),
                "-inkey",
                &format!("{signer}.key"),
                "-outform",
                "DER",
            ],
        );
        STANDARD.encode(der)
    }

    /// `openssl dgst -sha256 -sign` (RSASSA-PKCS1-v1_5) over `data`, base64.
    pub fn raw(&self, signer: &str, data: &[u8]) -> String {
        let input = self
            .dir
            .join(format!("challenge-{}.bin", uuid::Uuid::now_v7()));
        std::fs::write(&input, data).unwrap();
        let sig = openssl(
            &self.dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                &format!("{signer}.key"),
                input.to_str().unwrap(),
            ],
        );
        STANDARD.encode(sig)
    }

    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.pem"))).unwrap()
    }
}
