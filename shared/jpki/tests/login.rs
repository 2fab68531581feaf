//! `verify_login` against challenge signatures made by `openssl dgst -sign`.

mod common;

use common::pki;
use jiff::{SignedDuration, Timestamp};
use madoguchi_jpki::{
    Crl, CrlSet, Indication, Policy, Report, RevocationSource, RevocationStatus, SubIndication,
    TrustAnchors, certificate_issuer, certificate_serial_hex, verify_login,
};

fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem_bundle(&pki().ca_pem).expect("CA PEM")
}

fn crls() -> CrlSet {
    let mut set = CrlSet::new();
    set.insert(
        Crl::parse(&pki().crl).unwrap(),
        &anchors(),
        &Policy::default(),
    )
    .unwrap();
    set
}

fn now() -> Timestamp {
    pki().made_at + SignedDuration::from_mins(10)
}

fn login(cert: &[u8], sig: &[u8]) -> Report {
    verify_login(
        &pki().challenge,
        cert,
        sig,
        &[],
        &anchors(),
        &crls(),
        &Policy::default(),
        now(),
    )
}

fn expect(report: &Report, indication: Indication, sub: Option<SubIndication>) {
    assert_eq!(
        (report.indication, report.sub_indication),
        (indication, sub),
        "report: {}",
        serde_json::to_string_pretty(report).unwrap()
    );
}

#[test]
fn pkcs1_login_passes() {
    let p = pki();
    let r = login(&p.login_der, &p.login_sig);
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.digest_algorithm.as_deref(), Some("SHA-256"));
    assert_eq!(
        r.signature_algorithm.as_deref(),
        Some("RSASSA-PKCS1-v1_5 with SHA-256")
    );
    assert_eq!(r.basic_four, None);
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.revocation.status, RevocationStatus::Good);
    assert_eq!(r.revocation.source, Some(RevocationSource::Crl));
    // The server links a login by issuer and serial.
    let signer = r.signer.as_ref().unwrap();
    assert_eq!(
        certificate_serial_hex(&p.login_der).as_deref(),
        Some(signer.serial_hex.as_str())
    );
    assert!(signer.issuer.contains("Test Signing CA"));
    assert_eq!(certificate_serial_hex(b"junk"), None);
}

#[test]
fn base64_signature_and_pem_certificate_are_accepted() {
    use base64::Engine;
    let p = pki();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&p.login_sig);
    expect(
        &login(&p.login_pem, b64.as_bytes()),
        Indication::TotalPassed,
        None,
    );
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&p.login_sig);
    expect(
        &login(&p.login_der, url.as_bytes()),
        Indication::TotalPassed,
        None,
    );
}

#[test]
fn pss_logins_pass_unless_refused_by_policy() {
    let p = pki();
    for (sig, salt) in [(&p.login_sig_pss, 222), (&p.login_sig_pss_digest, 32)] {
        let r = login(&p.login_der, sig);
        expect(&r, Indication::TotalPassed, None);
        assert_eq!(
            r.signature_algorithm.unwrap(),
            format!("RSASSA-PSS with SHA-256 (MGF1, salt {salt})")
        );
    }
    let no_pss = Policy {
        allow_pss: false,
        ..Policy::default()
    };
    let r = verify_login(
        &p.challenge,
        &p.login_der,
        &p.login_sig_pss,
        &[],
        &anchors(),
        &crls(),
        &no_pss,
        now(),
    );
    expect(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
    );
}

#[test]
fn sha1_is_refused() {
    let p = pki();
    expect(
        &login(&p.login_der, &p.login_sig_sha1),
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
    );
}

#[test]
fn wrong_challenge_or_key_is_sig_crypto_failure() {
    let p = pki();
    let mut other = p.challenge.clone();
    other[0] ^= 1;
    let r = verify_login(
        &other,
        &p.login_der,
        &p.login_sig,
        &[],
        &anchors(),
        &crls(),
        &Policy::default(),
        now(),
    );
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::SigCryptoFailure),
    );
    // Another card's signature with this certificate.
    expect(
        &login(&p.login_der, &p.login_revoked_sig),
        Indication::TotalFailed,
        Some(SubIndication::SigCryptoFailure),
    );
}

