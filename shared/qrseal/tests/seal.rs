//! The pure core: seal → open, and every way a code is refused.

mod common;

use common::{household, issued_at, other_tenant, tenant};
use jiff::{SignedDuration, Timestamp};
use madoguchi_qrseal::{OpenError, QrKey, SealError, StaticKeys, Validity, open, parse, seal};
use proptest::prelude::*;
use zeroize::Zeroizing;

fn key(kid: u16, byte: u8) -> QrKey {
    QrKey::new(tenant(), kid, Zeroizing::new([byte; 32]))
}

fn keys() -> StaticKeys {
    StaticKeys {
        active: vec![key(1, 7), key(2, 8)],
        retired: vec![(tenant(), 3)],
    }
}

fn validity() -> Validity {
    Validity::starting(issued_at(), SignedDuration::from_hours(24 * 14)).unwrap()
}

fn later(hours: i64) -> Timestamp {
    issued_at()
        .checked_add(SignedDuration::from_hours(hours))
        .unwrap()
}

#[test]
fn seal_then_open_gives_the_household_back() {
    for n in 1..=8 {
        let app = household(n);
        let sealed = seal(&key(1, 7), validity(), &app).unwrap();
        assert!(sealed.text.starts_with("MDG1:"));
        let opened = open(&keys(), &tenant(), &sealed.text, later(1)).unwrap();
        assert_eq!(opened.application, app);
        assert_eq!(opened.header, sealed.header);
        assert_eq!(opened.header.kid, 1);
        assert_eq!(opened.header.issued_at, issued_at());
    }
}

#[test]
fn two_seals_differ_but_both_open() {
    let app = household(3);
    let a = seal(&key(1, 7), validity(), &app).unwrap();
    let b = seal(&key(1, 7), validity(), &app).unwrap();
    assert_ne!(a.text, b.text, "fresh nonce each time");
    for s in [a, b] {
        assert_eq!(
            open(&keys(), &tenant(), &s.text, later(1))
                .unwrap()
                .application,
            app
        );
    }
}

#[test]
fn scanner_noise_is_tolerated() {
    let sealed = seal(&key(1, 7), validity(), &household(2)).unwrap();
    for text in [
        format!("{}\r\n", sealed.text),
        format!("\t{}\n", sealed.text),
        sealed.text.to_ascii_lowercase(),
    ] {
        assert!(open(&keys(), &tenant(), &text, later(1)).is_ok());
    }
}

#[test]
fn every_changed_byte_is_refused() {
    let sealed = seal(&key(1, 7), validity(), &household(4)).unwrap();
    for i in 0..sealed.bytes.len() {
        let mut bytes = sealed.bytes.clone();
        bytes[i] ^= 0x01;
        let text = format!("MDG1:{}", base45(&bytes));
        let err = open(&keys(), &tenant(), &text, later(1)).unwrap_err();
        let expected: &[&str] = match i {
            0 => &["unsupported_version"],
            // The tenant bytes: another (valid or invalid) tenant code.
            1..=3 => &["other_tenant", "malformed"],
            // The key id: key 0 and key 3 (retired) and any other unknown.
            4 | 5 => &["unknown_key", "retired_key", "tampered"],
            _ => &["tampered"],
        };
        assert!(expected.contains(&err.code()), "byte {i}: {err:?}");
    }
}

#[test]
fn time_is_checked_after_authentication() {
    let sealed = seal(&key(1, 7), validity(), &household(1)).unwrap();
    let expiry = sealed.header.expires_at;
    assert!(
        open(
            &keys(),
            &tenant(),
            &sealed.text,
            expiry.checked_sub(SignedDuration::from_secs(1)).unwrap()
        )
        .is_ok()
    );
    assert!(matches!(
        open(&keys(), &tenant(), &sealed.text, expiry),
        Err(OpenError::Expired { expired_at }) if expired_at == expiry
    ));
    // A clock a little behind the issuer's is fine; far behind is "not yet valid".
    assert!(
        open(
            &keys(),
            &tenant(),
            &sealed.text,
            issued_at()
                .checked_sub(SignedDuration::from_secs(60))
                .unwrap()
        )
        .is_ok()
    );
    assert!(matches!(
        open(
            &keys(),
            &tenant(),
            &sealed.text,
            issued_at()
                .checked_sub(SignedDuration::from_hours(1))
                .unwrap()
        ),
        Err(OpenError::NotYetValid { .. })
    ));
}

