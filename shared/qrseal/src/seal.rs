//! Sealing and opening: the pure core (no I/O, no clock; "now" and keys come in).
//!
//! ```text
//! text   = "MDG1:" base45(sealed)
//! sealed = header(14) || nonce(12) || AES-256-GCM(key, nonce, body, aad = header)
//! body   = method(1) || payload, raw DEFLATE (method 1) or stored (method 0)
//! header = version(1) || tenant(3) || kid(2) || issued_at(4) || expires_at(4)
//! ```
//! Byte by byte in `docs/qr.md`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use jiff::{SignedDuration, Timestamp};
use madoguchi_domain::tenant::TenantId;
use zeroize::Zeroizing;

use crate::model::{FieldError, PreApplication, validate};
use crate::{base45, payload};

/// Format version this crate writes and the only one it opens.
pub const FORMAT_VERSION: u8 = 1;
/// Text prefix: `MDG` (Madoguchi), the format version as a digit, `:`. All characters of
/// the QR alphanumeric set, like the base45 after it.
pub const TEXT_PREFIX: &str = "MDG1:";
/// Header bytes (authenticated as associated data).
pub const HEADER_LEN: usize = 14;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// A code issued up to this much "in the future" still opens: the issuing server's and the
/// counter's clocks may differ a little.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(5 * 60);
/// Longest text accepted by [`parse`] (a version 40 QR code holds 4,296 alphanumeric
/// characters at level L); anything longer is not ours and is refused before decoding.
pub const MAX_TEXT_LEN: usize = 4296;

/// A tenant's QR key, unwrapped. The secret is zeroized on drop and never printed.
#[derive(Clone)]
pub struct QrKey {
    tenant: TenantId,
    kid: u16,
    secret: Zeroizing<[u8; 32]>,
}

impl QrKey {
    pub fn new(tenant: TenantId, kid: u16, secret: Zeroizing<[u8; 32]>) -> Self {
        Self {
            tenant,
            kid,
            secret,
        }
    }
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }
    pub fn kid(&self) -> u16 {
        self.kid
    }
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&*self.secret).into())
    }
}

impl std::fmt::Debug for QrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrKey")
            .field("tenant", &self.tenant)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The clear, authenticated header of a sealed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub tenant: TenantId,
    pub kid: u16,
    /// Whole seconds (the format stores epoch seconds as u32).
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Header {
    fn to_bytes(self) -> Result<[u8; HEADER_LEN], SealError> {
        let secs = |t: Timestamp| u32::try_from(t.as_second()).map_err(|_| SealError::Validity);
        let tenant: u32 = self
            .tenant
            .as_str()
            .parse()
            .map_err(|_| SealError::Validity)?;
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.version;
        out[1..4].copy_from_slice(&tenant.to_be_bytes()[1..]);
        out[4..6].copy_from_slice(&self.kid.to_be_bytes());
        out[6..10].copy_from_slice(&secs(self.issued_at)?.to_be_bytes());
        out[10..14].copy_from_slice(&secs(self.expires_at)?.to_be_bytes());
        Ok(out)
    }

    fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<Header, OpenError> {
        if b[0] != FORMAT_VERSION {
            return Err(OpenError::UnsupportedVersion { version: b[0] });
        }
        let tenant = u32::from_be_bytes([0, b[1], b[2], b[3]]);
        let tenant = TenantId::parse(&format!("{tenant:06}")).map_err(|_| OpenError::Malformed)?;
        let secs = |r: std::ops::Range<usize>| {
            let mut four = [0u8; 4];
            four.copy_from_slice(&b[r]);
            Timestamp::from_second(i64::from(u32::from_be_bytes(four)))
                .map_err(|_| OpenError::Malformed)
        };
        Ok(Header {
            version: b[0],
            tenant,
            kid: u16::from_be_bytes([b[4], b[5]]),
            issued_at: secs(6..10)?,
            expires_at: secs(10..14)?,
        })
    }
}

/// A sealed code: its bytes, its QR text and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub header: Header,
    pub bytes: Vec<u8>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the pre-application is not valid")]
    Invalid(Vec<FieldError>),
    #[error("the key belongs to another tenant than the pre-application")]
    TenantMismatch,
    #[error("issued-at and expiry must be whole seconds in 1970–2106, expiry after issue")]
    Validity,
    #[error("the sealed text ({chars} characters) does not fit the largest QR code allowed")]
    TooLarge { chars: usize },
}