#[test]
fn revoked_certificate_is_revoked() {
    let p = pki();
    let r = login(&p.login_revoked_der, &p.login_revoked_sig);
    expect(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    assert_eq!(r.revocation.status, RevocationStatus::Revoked);
    assert!(r.revocation.revoked_at.is_some());
}

#[test]
fn expired_certificate_is_out_of_bounds() {
    let p = pki();
    expect(
        &login(&p.login_expired_der, &p.login_expired_sig),
        Indication::Indeterminate,
        Some(SubIndication::OutOfBounds),
    );
}

#[test]
fn untrusted_ca_has_no_chain() {
    let p = pki();
    expect(
        &login(&p.login_stranger_der, &p.login_stranger_sig),
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
    );
}

#[test]
fn stale_crl_is_try_later() {
    let p = pki();
    let mut short = CrlSet::new();
    short
        .insert(
            Crl::parse(&p.crl_short).unwrap(),
            &anchors(),
            &Policy::default(),
        )
        .unwrap();
    let at = |t| {
        verify_login(
            &p.challenge,
            &p.login_der,
            &p.login_sig,
            &[],
            &anchors(),
            &short,
            &Policy::default(),
            t,
        )
    };
    expect(&at(now()), Indication::TotalPassed, None);
    let r = at(p.made_at + SignedDuration::from_hours(2));
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    assert_eq!(r.revocation.status, RevocationStatus::Unknown);
}

#[test]
fn non_repudiation_alone_cannot_log_in() {
    let p = pki();
    let r = login(&p.nonrep_der, &p.nonrep_sig);
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::ChainConstraintsFailure),
    );
    // It is a signing certificate: its 基本4情報 are reported.
    assert!(r.basic_four.is_some());
}

#[test]
fn chain_through_an_intermediate() {
    let p = pki();
    let mut set = crls();
    let sub = TrustAnchors::from_der(vec![p.sub_der.clone()]).unwrap();
    set.insert(Crl::parse(&p.sub_crl).unwrap(), &sub, &Policy::default())
        .unwrap();
    let with = |intermediates: &[Vec<u8>]| {
        verify_login(
            &p.challenge,
            &p.login_sub_der,
            &p.login_sub_sig,
            intermediates,
            &anchors(),
            &set,
            &Policy::default(),
            now(),
        )
    };
    let r = with(std::slice::from_ref(&p.sub_der));
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.chain.len(), 3);
    assert_eq!(r.revocation.status, RevocationStatus::Good);
    expect(
        &with(&[]),
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
    );
    // The issuer, for an OCSP request.
    assert_eq!(
        certificate_issuer(
            &p.login_sub_der,
            std::slice::from_ref(&p.sub_der),
            &anchors()
        ),
        Some(p.sub_der.clone())
    );
    assert_eq!(
        certificate_issuer(&p.login_der, &[], &anchors()),
        Some(p.ca_der.clone())
    );
    assert_eq!(certificate_issuer(&p.login_sub_der, &[], &anchors()), None);
}

#[test]
fn garbage_is_format_failure() {
    let p = pki();
    let format = |r: Report| {
        expect(
            &r,
            Indication::TotalFailed,
            Some(SubIndication::FormatFailure),
        )
    };
    for cert in [
        &b""[..],
        b"garbage",
        &p.login_der[..p.login_der.len() - 1],
        &p.login_sig,
    ] {
        format(login(cert, &p.login_sig));
    }
    // Not 256 bytes, raw or base64.
    for sig in [
        &b""[..],
        b"garbage",
        &p.login_sig[1..],
        &[p.login_sig.as_slice(), b"x"].concat(),
    ] {
        format(login(&p.login_der, sig));
    }
    let r = verify_login(
        b"",
        &p.login_der,
        &p.login_sig,
        &[],
        &anchors(),
        &crls(),
        &Policy::default(),
        now(),
    );
    format(r);
    let r = verify_login(
        &p.challenge,
        &p.login_der,
        &p.login_sig,
        &[b"junk".to_vec()],
        &anchors(),
        &crls(),
        &Policy::default(),
        now(),
    );
    format(r);
}
