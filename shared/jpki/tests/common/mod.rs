//! A throwaway test PKI made by the openssl CLI (an independent implementation) in a temp
//! dir. Every key and certificate is generated at test time; no real person's certificate
//! is committed. Artifacts are read into memory and the directory is removed.
//!
//! openssl reads a config value as Latin-1 bytes: `UTF8:署名` would double-encode each byte
//! of the UTF-8 input. `FORMAT:UTF8,UTF8:…` tells it the input already is UTF-8, giving a
//! correct UTF8String inside the otherName `[0] EXPLICIT`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use madoguchi_tests::openssl_ca;
use std::sync::OnceLock;

pub const NAME: &str = "署名　花子";
pub const ADDRESS: &str = "東京都千代田区霞が関２－１－２";
pub const BIRTH_DATE: &str = "319800217";
pub const GENDER: &str = "2";
pub const NAME_ALT: &str = "00000";
pub const ADDRESS_ALT: &str = "000000000000000";

/// What a test needs, as bytes.
pub struct Pki {
    /// When the fixture was made; certificates are valid from about then.
    pub made_at: jiff::Timestamp,
    pub ca_pem: Vec<u8>,
    pub ca_der: Vec<u8>,
    pub other_ca_pem: Vec<u8>,
    pub payload: Vec<u8>,
    /// The valid signer's certificate (DER).
    pub signer_der: Vec<u8>,
    /// CMS, DER: detached PKCS#1 v1.5 SHA-256 by the valid signer.
    pub sig: Vec<u8>,
    pub sig_pss: Vec<u8>,
    pub sig_attached: Vec<u8>,
    pub sig_sha1: Vec<u8>,
    pub sig_expired: Vec<u8>,
    pub sig_revoked: Vec<u8>,
    pub sig_untrusted: Vec<u8>,
    pub sig_wrong_usage: Vec<u8>,
    /// CRL (DER) of the CA listing the revoked signer, valid 30 days.
    pub crl: Vec<u8>,
    /// CRL (DER) of the CA whose nextUpdate is one hour after it was made.
    pub crl_short: Vec<u8>,
    /// CRL (DER) of the untrusted CA.
    pub other_crl: Vec<u8>,

    /// Card login: the server's challenge.
    pub challenge: Vec<u8>,
    /// 利用者証明用電子証明書-like certificates (keyUsage digitalSignature, no otherName),
    /// DER: valid, expired, revoked (listed in `crl`), from the untrusted CA, and from the
    /// intermediate CA `sub` (issued by the CA).
    pub login_der: Vec<u8>,
    pub login_pem: Vec<u8>,
    pub login_expired_der: Vec<u8>,
    pub login_revoked_der: Vec<u8>,
    pub login_revoked_pem: Vec<u8>,
    pub login_stranger_der: Vec<u8>,
    pub login_sub_der: Vec<u8>,
    /// A signing certificate whose keyUsage is nonRepudiation alone.
    pub nonrep_der: Vec<u8>,
    /// The intermediate CA (DER) and its CRL (DER, empty).
    pub sub_der: Vec<u8>,
    pub sub_crl: Vec<u8>,
    /// Raw signatures over `challenge` by `openssl dgst -sign`: PKCS#1 v1.5 SHA-256; PSS
    /// with OpenSSL's default (largest) salt; PSS with a 32-byte salt; PKCS#1 v1.5 SHA-1.
    pub login_sig: Vec<u8>,
    pub login_sig_pss: Vec<u8>,
    pub login_sig_pss_digest: Vec<u8>,
    pub login_sig_sha1: Vec<u8>,
    pub login_expired_sig: Vec<u8>,
    pub login_revoked_sig: Vec<u8>,
    pub login_stranger_sig: Vec<u8>,
    pub login_sub_sig: Vec<u8>,
    pub nonrep_sig: Vec<u8>,

    /// OCSP: what `openssl ocsp` needs to answer as the CA, as a delegated responder
    /// (extendedKeyUsage OCSPSigning), as a certificate of the CA that is no responder (the
    /// signer), and as the untrusted CA. `ca_index` is the CA's `openssl ca` database.
    pub ca_key: Vec<u8>,
    pub ca_index: String,
    pub responder_pem: Vec<u8>,
    pub responder_key: Vec<u8>,
    pub signer_pem: Vec<u8>,
    pub signer_key: Vec<u8>,
    pub other_ca_key: Vec<u8>,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make)
}

fn run(dir: &Path, args: &[&str]) {
    openssl_ca::openssl(dir, args);
}

use openssl_ca::read;

