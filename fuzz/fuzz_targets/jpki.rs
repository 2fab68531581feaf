//! Arbitrary bytes as a CMS signature, a certificate, a CRL and a trust-anchor bundle: the
//! JPKI verification core must never panic, and garbage must never pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi_jpki::{Crl, CrlSet, Policy, TrustAnchors, basic_four, verify};

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let anchors = TrustAnchors::from_der(Vec::new()).unwrap_or_else(|_| unreachable!());
    let report = verify(b"payload", data, &anchors, &CrlSet::new(), &Policy::default(), now);
    // No anchors: nothing can pass.
    assert!(!report.passed());
    let _ = basic_four(data);
    let _ = Crl::parse(data);
    let _ = TrustAnchors::from_pem_bundle(data);
    let _ = TrustAnchors::from_der(vec![data.to_vec()]);
});
