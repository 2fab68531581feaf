//! The `qr` function: the pre-application (事前申請) and its QR code (docs/qr.md).
//!
//! - Citizens ([`preapp`]), no account needed: open an entry (an id and a one-time entry
//!   token, only its SHA-256 stored), fill in the household for the 住民異動届 (checked field
//!   by field, the tenant-side address against the postal data), get the sealed QR. The
//!   entry is stored envelope-encrypted, expires after a period of inactivity and is deleted
//!   when the QR is issued.
//! - The counter ([`counter`]): staff open a scanned text or a photo of a code, every
//!   opening audited before the answer; the tenant administrator lists, rotates and retires
//!   the tenant's QR keys.
//! - Entry format and its checks: [`entry`].

pub mod counter;
pub mod entry;
pub mod preapp;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::SignedDuration;
use madoguchi_audit::AuditLog;
use madoguchi_domain::error::Problem;
use madoguchi_fieldcrypt::FieldCipher;
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_ports::{Clock, IdGen, ItemStore, Keys};
use madoguchi_qrseal::QrKeyring;
use utoipa::OpenApi;

/// Settings that differ per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrSettings {
    /// An entry not written to for this long is gone (the inactivity timeout).
    pub entry_ttl: SignedDuration,
    /// How long an issued code opens at the counter.
    pub code_validity: SignedDuration,
}

impl Default for QrSettings {
    /// 30 minutes of inactivity; codes valid 14 days (time to book a visit, short enough
    /// that a retired key's codes have all expired a fortnight after rotation).
    fn default() -> Self {
        Self {
            entry_ttl: SignedDuration::from_mins(30),
            code_validity: SignedDuration::from_hours(14 * 24),
        }
    }
}

/// Environment variable: inactivity timeout of an entry, in minutes.
pub const ENTRY_TTL_ENV: &str = "MADOGUCHI_QR_ENTRY_TTL_MINUTES";
/// Environment variable: validity of an issued code, in days.
pub const CODE_VALIDITY_ENV: &str = "MADOGUCHI_QR_CODE_VALIDITY_DAYS";

impl QrSettings {
    /// The defaults, overridden by [`ENTRY_TTL_ENV`] and [`CODE_VALIDITY_ENV`] when set.
    /// A value that is not a positive whole number in range is an error: a typo must not
    /// silently keep personal data longer than configured.
    pub fn from_vars(mut get: impl FnMut(&str) -> Option<String>) -> Result<QrSettings, String> {
        let mut settings = QrSettings::default();
        let read = |name: &str, value: Option<String>, max: i64| -> Result<Option<i64>, String> {
            match value {
                None => Ok(None),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(format!("{name} must be a whole number from 1 to {max}")),
                },
            }
        };
        if let Some(m) = read(ENTRY_TTL_ENV, get(ENTRY_TTL_ENV), 24 * 60)? {
            settings.entry_ttl = SignedDuration::from_mins(m);
        }
        if let Some(d) = read(CODE_VALIDITY_ENV, get(CODE_VALIDITY_ENV), 366)? {
            settings.code_validity = SignedDuration::from_hours(d * 24);
        }
        Ok(settings)
    }

    pub fn from_env() -> Result<QrSettings, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

/// Ports and settings of the qr function.
#[derive(Clone)]
pub struct QrState {
    pub items: Arc<dyn ItemStore>,
    pub keys: Arc<dyn Keys>,
    /// The tenant QR keys over `items` and `keys`, with its unwrapped-key cache: one per
    /// process (built by [`QrState::new`]).
    pub keyring: Arc<QrKeyring>,
    /// Seals the entered household before it is stored.
    pub cipher: Arc<FieldCipher>,
    pub audit: AuditLog,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub settings: QrSettings,
}