#[test]
fn other_tenant_unknown_and_retired_keys() {
    let sealed = seal(&key(1, 7), validity(), &household(2)).unwrap();
    assert!(matches!(
        open(&keys(), &other_tenant(), &sealed.text, later(1)),
        Err(OpenError::OtherTenant { tenant: t }) if t == tenant()
    ));
    let unknown = seal(&key(9, 9), validity(), &household(2)).unwrap();
    assert!(matches!(
        open(&keys(), &tenant(), &unknown.text, later(1)),
        Err(OpenError::UnknownKey { kid: 9 })
    ));
    let retired = seal(&key(3, 3), validity(), &household(2)).unwrap();
    assert!(matches!(
        open(&keys(), &tenant(), &retired.text, later(1)),
        Err(OpenError::RetiredKey { kid: 3 })
    ));
    // Same kid, another secret: a forgery.
    let forged = seal(&key(2, 99), validity(), &household(2)).unwrap();
    assert!(matches!(
        open(&keys(), &tenant(), &forged.text, later(1)),
        Err(OpenError::Tampered)
    ));
}

#[test]
fn foreign_and_broken_texts() {
    let sealed = seal(&key(1, 7), validity(), &household(1)).unwrap();
    let body = sealed.text.strip_prefix("MDG1:").unwrap();
    let cases: Vec<(String, &[&str])> = vec![
        ("https://example.jp/".into(), &["not_ours"]),
        ("".into(), &["not_ours"]),
        ("HC1:6BFOXN".into(), &["not_ours"]),
        ("MDGX:ABC".into(), &["not_ours"]),
        (format!("MDG2:{body}"), &["unsupported_version"]),
        // Cut short: a dangling character, or a shorter ciphertext that fails to verify.
        (
            format!("MDG1:{}", &body[..body.len() - 1]),
            &["malformed", "tampered"],
        ),
        (format!("MDG1:{}", &body[..body.len() - 3]), &["tampered"]),
        (format!("MDG1:{}", &body[..30]), &["malformed"]),
        ("MDG1:".into(), &["malformed"]),
        ("MDG1:A".into(), &["malformed"]),
        (format!("MDG1:{}_", &body[..body.len() - 2]), &["malformed"]),
        ("MDG1:山田".into(), &["not_ours"]),
        ("M".repeat(10_000), &["not_ours"]),
    ];
    for (text, codes) in cases {
        let err = open(&keys(), &tenant(), &text, later(1)).unwrap_err();
        assert!(codes.contains(&err.code()), "{:.40}: {err:?}", text);
        assert!(!err.message_ja().is_empty());
    }
    // A binary version byte other than 1 behind a "MDG1:" prefix.
    let mut bytes = sealed.bytes.clone();
    bytes[0] = 2;
    assert!(matches!(
        parse(&format!("MDG1:{}", base45(&bytes))),
        Err(OpenError::UnsupportedVersion { version: 2 })
    ));
}

#[test]
fn sealing_refuses_what_it_cannot_seal() {
    let mut app = household(2);
    app.tenant = other_tenant();
    assert_eq!(
        seal(&key(1, 7), validity(), &app),
        Err(SealError::TenantMismatch)
    );

    let mut app = household(2);
    app.members[1].given_kana = "はなこ".into();
    match seal(&key(1, 7), validity(), &app) {
        Err(SealError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "members[1].given_kana");
        }
        other => panic!("{other:?}"),
    }
    let backwards = Validity {
        issued_at: issued_at(),
        expires_at: issued_at(),
    };
    assert_eq!(
        seal(&key(1, 7), backwards, &household(1)),
        Err(SealError::Validity)
    );
    // The most members allowed, each with long names that do not compress (distinct
    // kanji): too much for a QR code, refused rather than rendered as something no scanner
    // reads.
    let mut app = household(madoguchi_qrseal::model::MAX_MEMBERS);
    let mut seed = 0u32;
    let mut kanji = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from_u32(0x4E00 + (seed >> 8) % 20_000).unwrap()
            })
            .collect()
    };
    for p in &mut app.members {
        p.family_name = kanji(30);
        p.given_name = kanji(30);
    }
    assert!(matches!(
        seal(&key(1, 7), validity(), &app),
        Err(SealError::TooLarge { .. })
    ));
}

