//! JPKI verification, measured (`make bench`): signature verifications per second on one core
//! with a warm CRL set (the test PKI of `tests/common`, made by the openssl CLI), for PKCS#1
//! v1.5 and PSS signatures and card-login signatures; and the build and lookup time of a CRL
//! of 1,000,000 entries.
//!
//! A benchmark, not a test: it asserts only that the verifications pass. Under `cargo test`
//! it runs briefly as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use madoguchi_jpki::{Crl, CrlSet, Policy, TrustAnchors, verify, verify_login};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    };
    let pki = common::pki();
    let anchors = TrustAnchors::from_pem_bundle(&pki.ca_pem).expect("test CA");
    let policy = Policy::default();
    let mut crls = CrlSet::new();
    crls.insert(Crl::parse(&pki.crl).expect("test CRL"), &anchors, &policy)
        .expect("CRL signed by the test CA");
    let now = pki
        .made_at
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();

    println!(
        "JPKI signature verification, one thread (RSA 2048, SHA-256, CRL of the test CA warm)"
    );
    for (label, sig) in [("PKCS#1 v1.5", &pki.sig), ("PSS", &pki.sig_pss)] {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < budget {
            let report = verify(&pki.payload, sig, &anchors, &crls, &policy, now);
            assert!(report.passed(), "{report:?}");
            n += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {label:<12} {n:>6} verifications in {secs:.2} s = {:>7.0} /s ({:.0} µs each)",
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
    }

    // Card login: the user certificate's signature over a challenge (same CA and CRL here).
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget {
        let report = verify_login(
            &pki.challenge,
            &pki.login_der,
            &pki.login_sig,
            &[],
            &anchors,
            &crls,
            &policy,
            now,
        );
        assert!(report.passed(), "{report:?}");
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  {:<12} {n:>6} verifications in {secs:.2} s = {:>7.0} /s ({:.0} µs each)",
        "card login",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );

    let entries: u64 = if full { 1_000_000 } else { 10_000 };
    let t0 = pki.made_at;
    let serial = |i: u64| (0x0100_0000u64 + 2 * i).to_be_bytes().to_vec();
    let built = Instant::now();
    let crl = Crl::from_entries(
        "CN=Bench CA,C=JP",
        t0,
        None,
        (0..entries).map(|i| (serial(i), t0)),
    )
    .expect("entries");
    let built = built.elapsed();
    let probes = 1_000_000u64.min(entries * 2);
    let started = Instant::now();
    let mut hits = 0u64;
    for i in 0..probes {
        // Half listed, half absent (odd neighbours).
        let s = if i % 2 == 0 {
            serial((i * 7919) % entries)
        } else {
            (0x0100_0001u64 + 2 * ((i * 7919) % entries))
                .to_be_bytes()
                .to_vec()
        };
        if crl.is_revoked(&s).is_some() {
            hits += 1;
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e9 / probes as f64;
    assert_eq!(hits, probes / 2);
    println!(
        "CRL of {entries} entries: built in {:.0} ms; {probes} lookups, {per:.0} ns each",
        built.as_secs_f64() * 1e3
    );
}
