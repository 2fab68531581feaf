//! OCSP requests checked by `openssl ocsp`, and its answers (as the CA, as a delegated
//! responder, as strangers) checked by `check_ocsp_response`.

mod common;

use common::{ocsp_respond, openssl_in, pki};
use jiff::{SignedDuration, Timestamp};
use madoguchi_jpki::ocsp::{check_ocsp_response, ocsp_request};
use madoguchi_jpki::{
    CrlSet, Indication, JpkiError, Policy, Report, RevocationFacts, RevocationSource,
    RevocationStatus, SubIndication, TrustAnchors, certificate_serial_hex, signer_and_issuer,
    verify_login_with_revocation, verify_with_revocation,
};

const NONCE: &[u8] = b"0123456789abcdef";

fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem_bundle(&pki().ca_pem).expect("CA PEM")
}

/// The responses are made now, by openssl.
fn now() -> Timestamp {
    Timestamp::now() + SignedDuration::from_secs(1)
}

/// The CA's database with the line of `cert` removed (its status becomes unknown) or made
/// valid again (its status becomes good).
fn index_without(cert: &[u8], reinstate: bool) -> String {
    let serial = certificate_serial_hex(cert).unwrap().to_uppercase();
    pki()
        .ca_index
        .lines()
        .filter_map(|line| {
            let mut fields: Vec<&str> = line.split('\t').collect();
            if fields.get(3) != Some(&serial.as_str()) {
                return Some(format!("{line}\n"));
            }
            reinstate.then(|| {
                fields[0] = "V";
                fields[2] = "";
                format!("{}\n", fields.join("\t"))
            })
        })
        .collect()
}

/// Ask about `cert` with `nonce`; openssl answers as the CA.
fn answer_by_ca(cert: &[u8], nonce: Option<&[u8]>, index: &str) -> Vec<u8> {
    let p = pki();
    let req = ocsp_request(cert, &p.ca_der, nonce).expect("request");
    ocsp_respond(&req, index, &p.ca_pem, &p.ca_key, &[])
}

fn check(resp: &[u8], cert: &[u8], nonce: Option<&[u8]>) -> Result<RevocationFacts, JpkiError> {
    check_ocsp_response(resp, cert, &pki().ca_der, nonce, &Policy::default(), now())
}