/// The extension sections of the test CAs (the 署名用 one with JPKI-style 基本4情報 of a
/// made-up person).
fn sections() -> String {
    format!(
        r#"[ sign_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
subjectAltName = @jpki_san
[ enc_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
# 利用者証明用電子証明書: no 基本4情報.
[ auth_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[ nonrep_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,nonRepudiation
subjectAltName = @jpki_san
[ ocsp_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
[ sub_ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ jpki_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:{NAME}
otherName.2 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:{BIRTH_DATE}
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:{GENDER}
otherName.4 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:{ADDRESS}
otherName.5 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:{NAME_ALT}
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:{ADDRESS_ALT}"#
    )
}

/// The files `openssl ca` needs for CA `ca` (its key and certificate are made apart).
fn ca_files(dir: &Path, ca: &str, first_serial: &str) {
    openssl_ca::ca_files(dir, ca, &sections(), first_serial);
}

/// An intermediate CA `name` issued by `parent`.
fn make_sub_ca(dir: &Path, parent: &str, name: &str) {
    ca_files(dir, name, "2000");
    make_leaf(dir, parent, name, "sub_ca_ext", None);
}

fn make_ca(dir: &Path, ca: &str, cn: &str) {
    openssl_ca::make_ca(dir, ca, cn, &sections());
}

/// Issue a leaf `name` from `ca` with extension section `ext`; `dates` = (start, end).
fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str, dates: Option<(&str, &str)>) {
    openssl_ca::make_leaf(dir, ca, name, ext, dates);
}

fn sign(dir: &Path, signer: &str, out: &str, extra: &[&str]) -> Vec<u8> {
    let cert = format!("{signer}.pem");
    let key = format!("{signer}.key");
    let mut args = vec![
        "cms",
        "-sign",
        "-binary",
        "-in",
        "payload.bin",
        "-signer",
        &cert,
        "-inkey",
        &key,
        "-outform",
        "DER",
        "-out",
        out,
    ];
    if !extra.contains(&"-md") {
        args.extend(["-md", "sha256"]);
    }
    args.extend(extra);
    run(dir, &args);
    read(dir, out)
}

/// `openssl dgst -sign` over challenge.bin with `signer`'s key (SHA-256 unless `extra`
/// names another digest).
fn sign_challenge(dir: &Path, signer: &str, out: &str, extra: &[&str]) -> Vec<u8> {
    let key = format!("{signer}.key");
    let mut args = vec!["dgst"];
    if !extra.contains(&"-sha1") {
        args.push("-sha256");
    }
    args.extend(extra);
    args.extend(["-sign", &key, "-out", out, "challenge.bin"]);
    run(dir, &args);
    read(dir, out)
}

/// Run the openssl CLI in a fresh temp dir holding `files`; return its stdout and the
/// content of `output`, if named.
pub fn openssl_in(
    files: &[(&str, &[u8])],
    args: &[&str],
    output: Option<&str>,
) -> (String, Vec<u8>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(tmp.path().join(name), content).unwrap();
    }
    let out = Command::new("openssl")
        .args(args)
        .current_dir(tmp.path())
        .output()
        .expect("openssl CLI is installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        stdout,
        output.map(|o| read(tmp.path(), o)).unwrap_or_default(),
    )
}

/// `openssl ocsp` answering the DER request `request` as responder `rsigner`/`rkey` for the
/// CA, from the database `index`, nextUpdate one day ahead; `extra` arguments appended.
pub fn ocsp_respond(
    request: &[u8],
    index: &str,
    rsigner: &[u8],
    rkey: &[u8],
    extra: &[&str],
) -> Vec<u8> {
    let p = pki();
    let mut args = vec![
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        "rsigner.pem",
        "-rkey",
        "rsigner.key",
        "-CA",
        "ca.pem",
        "-reqin",
        "req.der",
        "-respout",
        "resp.der",
        "-ndays",
        "1",
    ];
    args.extend(extra);
    openssl_in(
        &[
            ("req.der", request),
            ("index.txt", index.as_bytes()),
            ("rsigner.pem", rsigner),
            ("rsigner.key", rkey),
            ("ca.pem", &p.ca_pem),
        ],
        &args,
        Some("resp.der"),
    )
    .1
}

fn make() -> Pki {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let made_at = jiff::Timestamp::now();
    let payload = b"{\"answers\":{},\"attachments\":[],\"form\":\"test\",\"version\":1}".to_vec();
    std::fs::write(dir.join("payload.bin"), &payload).unwrap();

    make_ca(dir, "ca", "Test Signing CA");
    make_ca(dir, "other", "Untrusted CA");
    make_leaf(dir, "ca", "signer", "sign_ext", None);
    make_leaf(
        dir,
        "ca",
        "expired",
        "sign_ext",
        Some(("20200101000000Z", "20210101000000Z")),
    );
    make_leaf(dir, "ca", "revoked", "sign_ext", None);
    make_leaf(dir, "ca", "encipher", "enc_ext", None);
    make_leaf(dir, "other", "stranger", "sign_ext", None);
    make_leaf(dir, "ca", "login", "auth_ext", None);
    make_leaf(
        dir,
        "ca",
        "login-expired",
        "auth_ext",
        Some(("20200101000000Z", "20210101000000Z")),
    );
    make_leaf(dir, "ca", "login-revoked", "auth_ext", None);
    make_leaf(dir, "other", "login-stranger", "auth_ext", None);
    make_leaf(dir, "ca", "nonrep", "nonrep_ext", None);
    make_leaf(dir, "ca", "ocsp-responder", "ocsp_ext", None);
    make_sub_ca(dir, "ca", "sub");
    make_leaf(dir, "sub", "login-sub", "auth_ext", None);
    let challenge: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    std::fs::write(dir.join("challenge.bin"), &challenge).unwrap();

    run(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-revoke",
            "revoked.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    run(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-revoke",
            "login-revoked.pem",
        ],
    );
    run(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "sub.cnf",
            "-gencrl",
            "-out",
            "sub_crl.pem",
        ],
    );
    run(
        dir,
        &[
            "ca", "-batch", "-config", "ca.cnf", "-gencrl", "-crldays", "30", "-out", "crl.pem",
        ],
    );
    run(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-crlhours",
            "1",
            "-out",
            "crl_short.pem",
        ],
    );
    run(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "other.cnf",
            "-gencrl",
            "-out",
            "other_crl.pem",
        ],
    );
    for crl in ["crl", "crl_short", "other_crl", "sub_crl"] {
        run(
            dir,
            &[
                "crl",
                "-in",
                &format!("{crl}.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{crl}.der"),
            ],
        );
    }
    for cert in [
        "ca",
        "signer",
        "login",
        "login-expired",
        "login-revoked",
        "login-stranger",
        "login-sub",
        "nonrep",
        "sub",
    ] {
        run(
            dir,
            &[
                "x509",
                "-in",
                &format!("{cert}.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{cert}.der"),
            ],
        );
    }

    Pki {
        made_at,
        ca_pem: read(dir, "ca.pem"),
        ca_der: read(dir, "ca.der"),
        other_ca_pem: read(dir, "other.pem"),
        signer_der: read(dir, "signer.der"),
        sig: sign(dir, "signer", "sig.der", &[]),
        sig_pss: sign(
            dir,
            "signer",
            "sig_pss.der",
            &["-keyopt", "rsa_padding_mode:pss"],
        ),
        sig_attached: sign(dir, "signer", "sig_att.der", &["-nodetach"]),
        sig_sha1: sign(dir, "signer", "sig_sha1.der", &["-md", "sha1"]),
        sig_expired: sign(dir, "expired", "sig_exp.der", &[]),
        sig_revoked: sign(dir, "revoked", "sig_rev.der", &[]),
        sig_untrusted: sign(dir, "stranger", "sig_untr.der", &[]),
        sig_wrong_usage: sign(dir, "encipher", "sig_enc.der", &[]),
        crl: read(dir, "crl.der"),
        crl_short: read(dir, "crl_short.der"),
        other_crl: read(dir, "other_crl.der"),
        payload,

        login_der: read(dir, "login.der"),
        login_pem: read(dir, "login.pem"),
        login_expired_der: read(dir, "login-expired.der"),
        login_revoked_der: read(dir, "login-revoked.der"),
        login_revoked_pem: read(dir, "login-revoked.pem"),
        login_stranger_der: read(dir, "login-stranger.der"),
        login_sub_der: read(dir, "login-sub.der"),
        nonrep_der: read(dir, "nonrep.der"),
        sub_der: read(dir, "sub.der"),
        sub_crl: read(dir, "sub_crl.der"),
        login_sig: sign_challenge(dir, "login", "login.sig", &[]),
        login_sig_pss: sign_challenge(
            dir,
            "login",
            "login_pss.sig",
            &["-sigopt", "rsa_padding_mode:pss"],
        ),
        login_sig_pss_digest: sign_challenge(
            dir,
            "login",
            "login_pss_digest.sig",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
        login_sig_sha1: sign_challenge(dir, "login", "login_sha1.sig", &["-sha1"]),
        login_expired_sig: sign_challenge(dir, "login-expired", "expired.sig", &[]),
        login_revoked_sig: sign_challenge(dir, "login-revoked", "revoked.sig", &[]),
        login_stranger_sig: sign_challenge(dir, "login-stranger", "stranger.sig", &[]),
        login_sub_sig: sign_challenge(dir, "login-sub", "sub.sig", &[]),
        nonrep_sig: sign_challenge(dir, "nonrep", "nonrep.sig", &[]),
        challenge,

        ca_key: read(dir, "ca.key"),
        ca_index: String::from_utf8(read(dir, "ca.index.txt")).unwrap(),
        responder_pem: read(dir, "ocsp-responder.pem"),
        responder_key: read(dir, "ocsp-responder.key"),
        signer_pem: read(dir, "signer.pem"),
        signer_key: read(dir, "signer.key"),
        other_ca_key: read(dir, "other.key"),
    }
}