/// RFC 9285 base45 (the crate's own encoder is private; this one is the RFC's definition).
fn base45(bytes: &[u8]) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let mut out = String::new();
    for c in bytes.chunks(2) {
        let (n, k) = if c.len() == 2 {
            ((u32::from(c[0]) << 8) | u32::from(c[1]), 3)
        } else {
            (u32::from(c[0]), 2)
        };
        let mut n = n;
        for _ in 0..k {
            out.push(char::from(A[(n % 45) as usize]));
            n /= 45;
        }
    }
    out
}

fn arb_kana() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('ア'),
            Just('ン'),
            Just('ー'),
            Just('ヴ'),
            Just('ッ'),
            Just('ガ')
        ],
        1..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn arb_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('山'),
            Just('田'),
            Just('髙'),
            Just('﨑'),
            Just('一'),
            Just('-'),
            Just('1'),
            Just('ヶ'),
            Just('a'),
            Just('𠮷')
        ],
        1..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn arb_household() -> impl Strategy<Value = madoguchi_qrseal::PreApplication> {
    let person = (
        arb_text(12),
        arb_text(12),
        arb_kana(),
        arb_kana(),
        0i64..38_000,
        any::<bool>(),
        2u8..=17,
        proptest::option::of("[A-Z]{2}"),
    );
    (
        proptest::collection::vec(person, 1..9),
        arb_text(40),
        "[a-z-]{1,20}",
        proptest::option::of("[0-9]{7}"),
    )
        .prop_map(|(people, addr, proc_id, postal)| {
            let mut app = household(1);
            app.members = people
                .into_iter()
                .enumerate()
                .map(
                    |(i, (f, g, fk, gk, days, male, rel, nat))| madoguchi_qrseal::Person {
                        family_name: f,
                        given_name: g,
                        family_kana: fk,
                        given_kana: gk,
                        birth_date: jiff::civil::date(1920, 1, 1)
                            .checked_add(jiff::Span::new().days(days))
                            .unwrap(),
                        sex: if male {
                            madoguchi_qrseal::Sex::Male
                        } else {
                            madoguchi_qrseal::Sex::Female
                        },
                        relationship: if i == 0 {
                            madoguchi_qrseal::Relationship::Householder
                        } else {
                            madoguchi_qrseal::Relationship::from_code(rel)
                                .unwrap_or(madoguchi_qrseal::Relationship::Other("縁故者".into()))
                        },
                        nationality: nat,
                    },
                )
                .collect();
            app.new_address.address = addr;
            app.new_address.postal_code = postal;
            app.old_address.katagaki = String::new();
            app.procedures = vec![proc_id];
            app
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn seal_open_is_identity(app in arb_household()) {
        let sealed = seal(&key(1, 7), validity(), &app).unwrap();
        let opened = open(&keys(), &tenant(), &sealed.text, later(1)).unwrap();
        prop_assert_eq!(opened.application, app);
    }

    #[test]
    fn open_never_panics_on_strings(s in any::<String>()) {
        let _ = open(&keys(), &tenant(), &s, later(1));
    }

    #[test]
    fn open_never_panics_on_prefixed_base45(s in "MDG1:[0-9A-Z $%*+./:-]{0,200}") {
        let _ = open(&keys(), &tenant(), &s, later(1));
    }

    #[test]
    fn open_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), version in 0u8..3) {
        let mut bytes = bytes;
        if let Some(b) = bytes.first_mut() { *b = version; }
        let text = format!("MDG1:{}", base45(&bytes));
        let _ = open(&keys(), &tenant(), &text, later(1));
        let _ = madoguchi_qrseal::payload::decode(tenant(), &bytes);
        let _ = madoguchi_qrseal::payload::decompress(&bytes);
        let _ = madoguchi_qrseal::payload::decode_plain(tenant(), &bytes);
    }
}

#[test]
fn debug_output_shows_no_personal_data() {
    let app = household(8);
    let sealed = seal(&key(1, 7), validity(), &app).unwrap();
    let opened = open(&keys(), &tenant(), &sealed.text, later(1)).unwrap();
    let shown = format!("{opened:?} {app:?} {:?} {:?}", app.members, app.new_address);
    for secret in [
        "髙橋",
        "タカハシ",
        "健太郎",
        "千代田区",
        "1020074",
        "1982",
        "九段",
        "VN",
        "妻の祖母",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(!format!("{:?}", key(1, 7)).contains("7, 7"));
}
