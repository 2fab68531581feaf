//! Arbitrary bytes at the counter's QR opener: as scanned text (the whole path: prefix,
//! base45, header, key lookup, AES-GCM, time checks) and as the decrypted body that only a key
//! holder could produce (method byte, inflate, payload decoder), since the fuzzer cannot forge
//! the AEAD. Nothing may panic; a body that decodes must re-encode to the same household.
#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use madoguchi_domain::tenant::TenantId;
use madoguchi_qrseal::{QrKey, StaticKeys, open, payload};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let tenant = TenantId::parse("131016").expect("a valid tenant");
    // The key the seeds were sealed with (shared/qrseal/examples/fuzz_seeds.rs); kid 3 retired.
    let keys = StaticKeys {
        active: vec![QrKey::new(tenant, 1, Zeroizing::new([7; 32]))],
        retired: vec![(tenant, 3)],
    };
    // One hour after the seeds were issued (2026-04-01T00:00:00Z): they open.
    let now = Timestamp::from_second(1_775_005_200).expect("a valid instant");

    let text = String::from_utf8_lossy(data);
    if let Ok(opened) = open(&keys, &tenant, &text, now) {
        assert_eq!(opened.header.tenant, tenant);
        assert_eq!(opened.application.tenant, tenant);
    }

    if let Ok(app) = payload::decode(tenant, data) {
        let again =
            payload::decode(tenant, &payload::encode(&app)).expect("re-encoded body decodes");
        assert!(again == app, "re-encoded body differs");
    }
});
