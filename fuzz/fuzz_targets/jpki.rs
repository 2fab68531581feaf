//! Arbitrary bytes as a CMS signature, a login (certificate, signature, intermediate), an
//! OCSP response, a certificate, a CRL and a trust-anchor bundle: the JPKI verification core
//! must never panic, and garbage must never pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi_jpki::ocsp::{check_ocsp_response, ocsp_request};
use madoguchi_jpki::{
    Crl, CrlSet, Policy, TrustAnchors, basic_four, certificate_issuer, certificate_serial_hex,
    signer_and_issuer, verify, verify_login,
};

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let policy = Policy::default();
    let anchors = TrustAnchors::from_der(Vec::new()).unwrap_or_else(|_| unreachable!());
    let report = verify(b"payload", data, &anchors, &CrlSet::new(), &policy, now);
    // No anchors: nothing can pass.
    assert!(!report.passed());

    // A login: the whole input as the certificate, and split into certificate, signature
    // and intermediate.
    let (head, tail) = data.split_at(data.len() / 2);
    let (sig, intermediate) = tail.split_at(tail.len() / 2);
    for (cert, sig) in [(data, sig), (head, sig)] {
        let report = verify_login(
            b"challenge",
            cert,
            sig,
            &[intermediate.to_vec()],
            &anchors,
            &CrlSet::new(),
            &policy,
            now,
        );
        assert!(!report.passed());
    }

    // The OCSP response parser is reached before the certificates are looked at.
    assert!(check_ocsp_response(data, head, tail, Some(b"nonce"), &policy, now).is_err());
    let _ = ocsp_request(head, tail, Some(intermediate));
    let _ = certificate_serial_hex(data);
    let _ = certificate_issuer(head, &[tail.to_vec()], &anchors);
    assert!(signer_and_issuer(data, &anchors).is_none());

    let _ = basic_four(data);
    let _ = Crl::parse(data);
    let _ = TrustAnchors::from_pem_bundle(data);
    let _ = TrustAnchors::from_der(vec![data.to_vec()]);
});
