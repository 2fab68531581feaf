//! Writes the seed corpus of the `qr_open` fuzz target (`fuzz/seeds/qr_open/`): sealed texts
//! of the sample households under the fuzz target's fixed key, and their decrypted bodies.
//!
//!     cargo run -p madoguchi-qrseal --example fuzz_seeds -- fuzz/seeds/qr_open

#[path = "../tests/common/mod.rs"]
mod common;

use jiff::SignedDuration;
use madoguchi_qrseal::{QrKey, Validity, payload, seal};
use zeroize::Zeroizing;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds/qr_open".to_owned());
    std::fs::create_dir_all(&dir)?;
    let validity = Validity::starting(common::issued_at(), SignedDuration::from_hours(24 * 14))
        .expect("a valid validity");
    // The fuzz target knows kid 1 (active) and kid 3 (retired); kid 9 is unknown.
    for (kid, sizes) in [(1u16, 1..=8usize), (3, 2..=2), (9, 1..=1)] {
        let key = QrKey::new(common::tenant(), kid, Zeroizing::new([7; 32]));
        for n in sizes {
            let app = common::household(n);
            let sealed = seal(&key, validity, &app).expect("sample households seal");
            std::fs::write(format!("{dir}/text-kid{kid}-{n}"), sealed.text)?;
            if kid == 1 {
                std::fs::write(format!("{dir}/body-{n}"), payload::encode(&app))?;
                let mut plain = vec![0u8];
                plain.extend(payload::encode_plain(&app));
                std::fs::write(format!("{dir}/body-stored-{n}"), plain)?;
            }
        }
    }
    Ok(())
}
