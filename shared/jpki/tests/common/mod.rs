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
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make)
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI is installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ca_config(dir: &Path, ca: &str) -> String {
    format!(
        r#"
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/{ca}.index.txt
new_certs_dir = $dir/{ca}.newcerts
serial = $dir/{ca}.serial
crlnumber = $dir/{ca}.crlnumber
certificate = $dir/{ca}.pem
private_key = $dir/{ca}.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
countryName = optional
organizationName = optional
[ sign_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
subjectAltName = @jpki_san
[ enc_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
[ jpki_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:{NAME}
otherName.2 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:{BIRTH_DATE}
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:{GENDER}
otherName.4 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:{ADDRESS}
otherName.5 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:{NAME_ALT}
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:{ADDRESS_ALT}
"#,
        dir = dir.display()
    )
}

fn make_ca(dir: &Path, ca: &str, cn: &str) {
    std::fs::write(dir.join(format!("{ca}.cnf")), ca_config(dir, ca)).unwrap();
    std::fs::write(dir.join(format!("{ca}.index.txt")), "").unwrap();
    std::fs::write(dir.join(format!("{ca}.serial")), "1000\n").unwrap();
    std::fs::write(dir.join(format!("{ca}.crlnumber")), "01\n").unwrap();
    std::fs::create_dir(dir.join(format!("{ca}.newcerts"))).unwrap();
    run(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "3650",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-subj",
            &format!("/C=JP/O=Madoguchi Test/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// Issue a leaf `name` from `ca` with extension section `ext`; `dates` = (start, end).
fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str, dates: Option<(&str, &str)>) {
    run(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/C=JP/CN={name}"),
        ],
    );
    let cnf = format!("{ca}.cnf");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    let mut args = vec![
        "ca",
        "-batch",
        "-notext",
        "-config",
        &cnf,
        "-extensions",
        ext,
        "-in",
        &csr,
        "-out",
        &pem,
    ];
    if let Some((start, end)) = dates {
        args.extend(["-startdate", start, "-enddate", end]);
    }
    run(dir, &args);
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
    for crl in ["crl", "crl_short", "other_crl"] {
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
    for cert in ["ca", "signer"] {
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
    }
}
