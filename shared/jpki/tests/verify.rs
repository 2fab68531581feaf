//! `verify` against CMS signatures made by the openssl CLI.

mod common;

use common::pki;
use jiff::{SignedDuration, Timestamp};
use madoguchi_jpki::{
    Crl, CrlSet, Indication, Policy, RevocationStatus, SubIndication, TrustAnchors, basic_four,
    verify,
};

fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem_bundle(&pki().ca_pem).expect("CA PEM")
}

fn crls_with(crl: &[u8]) -> CrlSet {
    let mut set = CrlSet::new();
    set.insert(
        Crl::parse(crl).expect("CRL parses"),
        &anchors(),
        &Policy::default(),
    )
    .expect("CRL verifies against the CA");
    set
}

/// Shortly after the fixture was made: every fixture certificate but the expired one is valid.
fn now() -> Timestamp {
    pki().made_at + SignedDuration::from_mins(10)
}

fn check(sig: &[u8], payload: &[u8], crls: &CrlSet, at: Timestamp) -> madoguchi_jpki::Report {
    verify(payload, sig, &anchors(), crls, &Policy::default(), at)
}

fn expect(report: &madoguchi_jpki::Report, indication: Indication, sub: Option<SubIndication>) {
    assert_eq!(
        (report.indication, report.sub_indication),
        (indication, sub),
        "report: {}",
        serde_json::to_string_pretty(report).unwrap()
    );
}

#[test]
fn valid_signature_passes_and_reads_basic_four() {
    let p = pki();
    let r = check(&p.sig, &p.payload, &crls_with(&p.crl), now());
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.digest_algorithm.as_deref(), Some("SHA-256"));
    assert!(
        r.signature_algorithm
            .as_deref()
            .unwrap()
            .starts_with("RSASSA-PKCS1-v1_5")
    );
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.revocation.status, RevocationStatus::Good);
    assert!(r.revocation.next_update.is_some());
    let four = r.basic_four.clone().expect("basic four");
    assert_eq!(four.name.as_deref(), Some(common::NAME));
    assert_eq!(four.address.as_deref(), Some(common::ADDRESS));
    assert_eq!(four.birth_date.as_deref(), Some(common::BIRTH_DATE));
    assert_eq!(four.gender.as_deref(), Some(common::GENDER));
    assert_eq!(four.name_alt.as_deref(), Some(common::NAME_ALT));
    assert_eq!(four.address_alt.as_deref(), Some(common::ADDRESS_ALT));
    assert_eq!(basic_four(&p.signer_der), Some(four));
    // The report serialises with ETSI spellings.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["indication"], "TOTAL-PASSED");
}

#[test]
fn pss_passes_and_can_be_refused_by_policy() {
    let p = pki();
    let crls = crls_with(&p.crl);
    let r = check(&p.sig_pss, &p.payload, &crls, now());
    expect(&r, Indication::TotalPassed, None);
    assert!(
        r.signature_algorithm
            .as_deref()
            .unwrap()
            .starts_with("RSASSA-PSS")
    );
    let no_pss = Policy {
        allow_pss: false,
        ..Policy::default()
    };
    let r = verify(&p.payload, &p.sig_pss, &anchors(), &crls, &no_pss, now());
    expect(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
    );
}

#[test]
fn attached_content_must_equal_payload() {
    let p = pki();
    let crls = crls_with(&p.crl);
    expect(
        &check(&p.sig_attached, &p.payload, &crls, now()),
        Indication::TotalPassed,
        None,
    );
    let r = check(&p.sig_attached, b"something else", &crls, now());
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
}

#[test]
fn base64_and_pem_input_are_accepted() {
    use base64::Engine;
    let p = pki();
    let crls = crls_with(&p.crl);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&p.sig);
    expect(
        &check(b64.as_bytes(), &p.payload, &crls, now()),
        Indication::TotalPassed,
        None,
    );
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CMS-----\n{}\n-----END CMS-----\n",
        wrapped.join("\n")
    );
    expect(
        &check(pem.as_bytes(), &p.payload, &crls, now()),
        Indication::TotalPassed,
        None,
    );
}

#[test]
fn tampered_payload_is_hash_failure() {
    let p = pki();
    let mut payload = p.payload.clone();
    payload[5] ^= 1;
    let r = check(&p.sig, &payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
}

#[test]
fn flipped_signature_byte_is_sig_crypto_failure() {
    let p = pki();
    // The SignerInfo's signature value ends the detached CMS.
    let mut sig = p.sig.clone();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    let r = check(&sig, &p.payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::SigCryptoFailure),
    );
}

#[test]
fn expired_certificate_is_out_of_bounds() {
    let p = pki();
    let r = check(&p.sig_expired, &p.payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::OutOfBounds),
    );
}

