//! Whatever bytes arrive, `verify`, `verify_login`, the OCSP functions, `basic_four` and
//! `Crl::parse` answer without panicking, and nothing damaged passes.

mod common;

use std::sync::OnceLock;

use jiff::Timestamp;
use madoguchi_jpki::ocsp::{check_ocsp_response, ocsp_request};
use madoguchi_jpki::{
    Crl, CrlSet, Indication, Policy, TrustAnchors, basic_four, certificate_issuer,
    certificate_serial_hex, signer_and_issuer, verify, verify_login,
};
use proptest::prelude::*;

fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem_bundle(&common::pki().ca_pem).unwrap()
}

fn crls() -> CrlSet {
    let mut set = CrlSet::new();
    set.insert(
        Crl::parse(&common::pki().crl).unwrap(),
        &anchors(),
        &Policy::default(),
    )
    .unwrap();
    set
}

const NONCE: &[u8] = b"nonce";

/// A response about the login certificate echoing `NONCE`, by the delegated responder (its
/// certificate included) or by the CA itself (without certificates: smaller, for the
/// exhaustive test; certificates that the verification does not use are not checked).
fn ocsp_response(delegated: bool) -> &'static [u8] {
    static RESPONSES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let [by_responder, by_ca] = RESPONSES.get_or_init(|| {
        let p = common::pki();
        let req = ocsp_request(&p.login_der, &p.ca_der, Some(NONCE)).unwrap();
        [
            common::ocsp_respond(&req, &p.ca_index, &p.responder_pem, &p.responder_key, &[]),
            common::ocsp_respond(&req, &p.ca_index, &p.ca_pem, &p.ca_key, &["-resp_no_certs"]),
        ]
    });
    if delegated { by_responder } else { by_ca }
}

/// When every fixture certificate but the expired ones is valid and the CRL fresh.
fn soon() -> Timestamp {
    common::pki().made_at + jiff::SignedDuration::from_mins(10)
}

/// The undamaged inputs pass, so that a failure in the mutation tests is the mutation's.
#[test]
fn undamaged_inputs_pass() {
    let p = common::pki();
    let r = verify(
        &p.payload,
        &p.sig_attached,
        &anchors(),
        &crls(),
        &Policy::default(),
        soon(),
    );
    assert_eq!(r.indication, Indication::TotalPassed);
    let r = verify_login(
        &p.challenge,
        &p.login_der,
        &p.login_sig,
        &[],
        &anchors(),
        &crls(),
        &Policy::default(),
        soon(),
    );
    assert_eq!(r.indication, Indication::TotalPassed);
    let r = check_ocsp_response(
        ocsp_response(true),
        &p.login_der,
        &p.ca_der,
        Some(NONCE),
        &Policy::default(),
        Timestamp::now(),
    );
    assert!(r.is_ok(), "{r:?}");
}

fn flip(bytes: &[u8], flips: &[(prop::sample::Index, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (at, x) in flips {
        let i = at.index(out.len());
        out[i] ^= x | 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let r = verify(&payload, &bytes, &anchors(), &CrlSet::new(), &Policy::default(), Timestamp::now());
        prop_assert_ne!(r.indication, Indication::TotalPassed);
        let _ = basic_four(&bytes);
        let _ = Crl::parse(&bytes);
        let _ = TrustAnchors::from_der(vec![bytes.clone()]);
        let _ = TrustAnchors::from_pem_bundle(&bytes);
        let p = common::pki();
        let half = bytes.len() / 2;
        let (a, b) = bytes.split_at(half);
        for (cert, sig) in [(&bytes[..], &p.login_sig[..]), (&p.login_der[..], &bytes[..]), (a, b)] {
            let r = verify_login(&payload, cert, sig, &[b.to_vec()], &anchors(), &CrlSet::new(), &Policy::default(), Timestamp::now());
            prop_assert_ne!(r.indication, Indication::TotalPassed);
        }
        prop_assert!(check_ocsp_response(&bytes, &p.login_der, &p.ca_der, Some(NONCE), &Policy::default(), Timestamp::now()).is_err());
        prop_assert!(check_ocsp_response(a, b, b, None, &Policy::default(), Timestamp::now()).is_err());
        let _ = ocsp_request(a, b, Some(&payload));
        let _ = certificate_serial_hex(&bytes);
        let _ = certificate_issuer(a, &[b.to_vec()], &anchors());
        prop_assert_eq!(signer_and_issuer(&bytes, &anchors()), None);
    }

    /// Damaged logins never pass: certificate, signature or challenge.
    #[test]
    fn mutated_login(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), which in 0..3u8) {
        let p = common::pki();
        let (mut cert, mut sig, mut challenge) = (p.login_der.clone(), p.login_sig.clone(), p.challenge.clone());
        match which {
            0 => cert = flip(&cert, &flips),
            1 => sig = flip(&sig, &flips),
            _ => challenge = flip(&challenge, &flips),
        }
        let r = verify_login(&challenge, &cert, &sig, &[], &anchors(), &crls(), &Policy::default(), soon());
        prop_assert_ne!(r.indication, Indication::TotalPassed);
    }

    /// A damaged OCSP response is never accepted.
    #[test]
    fn mutated_ocsp_response(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let p = common::pki();
        let mut resp = flip(ocsp_response(true), &flips);
        if truncate {
            resp.truncate(cut.index(resp.len()));
        }
        let r = check_ocsp_response(&resp, &p.login_der, &p.ca_der, Some(NONCE), &Policy::default(), Timestamp::now());
        prop_assert!(r.is_err(), "{:?}", r);
    }

    /// Mutations of real openssl output reach deeper than random bytes.
    #[test]
    fn mutated_signature(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let p = common::pki();
        let mut sig = p.sig_attached.clone();
        for (at, x) in &flips {
            let i = at.index(sig.len());
            sig[i] ^= x | 1;
        }
        if truncate {
            sig.truncate(cut.index(sig.len()));
        }
        let r = verify(&p.payload, &sig, &anchors(), &crls(), &Policy::default(), soon());
        prop_assert_ne!(r.indication, Indication::TotalPassed);
        let mut cert = p.signer_der.clone();
        let (at, x) = &flips[0];
        let i = at.index(cert.len());
        cert[i] ^= x | 1;
        let _ = basic_four(&cert);
        let mut crl = p.crl.clone();
        let i = at.index(crl.len());
        crl[i] ^= x | 1;
        let _ = Crl::parse(&crl);
    }
}

/// Every byte matters, including those the signatures do not cover (versions, content type,
/// digestAlgorithms, algorithm parameters, the unsigned copy of a certificate's signature
/// algorithm): flipping the low bit of any byte never passes.
#[test]
fn every_byte_flip_fails() {
    let p = common::pki();
    for i in 0..p.sig_attached.len() {
        let mut sig = p.sig_attached.clone();
        sig[i] ^= 1;
        let r = verify(
            &p.payload,
            &sig,
            &anchors(),
            &crls(),
            &Policy::default(),
            soon(),
        );
        assert!(!r.passed(), "CMS byte {i} flipped passes");
    }
    let response = ocsp_response(false);
    for i in 0..response.len() {
        let mut resp = response.to_vec();
        resp[i] ^= 1;
        let r = check_ocsp_response(
            &resp,
            &p.login_der,
            &p.ca_der,
            Some(NONCE),
            &Policy::default(),
            Timestamp::now(),
        );
        assert!(r.is_err(), "OCSP byte {i} flipped is accepted");
    }
}