/// Why a code did not open. Codes and Japanese messages are for the counter's screen;
/// none of them carries the code's content.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a Madoguchi pre-application code (another QR, a URL, garbage).
    #[error("not a Madoguchi pre-application code")]
    NotOurs,
    /// Ours by its prefix, but not well-formed (cut short, bad characters, bad header).
    #[error("malformed code")]
    Malformed,
    /// A format version this build does not know.
    #[error("unsupported format version {version}")]
    UnsupportedVersion { version: u8 },
    /// Sealed for another municipality than the counter's.
    #[error("sealed for another tenant")]
    OtherTenant { tenant: TenantId },
    /// The key id is not among the tenant's keys.
    #[error("unknown key id {kid}")]
    UnknownKey { kid: u16 },
    /// The key was retired: codes under it are no longer accepted.
    #[error("retired key id {kid}")]
    RetiredKey { kid: u16 },
    /// Authentication failed: changed bytes, or a forgery.
    #[error("tampered code")]
    Tampered,
    #[error("expired code")]
    Expired { expired_at: Timestamp },
    /// Issued later than now plus the allowed clock skew.
    #[error("code not yet valid")]
    NotYetValid { issued_at: Timestamp },
    /// Reading the keys failed (the store or KMS); retry later. Only from the keyring.
    #[error("key store unavailable: {0}")]
    KeyStore(madoguchi_ports::PortError),
}

impl OpenError {
    /// A stable code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::NotOurs => "not_ours",
            OpenError::Malformed => "malformed",
            OpenError::UnsupportedVersion { .. } => "unsupported_version",
            OpenError::OtherTenant { .. } => "other_tenant",
            OpenError::UnknownKey { .. } => "unknown_key",
            OpenError::RetiredKey { .. } => "retired_key",
            OpenError::Tampered => "tampered",
            OpenError::Expired { .. } => "expired",
            OpenError::NotYetValid { .. } => "not_yet_valid",
            OpenError::KeyStore(_) => "key_store_unavailable",
        }
    }

    /// What the counter's screen says.
    pub fn message_ja(&self) -> &'static str {
        match self {
            OpenError::NotOurs => "事前申請のQRコードではありません。",
            OpenError::Malformed => {
                "QRコードを正しく読み取れませんでした。もう一度読み取ってください。"
            }
            OpenError::UnsupportedVersion { .. } => "このQRコードの形式には対応していません。",
            OpenError::OtherTenant { .. } => "他の市区町村向けのQRコードです。",
            OpenError::UnknownKey { .. } => "このQRコードの鍵が見つかりません。",
            OpenError::RetiredKey { .. } => {
                "このQRコードは無効になっています。再度作成してください。"
            }
            OpenError::Tampered => "QRコードの内容が改ざんされているか、破損しています。",
            OpenError::Expired { .. } => "QRコードの有効期限が切れています。再度作成してください。",
            OpenError::NotYetValid { .. } => "QRコードの発行日時が正しくありません。",
            OpenError::KeyStore(_) => "しばらくしてからもう一度お試しください。",
        }
    }
}

/// What the counter gets: the verified header and the household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub header: Header,
    pub application: PreApplication,
}

/// The state of a key id, as a [`KeySource`] knows it.
#[derive(Debug)]
pub enum KeyState<'a> {
    Active(&'a QrKey),
    Retired,
    Unknown,
}

/// Where [`open`] finds keys (the keyring prefetches into one; tests and benches use
/// [`StaticKeys`]).
pub trait KeySource {
    fn lookup(&self, tenant: &TenantId, kid: u16) -> KeyState<'_>;
}

/// A fixed set of keys, some possibly retired.
#[derive(Debug, Default, Clone)]
pub struct StaticKeys {
    pub active: Vec<QrKey>,
    pub retired: Vec<(TenantId, u16)>,
}

impl KeySource for StaticKeys {
    fn lookup(&self, tenant: &TenantId, kid: u16) -> KeyState<'_> {
        if self.retired.contains(&(*tenant, kid)) {
            return KeyState::Retired;
        }
        self.active
            .iter()
            .find(|k| k.tenant == *tenant && k.kid == kid)
            .map_or(KeyState::Unknown, KeyState::Active)
    }
}

/// Validity of a code: issued at, expires at (whole seconds are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Validity {
    /// From `now` for `ttl`.
    pub fn starting(now: Timestamp, ttl: SignedDuration) -> Result<Validity, SealError> {
        Ok(Validity {
            issued_at: now,
            expires_at: now.checked_add(ttl).map_err(|_| SealError::Validity)?,
        })
    }
}

