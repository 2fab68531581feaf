//! Whatever bytes arrive, `verify`, `basic_four` and `Crl::parse` answer without panicking.

mod common;

use jiff::Timestamp;
use madoguchi_jpki::{Crl, CrlSet, Indication, Policy, TrustAnchors, basic_four, verify};
use proptest::prelude::*;

fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem_bundle(&common::pki().ca_pem).unwrap()
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
        let r = verify(&p.payload, &sig, &anchors(), &CrlSet::new(), &Policy::default(), p.made_at);
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