#[test]
fn revoked_certificate_is_revoked() {
    let p = pki();
    let r = check(&p.sig_revoked, &p.payload, &crls_with(&p.crl), now());
    expect(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    assert_eq!(r.revocation.status, RevocationStatus::Revoked);
    assert!(r.revocation.revoked_at.is_some());
    assert!(
        r.revocation
            .crl_issuer
            .as_deref()
            .unwrap()
            .contains("Test Signing CA")
    );
}

#[test]
fn untrusted_ca_has_no_chain() {
    let p = pki();
    let r = check(&p.sig_untrusted, &p.payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
    );
}

#[test]
fn stale_crl_is_try_later() {
    let p = pki();
    let crls = crls_with(&p.crl_short);
    // Fresh while nextUpdate (made_at + 1 h) is ahead …
    expect(
        &check(&p.sig, &p.payload, &crls, now()),
        Indication::TotalPassed,
        None,
    );
    // … stale after it.
    let later = p.made_at + SignedDuration::from_hours(2);
    let r = check(&p.sig, &p.payload, &crls, later);
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    assert_eq!(r.revocation.status, RevocationStatus::Unknown);
}

#[test]
fn no_crl_is_try_later_unless_policy_allows() {
    let p = pki();
    let r = check(&p.sig, &p.payload, &CrlSet::new(), now());
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    let lax = Policy {
        require_revocation: false,
        ..Policy::default()
    };
    let r = verify(&p.payload, &p.sig, &anchors(), &CrlSet::new(), &lax, now());
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.revocation.status, RevocationStatus::Unknown);
}

#[test]
fn sha1_is_refused_by_policy() {
    let p = pki();
    let r = check(&p.sig_sha1, &p.payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
    );
}

#[test]
fn signer_without_signing_key_usage_fails() {
    let p = pki();
    let r = check(&p.sig_wrong_usage, &p.payload, &crls_with(&p.crl), now());
    expect(
        &r,
        Indication::TotalFailed,
        Some(SubIndication::ChainConstraintsFailure),
    );
}

#[test]
fn garbage_and_truncated_input_are_format_failures() {
    let p = pki();
    let crls = crls_with(&p.crl);
    for bad in [
        &b""[..],
        b"\x00\x01\x02 not a signature",
        b"MIIB not base64 at all !!!",
        &p.sig[..p.sig.len() / 2],
        &p.sig[..p.sig.len() - 1],
        &p.ca_der,
    ] {
        let r = check(bad, &p.payload, &crls, now());
        expect(
            &r,
            Indication::TotalFailed,
            Some(SubIndication::FormatFailure),
        );
    }
}

#[test]
fn crl_must_verify_against_its_issuer() {
    let p = pki();
    let other = Crl::parse(&p.other_crl).unwrap();
    assert!(
        CrlSet::new()
            .insert(other.clone(), &anchors(), &Policy::default())
            .is_err()
    );
    // Signed by the other CA: verifies against it, but is never consulted for our signer.
    let other_anchors = TrustAnchors::from_pem_bundle(&p.other_ca_pem).unwrap();
    let mut set = CrlSet::new();
    set.insert(other, &other_anchors, &Policy::default())
        .unwrap();
    let r = check(&p.sig, &p.payload, &set, now());
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    // A CRL built from a list carries no signature and is refused.
    let unsigned =
        Crl::from_entries("CN=Test Signing CA,O=Madoguchi Test,C=JP", now(), None, []).unwrap();
    assert!(
        CrlSet::new()
            .insert(unsigned, &anchors(), &Policy::default())
            .is_err()
    );
}

#[test]
fn crl_reports_its_facts() {
    let p = pki();
    let crl = Crl::parse(&p.crl).unwrap();
    // The revoked signer and the revoked login certificate.
    assert_eq!(crl.len(), 2);
    assert!(crl.issuer().contains("Test Signing CA"));
    assert!(crl.is_fresh_at(now()));
    assert!(!crl.is_fresh_at(p.made_at + SignedDuration::from_hours(24 * 31)));
}

#[test]
fn anchors_from_der_work_too() {
    let p = pki();
    let anchors = TrustAnchors::from_der(vec![p.ca_der.clone()]).unwrap();
    let r = verify(
        &p.payload,
        &p.sig,
        &anchors,
        &crls_with(&p.crl),
        &Policy::default(),
        now(),
    );
    expect(&r, Indication::TotalPassed, None);
    assert!(TrustAnchors::from_der(vec![b"junk".to_vec()]).is_err());
    assert!(TrustAnchors::from_pem_bundle(b"junk").is_err());
}

fn check_digest(sig: &[u8], digest: &[u8]) -> madoguchi_jpki::Report {
    madoguchi_jpki::verify_digest_with_revocation(
        digest,
        sig,
        &anchors(),
        &crls_with(&pki().crl),
        None,
        &Policy::default(),
        now(),
    )
}

#[test]
fn a_session_digest_verifies_like_the_payload() {
    use sha2::Digest;
    let p = pki();
    let digest = sha2::Sha256::digest(&p.payload);
    let r = check_digest(&p.sig, &digest);
    expect(&r, Indication::TotalPassed, None);
    assert!(r.basic_four.is_some());
    // Attached content must hash to the digest too.
    expect(
        &check_digest(&p.sig_attached, &digest),
        Indication::TotalPassed,
        None,
    );
    let other = sha2::Sha256::digest(b"another application");
    expect(
        &check_digest(&p.sig, &other),
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
    expect(
        &check_digest(&p.sig_attached, &other),
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
    expect(
        &check_digest(&p.sig_revoked, &digest),
        Indication::TotalFailed,
        Some(SubIndication::Revoked),
    );
    expect(
        &check_digest(b"garbage", &digest),
        Indication::TotalFailed,
        Some(SubIndication::FormatFailure),
    );
}