/// Validates `app` (as of the issue date in Japan) and seals it under `key`, with a fresh
/// random nonce.
pub fn seal(key: &QrKey, validity: Validity, app: &PreApplication) -> Result<Sealed, SealError> {
    if app.tenant != key.tenant {
        return Err(SealError::TenantMismatch);
    }
    let today = validity
        .issued_at
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date();
    validate(app, today).map_err(SealError::Invalid)?;
    let header = Header {
        version: FORMAT_VERSION,
        tenant: key.tenant,
        kid: key.kid,
        issued_at: whole_seconds(validity.issued_at)?,
        expires_at: whole_seconds(validity.expires_at)?,
    };
    if header.expires_at <= header.issued_at {
        return Err(SealError::Validity);
    }
    let aad = header.to_bytes()?;
    let body = payload::encode(app);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: &body,
                aad: &aad,
            },
        )
        // Only fails for inputs of gigabytes; the payload here is a few hundred bytes.
        .map_err(|_| SealError::TooLarge { chars: body.len() })?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
    bytes.extend_from_slice(&aad);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    let mut text = String::with_capacity(TEXT_PREFIX.len() + bytes.len() * 3 / 2 + 2);
    text.push_str(TEXT_PREFIX);
    text.push_str(&base45::encode(&bytes));
    if !crate::render::fits(&text) {
        return Err(SealError::TooLarge { chars: text.len() });
    }
    Ok(Sealed {
        header,
        bytes,
        text,
    })
}

fn whole_seconds(t: Timestamp) -> Result<Timestamp, SealError> {
    Timestamp::from_second(t.as_second()).map_err(|_| SealError::Validity)
}

/// A parsed, not yet verified code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCode {
    header: Header,
    bytes: Vec<u8>,
}

impl SealedCode {
    /// The header as written: not authenticated until [`open_sealed`] succeeds.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// Parses the scanned text (surrounding whitespace and a scanner's line end are ignored;
/// lower case is accepted, since a keyboard-wedge scanner with Caps Lock on inverts case
/// and base45 has no lower-case letters).
pub fn parse(text: &str) -> Result<SealedCode, OpenError> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace() && c != ' ');
    if text.len() > MAX_TEXT_LEN || !text.is_ascii() {
        return Err(OpenError::NotOurs);
    }
    let text = text.to_ascii_uppercase();
    let Some(rest) = text.strip_prefix("MDG") else {
        return Err(OpenError::NotOurs);
    };
    let Some((version, body)) = rest.split_once(':') else {
        return Err(OpenError::NotOurs);
    };
    if version.is_empty() || version.len() > 3 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OpenError::NotOurs);
    }
    if version != "1" {
        let version = version.parse::<u8>().unwrap_or(u8::MAX);
        return Err(OpenError::UnsupportedVersion { version });
    }
    let bytes = base45::decode(body).ok_or(OpenError::Malformed)?;
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(OpenError::Malformed);
    };
    let header = Header::from_bytes(head)?;
    if bytes.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    Ok(SealedCode { header, bytes })
}

/// Verifies and decrypts a parsed code for the counter of `counter_tenant` at `now`, given
/// the state of its key. The order of checks: tenant, key, authentication, then time (so an
/// "expired" answer is only given for a genuine code).
pub fn open_sealed(
    code: &SealedCode,
    key: KeyState<'_>,
    counter_tenant: &TenantId,
    now: Timestamp,
) -> Result<Opened, OpenError> {
    let header = code.header;
    if header.tenant != *counter_tenant {
        return Err(OpenError::OtherTenant {
            tenant: header.tenant,
        });
    }
    let key = match key {
        KeyState::Active(k) if k.tenant == header.tenant && k.kid == header.kid => k,
        KeyState::Active(_) | KeyState::Unknown => {
            return Err(OpenError::UnknownKey { kid: header.kid });
        }
        KeyState::Retired => return Err(OpenError::RetiredKey { kid: header.kid }),
    };
    let (aad, rest) = code.bytes.split_at(HEADER_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let body = key
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| OpenError::Tampered)?;
    if now >= header.expires_at {
        return Err(OpenError::Expired {
            expired_at: header.expires_at,
        });
    }
    let latest = now.checked_add(MAX_CLOCK_SKEW).unwrap_or(now);
    if header.issued_at > latest {
        return Err(OpenError::NotYetValid {
            issued_at: header.issued_at,
        });
    }
    // Authenticated but undecodable means we sealed something we cannot read back: treat as
    // malformed rather than panic.
    let application = payload::decode(header.tenant, &body).map_err(|_| OpenError::Malformed)?;
    Ok(Opened {
        header,
        application,
    })
}

/// Parses, verifies and decrypts a scanned text with keys from `keys`.
pub fn open(
    keys: &dyn KeySource,
    counter_tenant: &TenantId,
    text: &str,
    now: Timestamp,
) -> Result<Opened, OpenError> {
    let code = parse(text)?;
    if code.header.tenant != *counter_tenant {
        return Err(OpenError::OtherTenant {
            tenant: code.header.tenant,
        });
    }
    let state = keys.lookup(&code.header.tenant, code.header.kid);
    open_sealed(&code, state, counter_tenant, now)
}
