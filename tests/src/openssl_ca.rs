//! Test CAs made by the openssl CLI at test time (an independent implementation of X.509,
//! CRLs and CMS), shared by the JPKI, revocation and end-to-end tests. Each CA lives in a
//! directory as `openssl ca` wants it: `{ca}.cnf`, `{ca}.key`, `{ca}.pem`, `{ca}.index.txt`
//! (also the database an `openssl ocsp` responder reads), `{ca}.serial`, `{ca}.crlnumber`.
//! Nothing made here is committed; no key is a real one.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the openssl CLI in `dir`; panics with its stderr if it fails.
pub fn openssl_output(dir: &Path, args: &[&str]) -> Output {
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
    out
}

/// [`openssl_output`]'s stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    openssl_output(dir, args).stdout
}

/// A file of `dir`, which must exist.
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An `openssl ca` configuration for CA `ca` in `dir` (SHA-256, certificates for 365 days,
/// CRLs for 30), followed by `sections` (the extension sections the CA issues with).
pub fn ca_config(dir: &Path, ca: &str, sections: &str) -> String {
    format!(
        r#"[ ca ]
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
{sections}
"#,
        dir = dir.display()
    )
}

/// The files `openssl ca` needs for CA `ca` (its key and certificate are made apart).
pub fn ca_files(dir: &Path, ca: &str, sections: &str, first_serial: &str) {
    std::fs::write(dir.join(format!("{ca}.cnf")), ca_config(dir, ca, sections)).unwrap();
    std::fs::write(dir.join(format!("{ca}.index.txt")), "").unwrap();
    std::fs::write(
        dir.join(format!("{ca}.serial")),
        format!("{first_serial}\n"),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{ca}.crlnumber")), "01\n").unwrap();
    std::fs::create_dir(dir.join(format!("{ca}.newcerts"))).unwrap();
}

/// A self-signed root CA `ca` (RSA 2048, ten years) issuing with `sections`.
pub fn make_ca(dir: &Path, ca: &str, cn: &str, sections: &str) {
    ca_files(dir, ca, sections, "1000");
    openssl(
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

/// A key `{name}.key` and certificate `{name}.pem` (CN = `name`) issued by `ca` with its
/// extension section `ext`; `dates` = (start, end) in `openssl ca` form, else the default.
pub fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str, dates: Option<(&str, &str)>) {
    openssl(
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
    let (cnf, csr, pem) = (
        format!("{ca}.cnf"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
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
    openssl(dir, &args);
}

/// Revokes `{name}.pem` in `ca`'s database (reason keyCompromise).
pub fn revoke(dir: &Path, ca: &str, name: &str) {
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            &format!("{ca}.cnf"),
            "-revoke",
            &format!("{name}.pem"),
            "-crl_reason",
            "keyCompromise",
        ],
    );
}

/// A CRL of `ca` as `{out}.pem` and `{out}.der`; `extra` arguments appended to `-gencrl`
/// (e.g. `-crlhours 1`).
pub fn gencrl(dir: &Path, ca: &str, out: &str, extra: &[&str]) {
    let (cnf, pem, der) = (
        format!("{ca}.cnf"),
        format!("{out}.pem"),
        format!("{out}.der"),
    );
    let mut args = vec!["ca", "-batch", "-config", &cnf, "-gencrl", "-out", &pem];
    args.extend(extra);
    openssl(dir, &args);
    openssl(dir, &["crl", "-in", &pem, "-outform", "DER", "-out", &der]);
}
