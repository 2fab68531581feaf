//! Pre-application QR (事前申請QR): a household's data for the 住民異動届, sealed into a QR
//! code the citizen brings to the counter, and opened there.
//!
//! - [`model`]: the pre-application (householder first, then members) and its field-level
//!   validation (katakana フリガナ, possible dates, required fields).
//! - [`seal()`](seal::seal) / [`open()`](seal::open): the pure core. A versioned binary
//!   (header: version, tenant, key id, issued-at, expiry), the payload DEFLATE-compressed and
//!   encrypted with AES-256-GCM under the tenant's QR key, the header as associated data;
//!   base45 text behind `MDG1:` for the QR's alphanumeric mode. Opening tells apart
//!   not-ours, malformed, unsupported version, other tenant, unknown and retired keys,
//!   tampering, expiry and codes from the future, and never panics (fuzzed).
//! - [`keyring`]: per-tenant QR keys, data keys of the keys port stored wrapped in the item
//!   store: current (created on first use), rotate, retire, list; unwrapped keys cached for a
//!   bounded time.
//! - [`render`]: PNG and SVG at error correction level M, and reading a photo (rqrr).
//!
//! Nothing here logs, and the model's `Debug` shows no personal data. The format, key
//! lifecycle and sizes: `docs/qr.md`.

mod base45;
pub mod keyring;
pub mod model;
pub mod payload;
pub mod render;
pub mod seal;

pub use keyring::{KeyInfo, KeyringError, KeyringSealError, QrKeyring};
pub use model::{
    Address, FieldError, Person, PreApplication, Procedure, Relationship, Sex, is_katakana,
    parse_date, validate,
};
pub use render::{PhotoError, RenderError, decode_photo, qr_version, render_png, render_svg};
pub use seal::{
    Header, KeySource, KeyState, OpenError, Opened, QrKey, SealError, Sealed, SealedCode,
    StaticKeys, Validity, open, open_sealed, parse, seal,
};