fn login_with(cert: &[u8], sig: &[u8], ocsp: Option<&RevocationFacts>) -> Report {
    let p = pki();
    verify_login_with_revocation(
        &p.challenge,
        cert,
        sig,
        &[],
        &anchors(),
        &CrlSet::new(),
        ocsp,
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

fn expect_error(result: Result<RevocationFacts, JpkiError>, words: &str) {
    match result {
        Err(JpkiError::Ocsp(m)) if m.contains(words) => {}
        other => panic!("expected an OCSP error about {words:?}, got {other:?}"),
    }
}

#[test]
fn request_equals_openssls_and_parses() {
    let p = pki();
    // Without a nonce, byte for byte what `openssl ocsp` sends.
    let ours = ocsp_request(&p.login_der, &p.ca_der, None).unwrap();
    let (_, theirs) = openssl_in(
        &[("ca.pem", &p.ca_pem), ("login.pem", &p.login_pem)],
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "login.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
        Some("req.der"),
    );
    assert_eq!(ours, theirs);
    // With one, openssl reads it back.
    let ours = ocsp_request(&p.login_pem, &p.ca_pem, Some(NONCE)).unwrap();
    let (text, _) = openssl_in(
        &[("req.der", &ours)],
        &["ocsp", "-reqin", "req.der", "-req_text"],
        None,
    );
    let serial = certificate_serial_hex(&p.login_der).unwrap().to_uppercase();
    assert!(text.contains("Hash Algorithm: sha1"), "{text}");
    assert!(text.contains(&format!("Serial Number: {serial}")), "{text}");
    assert!(text.contains("OCSP Nonce"), "{text}");
    assert!(text.contains(&hex_of(NONCE)), "{text}");
}

/// openssl prints the nonce extension's value (the inner OCTET STRING) as uppercase hex.
fn hex_of(nonce: &[u8]) -> String {
    nonce.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn request_errors() {
    let p = pki();
    // The certificate is not the CA's.
    assert!(ocsp_request(&p.login_stranger_der, &p.ca_der, None).is_err());
    assert!(ocsp_request(b"junk", &p.ca_der, None).is_err());
    assert!(ocsp_request(&p.login_der, b"junk", None).is_err());
    assert!(ocsp_request(&p.login_der, &p.ca_der, Some(b"")).is_err());
    assert!(ocsp_request(&p.login_der, &p.ca_der, Some(&[7; 33])).is_err());
}

#[test]
fn good_by_the_ca_decides_login() {
    let p = pki();
    let resp = answer_by_ca(&p.login_der, Some(NONCE), &p.ca_index);
    let facts = check(&resp, &p.login_der, Some(NONCE)).unwrap();
    assert_eq!(facts.status, RevocationStatus::Good);
    assert_eq!(facts.source, Some(RevocationSource::Ocsp));
    assert!(facts.nonce_matched);
    assert!(
        facts
            .responder
            .as_deref()
            .unwrap()
            .contains("Test Signing CA")
    );
    let next = facts.next_update.unwrap();
    assert!(next > now() + SignedDuration::from_hours(23));
    assert!(facts.produced_at.is_some());
    // No CRL is held: the OCSP answer decides.
    let r = login_with(&p.login_der, &p.login_sig, Some(&facts));
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.revocation, facts);
    // The facts survive a round trip through JSON (stored between the two calls).
    let json = serde_json::to_string(&facts).unwrap();
    assert_eq!(
        serde_json::from_str::<RevocationFacts>(&json).unwrap(),
        facts
    );
    // Reports stored before OCSP existed still read.
    let old: RevocationFacts = serde_json::from_str(
        r#"{"status":"good","crl_issuer":"CN=x","this_update":null,"next_update":null,"revoked_at":null}"#,
    )
    .unwrap();
    assert_eq!(old.source, None);
}

#[test]
fn revoked_by_the_ca_decides_login() {
    let p = pki();
    let resp = answer_by_ca(&p.login_revoked_der, None, &p.ca_index);
    let facts = check(&resp, &p.login_revoked_der, None).unwrap();
    assert_eq!(facts.status, RevocationStatus::Revoked);
    assert!(facts.revoked_at.is_some());
    assert!(!facts.nonce_matched);
    let r = login_with(&p.login_revoked_der, &p.login_revoked_sig, Some(&facts));
    expect(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    assert_eq!(r.revocation.source, Some(RevocationSource::Ocsp));
}

#[test]
fn unknown_falls_back_to_the_crl() {
    let p = pki();
    let index = index_without(&p.login_der, false);
    let resp = answer_by_ca(&p.login_der, None, &index);
    let facts = check(&resp, &p.login_der, None).unwrap();
    assert_eq!(facts.status, RevocationStatus::Unknown);
    // No CRL either: try later.
    let r = login_with(&p.login_der, &p.login_sig, Some(&facts));
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    // With the CRL: decided by it.
    let mut crls = CrlSet::new();
    crls.insert(
        madoguchi_jpki::Crl::parse(&p.crl).unwrap(),
        &anchors(),
        &Policy::default(),
    )
    .unwrap();
    let r = verify_login_with_revocation(
        &p.challenge,
        &p.login_der,
        &p.login_sig,
        &[],
        &anchors(),
        &crls,
        Some(&facts),
        &Policy::default(),
        now(),
    );
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.revocation.source, Some(RevocationSource::Crl));
}

#[test]
fn a_fresh_crl_listing_the_serial_beats_ocsp_good() {
    let p = pki();
    let index = index_without(&p.login_revoked_der, true);
    let resp = answer_by_ca(&p.login_revoked_der, None, &index);
    let facts = check(&resp, &p.login_revoked_der, None).unwrap();
    assert_eq!(facts.status, RevocationStatus::Good);
    let mut crls = CrlSet::new();
    crls.insert(
        madoguchi_jpki::Crl::parse(&p.crl).unwrap(),
        &anchors(),
        &Policy::default(),
    )
    .unwrap();
    let r = verify_login_with_revocation(
        &p.challenge,
        &p.login_revoked_der,
        &p.login_revoked_sig,
        &[],
        &anchors(),
        &crls,
        Some(&facts),
        &Policy::default(),
        now(),
    );
    expect(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    assert_eq!(r.revocation.source, Some(RevocationSource::Crl));
}

#[test]
fn delegated_responder_is_accepted() {
    let p = pki();
    let req = ocsp_request(&p.login_der, &p.ca_der, Some(NONCE)).unwrap();
    for extra in [&[][..], &["-resp_key_id"]] {
        let resp = ocsp_respond(&req, &p.ca_index, &p.responder_pem, &p.responder_key, extra);
        let facts = check(&resp, &p.login_der, Some(NONCE)).unwrap();
        assert_eq!(facts.status, RevocationStatus::Good);
        assert!(
            facts
                .responder
                .as_deref()
                .unwrap()
                .contains("ocsp-responder")
        );
        assert!(facts.nonce_matched);
    }
    // The responder's certificate must be valid (it is for 365 days).
    let resp = ocsp_respond(&req, &p.ca_index, &p.responder_pem, &p.responder_key, &[]);
    let later = p.made_at + SignedDuration::from_hours(24 * 400);
    let r = check_ocsp_response(
        &resp,
        &p.login_der,
        &p.ca_der,
        None,
        &Policy::default(),
        later,
    );
    expect_error(r, "ocsp-responder is valid from");
}

#[test]
fn responders_that_are_not_delegated_are_refused() {
    let p = pki();
    let req = ocsp_request(&p.login_der, &p.ca_der, None).unwrap();
    // A certificate of the CA without id-kp-OCSPSigning.
    let resp = ocsp_respond(&req, &p.ca_index, &p.signer_pem, &p.signer_key, &[]);
    expect_error(check(&resp, &p.login_der, None), "OCSPSigning");
    // An unrelated key, with its certificate in the response …
    let resp = ocsp_respond(&req, &p.ca_index, &p.other_ca_pem, &p.other_ca_key, &[]);
    expect_error(check(&resp, &p.login_der, None), "not issued by");
    // … and without.
    let resp = ocsp_respond(
        &req,
        &p.ca_index,
        &p.other_ca_pem,
        &p.other_ca_key,
        &["-resp_no_certs"],
    );
    expect_error(check(&resp, &p.login_der, None), "verifies neither");
    // The delegated responder's certificate not included: nothing to verify with.
    let resp = ocsp_respond(
        &req,
        &p.ca_index,
        &p.responder_pem,
        &p.responder_key,
        &["-resp_no_certs"],
    );
    expect_error(check(&resp, &p.login_der, None), "verifies neither");
}

#[test]
fn nonce_must_match_when_echoed() {
    let p = pki();
    let resp = answer_by_ca(&p.login_der, Some(NONCE), &p.ca_index);
    expect_error(check(&resp, &p.login_der, Some(b"another nonce")), "nonce");
    // Not sent: nothing to compare.
    assert!(check(&resp, &p.login_der, None).is_ok());
    // Sent, not echoed: accepted, and said so.
    let resp = answer_by_ca(&p.login_der, None, &p.ca_index);
    assert!(
        !check(&resp, &p.login_der, Some(NONCE))
            .unwrap()
            .nonce_matched
    );
}

#[test]
fn response_about_another_certificate_is_refused() {
    let p = pki();
    let resp = answer_by_ca(&p.login_der, None, &p.ca_index);
    expect_error(
        check(&resp, &p.login_revoked_der, None),
        "no SingleResponse is about this certificate",
    );
    // And its facts cannot be used for another certificate either.
    let facts = check(&resp, &p.login_der, None).unwrap();
    let r = login_with(&p.login_revoked_der, &p.login_revoked_sig, Some(&facts));
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    // The certificate must be the issuer's.
    let r = check_ocsp_response(
        &resp,
        &p.login_stranger_der,
        &p.ca_der,
        None,
        &Policy::default(),
        now(),
    );
    assert!(r.is_err());
}

#[test]
fn stale_response_is_refused() {
    let p = pki();
    let resp = answer_by_ca(&p.login_der, None, &p.ca_index);
    let facts = check(&resp, &p.login_der, None).unwrap();
    let after = now() + SignedDuration::from_hours(48);
    let r = check_ocsp_response(
        &resp,
        &p.login_der,
        &p.ca_der,
        None,
        &Policy::default(),
        after,
    );
    expect_error(r, "stale");
    // Checked facts go stale too.
    let r = verify_login_with_revocation(
        &p.challenge,
        &p.login_der,
        &p.login_sig,
        &[],
        &anchors(),
        &CrlSet::new(),
        Some(&facts),
        &Policy::default(),
        after,
    );
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    // A response from the future (beyond the clock skew) is refused.
    let before = now() - SignedDuration::from_mins(30);
    let r = check_ocsp_response(
        &resp,
        &p.login_der,
        &p.ca_der,
        None,
        &Policy::default(),
        before,
    );
    expect_error(r, "later than");
}

#[test]
fn unsuccessful_and_garbage_responses_are_errors() {
    let p = pki();
    // OCSPResponse { responseStatus tryLater }.
    expect_error(
        check(&[0x30, 0x03, 0x0a, 0x01, 0x03], &p.login_der, None),
        "TryLater",
    );
    for junk in [&b""[..], b"junk", &[0x30, 0x00], &p.ca_der] {
        assert!(check(junk, &p.login_der, None).is_err());
    }
    // A flipped byte in the signed data.
    let mut resp = answer_by_ca(&p.login_der, None, &p.ca_index);
    let at = resp.len() / 3;
    resp[at] ^= 0x01;
    assert!(check(&resp, &p.login_der, None).is_err());
}

#[test]
fn ocsp_decides_cms_verification_too() {
    let p = pki();
    let (signer, issuer) = signer_and_issuer(&p.sig, &anchors()).expect("signer and issuer");
    assert_eq!(signer, p.signer_der);
    assert_eq!(issuer, p.ca_der);
    assert_eq!(signer_and_issuer(b"junk", &anchors()), None);
    assert_eq!(signer_and_issuer(&p.sig_untrusted, &anchors()), None);

    let req = ocsp_request(&signer, &issuer, Some(NONCE)).unwrap();
    let resp = ocsp_respond(&req, &p.ca_index, &p.responder_pem, &p.responder_key, &[]);
    let facts = check_ocsp_response(
        &resp,
        &signer,
        &issuer,
        Some(NONCE),
        &Policy::default(),
        now(),
    )
    .unwrap();
    let r = verify_with_revocation(
        &p.payload,
        &p.sig,
        &anchors(),
        &CrlSet::new(),
        Some(&facts),
        &Policy::default(),
        now(),
    );
    expect(&r, Indication::TotalPassed, None);
    assert_eq!(r.revocation.status, RevocationStatus::Good);
    assert_eq!(r.revocation.source, Some(RevocationSource::Ocsp));
    // Without it, no CRL: try later.
    let r = verify_with_revocation(
        &p.payload,
        &p.sig,
        &anchors(),
        &CrlSet::new(),
        None,
        &Policy::default(),
        now(),
    );
    expect(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
}