impl QrState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        items: Arc<dyn ItemStore>,
        keys: Arc<dyn Keys>,
        cipher: Arc<FieldCipher>,
        audit: AuditLog,
        auth: Arc<Authenticator>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        settings: QrSettings,
    ) -> Self {
        let keyring = Arc::new(QrKeyring::new(items.clone(), keys.clone(), clock.clone()));
        Self {
            items,
            keys,
            keyring,
            cipher,
            audit,
            auth,
            clock,
            ids,
            settings,
        }
    }
}

impl FromRef<QrState> for Arc<Authenticator> {
    fn from_ref(s: &QrState) -> Self {
        s.auth.clone()
    }
}

/// JSON bodies: an entry of 30 members with the longest names is about 20 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: QrState) -> Router {
    let t = "/v1/tenants/{tenant}";
    let bounded = Router::new()
        .route(&format!("{t}/pre-applications"), post(preapp::create))
        .route(
            &format!("{t}/pre-applications/{{id}}"),
            get(preapp::read).put(preapp::update),
        )
        .route(
            &format!("{t}/pre-applications/{{id}}/qr"),
            post(preapp::issue),
        )
        .route(&format!("{t}/postal-codes/{{code}}"), get(preapp::postal))
        .route(&format!("{t}/staff/qr/keys"), get(counter::list_keys))
        .route(&format!("{t}/staff/qr/keys/rotate"), post(counter::rotate))
        .route(
            &format!("{t}/staff/qr/keys/{{kid}}/retire"),
            post(counter::retire),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // The opening route reads its body itself, bounded by `counter::MAX_OPEN_BODY_BYTES`
    // (a photo of up to 5 MB in a multipart form).
    let open = Router::new().route(&format!("{t}/staff/qr/open"), post(counter::open));
    bounded.merge(open).with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        preapp::create, preapp::read, preapp::update, preapp::issue, preapp::postal,
        counter::open, counter::list_keys, counter::rotate, counter::retire,
    ),
    components(schemas(
        preapp::CreateBody, preapp::Created, preapp::PreApplicationView, preapp::Issued,
        preapp::PostalAnswer, preapp::PostalEntryView,
        entry::Entry, entry::AddressEntry, entry::PersonEntry,
        counter::OpenText, counter::OpenedView, counter::PersonView, counter::KeyView,
        counter::KeyList, counter::KeyChanged,
    )),
    tags((name = "qr", description = "Pre-application (事前申請) QR: citizens' entries, the sealed code, opening at the counter, QR keys"))
)]
struct QrApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    QrApi::openapi()
}

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

/// Personal data: no cache on the way keeps a copy.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_every_route_and_problem() {
        let doc: serde_json::Value = serde_json::from_str(&openapi().to_json().unwrap()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, ops) in paths {
            assert!(path.starts_with("/v1/tenants/{tenant}/"), "{path}");
            for (method, op) in ops.as_object().unwrap() {
                operations += 1;
                for (status, res) in op["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            res["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status} is not documented as problem+json"
                        );
                    }
                }
            }
        }
        assert_eq!(operations, 9);
        let open = &paths["/v1/tenants/{tenant}/staff/qr/open"]["post"]["requestBody"]["content"];
        assert!(open["application/json"].is_object() && open["multipart/form-data"].is_object());
    }

    #[test]
    fn settings_from_the_environment() {
        let none = QrSettings::from_vars(|_| None).unwrap();
        assert_eq!(none, QrSettings::default());
        assert_eq!(none.entry_ttl, SignedDuration::from_mins(30));
        assert_eq!(none.code_validity, SignedDuration::from_hours(14 * 24));
        let set = QrSettings::from_vars(|name| {
            Some(if name == ENTRY_TTL_ENV { "45" } else { "7" }.to_owned())
        })
        .unwrap();
        assert_eq!(set.entry_ttl, SignedDuration::from_mins(45));
        assert_eq!(set.code_validity, SignedDuration::from_hours(7 * 24));
        for bad in ["0", "-5", "thirty", "", "100000"] {
            assert!(
                QrSettings::from_vars(|_| Some(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
    }
}
