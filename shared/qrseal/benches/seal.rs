//! Pre-application QR, measured (`cargo bench -p madoguchi-qrseal`): seals and opens per
//! second on one core with the key already unwrapped, and for households of 1–8 the payload
//! bytes (plain, DEFLATE, LZ4 for comparison, sealed), the text length and the QR version at
//! level M (Q and base64-in-byte-mode beside it, for the choices in `docs/qr.md`); then the
//! largest household that fits.
//!
//! A benchmark, not a test: it asserts only that codes open. Without `--bench` (under
//! `cargo test --benches`) it runs briefly as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use jiff::SignedDuration;
use madoguchi_qrseal::{QrKey, StaticKeys, Validity, open, payload, qr_version, seal};
use qrcode::EcLevel;
use zeroize::Zeroizing;

fn version_at(text: &str, ec: EcLevel) -> String {
    match qrcode::bits::encode_auto(text.as_bytes(), ec).map(|b| b.version()) {
        Ok(qrcode::Version::Normal(v)) => v.to_string(),
        _ => "-".to_owned(),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    };
    let key = QrKey::new(common::tenant(), 1, Zeroizing::new([7; 32]));
    let keys = StaticKeys {
        active: vec![key.clone()],
        retired: vec![],
    };
    let validity =
        Validity::starting(common::issued_at(), SignedDuration::from_hours(24 * 14)).unwrap();
    let now = common::issued_at();

    println!("QR seal/open, one thread, key unwrapped (AES-256-GCM, DEFLATE level 10)");
    for n in [1usize, 4, 8] {
        let app = common::household(n);
        let started = Instant::now();
        let mut seals = 0u64;
        while started.elapsed() < budget {
            black_box(seal(&key, validity, black_box(&app)).unwrap());
            seals += 1;
        }
        let seal_secs = started.elapsed().as_secs_f64();
        let text = seal(&key, validity, &app).unwrap().text;
        let started = Instant::now();
        let mut opens = 0u64;
        while started.elapsed() < budget {
            let opened = open(&keys, &common::tenant(), black_box(&text), now).unwrap();
            assert_eq!(opened.application.members.len(), n);
            opens += 1;
        }
        let open_secs = started.elapsed().as_secs_f64();
        println!(
            "  household of {n}: {:>8.0} seals/s ({:>5.1} µs each), {:>8.0} opens/s ({:>5.1} µs each)",
            seals as f64 / seal_secs,
            seal_secs * 1e6 / seals as f64,
            opens as f64 / open_secs,
            open_secs * 1e6 / opens as f64,
        );
    }

    println!();
    println!("Sizes per household (bytes; text = \"MDG1:\" + base45; QR version by level)");
    println!("  members  plain  deflate  lz4  sealed  text  v(M)  v(Q)  v(M, base64 byte mode)");
    for n in 1..=8 {
        let app = common::household(n);
        let plain = payload::encode_plain(&app);
        let deflated = payload::compress(&plain);
        let lz4 = lz4_flex::block::compress(&plain);
        let sealed = seal(&key, validity, &app).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&sealed.bytes);
        println!(
            "  {n:>7}  {:>5}  {:>7}  {:>3}  {:>6}  {:>4}  {:>4}  {:>4}  {:>4}",
            plain.len(),
            deflated.len(),
            lz4.len(),
            sealed.bytes.len(),
            sealed.text.len(),
            qr_version(&sealed.text).unwrap(),
            version_at(&sealed.text, EcLevel::Q),
            version_at(&format!("MDG1:{b64}"), EcLevel::M),
        );
    }

    println!();
    // Beyond MAX_MEMBERS `seal` refuses by validation, so the size of larger households is
    // computed from the body: header, nonce and tag around it, base45, the prefix.
    let limits = [20i16, 25, 30, 40];
    let mut largest = [0usize; 4];
    for n in 1..=400 {
        let sealed_len = 14 + 12 + 16 + payload::encode(&common::household(n)).len();
        let text_len = 5 + sealed_len / 2 * 3 + sealed_len % 2 * 2;
        let Ok(v) = qr_version(&"A".repeat(text_len)) else {
            break;
        };
        for (slot, limit) in largest.iter_mut().zip(limits) {
            if v <= limit {
                *slot = n;
            }
        }
    }
    println!("Largest household (the sample's 10, then 同居人 with distinct names) at level M:");
    for (n, limit) in largest.iter().zip(limits) {
        println!("  up to version {limit:>2}: {n:>3} members");
    }
    // Worst case: every name and kana at its maximum length, characters that do not repeat.
    let mut app = common::household(1);
    let kanji: Vec<char> = (0x4E00u32..0x4E00 + 3000)
        .filter_map(char::from_u32)
        .collect();
    let kana: Vec<char> = ('\u{30A1}'..='\u{30F4}').collect();
    let mut seed = 7u32;
    let mut pick = |from: &[char], len: usize| -> String {
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                from[(seed >> 12) as usize % from.len()]
            })
            .collect()
    };
    let max = madoguchi_qrseal::model::MAX_NAME_CHARS;
    let mut worst = 0;
    for n in 1..=madoguchi_qrseal::model::MAX_MEMBERS {
        while app.members.len() < n {
            app.members.push(app.members[0].clone());
            if let Some(p) = app.members.last_mut() {
                p.relationship = madoguchi_qrseal::Relationship::Cohabitant;
            }
        }
        for p in &mut app.members {
            p.family_name = pick(&kanji, max);
            p.given_name = pick(&kanji, max);
            p.family_kana = pick(&kana, max);
            p.given_kana = pick(&kana, max);
        }
        if seal(&key, validity, &app).is_err() {
            break;
        }
        worst = n;
    }
    println!(
        "  worst case (every name and フリガナ {max} characters, none repeating): {worst} members up to version {}",
        madoguchi_qrseal::render::MAX_QR_VERSION
    );
    println!(
        "  (validation allows at most {} members; `seal` refuses whatever does not fit version {})",
        madoguchi_qrseal::model::MAX_MEMBERS,
        madoguchi_qrseal::render::MAX_QR_VERSION
    );
}
