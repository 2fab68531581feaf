//! Domain errors and their HTTP form, `application/problem+json` (RFC 9457).
//!
//! Rules that hold for every error here:
//! - `title` and field `message`s are Japanese, because citizens read them.
//! - No message ever contains the offending input: it may be personal data
//!   (個人情報), and error texts end up in logs and browser consoles.
//! - `type` URIs and field `code`s are stable: clients branch on them, not on text.
//!
//! Status codes: malformed input that we cannot even read (bad JSON, a path segment
//! that is not an id or a tenant code) is **400**; well-formed input that breaks a
//! rule on a field (a date outside an era, a negative amount, a missing required
//! answer) is **422**, so the client knows a per-field correction will fix it.

use serde::{Deserialize, Serialize};

/// Media type of a [`Problem`] body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of every problem `type` URI. The URIs identify, they are not fetched.
pub const PROBLEM_TYPE_BASE: &str = "https://madoguchi.jp/problems/";

/// Stable problem `type` URIs.
pub mod problem_types {
    pub const VALIDATION: &str = "https://madoguchi.jp/problems/validation";
    pub const MALFORMED: &str = "https://madoguchi.jp/problems/malformed";
    pub const INVALID_TENANT: &str = "https://madoguchi.jp/problems/invalid-tenant";
    pub const INVALID_ID: &str = "https://madoguchi.jp/problems/invalid-id";
    pub const UNAUTHORIZED: &str = "https://madoguchi.jp/problems/unauthorized";
    pub const FORBIDDEN: &str = "https://madoguchi.jp/problems/forbidden";
    pub const NOT_FOUND: &str = "https://madoguchi.jp/problems/not-found";
    pub const CONFLICT: &str = "https://madoguchi.jp/problems/conflict";
    pub const INTERNAL: &str = "https://madoguchi.jp/problems/internal";
}

/// One field-level error inside a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `"birth_date"` or `"members[0].name"`.
    pub field: String,
    /// Stable machine code, e.g. `"date.out_of_era"`.
    pub code: String,
    /// Japanese explanation for the citizen. Never contains the submitted value.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The common "required field is empty" error.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new(field, "required", "入力してください。")
    }
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(type_uri: impl Into<String>, title: impl Into<String>, status: u16) -> Self {
        Self {
            type_uri: type_uri.into(),
            title: title.into(),
            status,
            detail: None,
            errors: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The 500 answer for failures outside the domain (storage, KMS, ...). It says
    /// nothing about the cause: that belongs in the (personal-data-free) logs.
    pub fn internal() -> Self {
        Self::new(
            problem_types::INTERNAL,
            "システムエラーが発生しました。時間をおいて再度お試しください。",
            500,
        )
    }
}

/// Errors of the domain layer. `Display` texts are for logs: English, no input values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Well-formed input breaking rules on one or more fields (422).
    #[error("validation failed on {} field(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// A single value failed to parse or validate, before we know which field it
    /// belongs to. Attach it with [`DomainError::for_field`]; on its own it is a 422.
    #[error("invalid value: {code}")]
    InvalidValue {
        code: &'static str,
        message: &'static str,
    },
    /// Input we cannot read at all, e.g. a body that is not JSON (400).
    /// `detail` is our own Japanese text, never an echo of the input.
    #[error("malformed request")]
    Malformed { detail: String },
    /// A 全国地方公共団体コード that is not 6 digits or fails its check digit (400).
    #[error("invalid tenant code")]
    InvalidTenant,
    /// An id that is not a UUID version 7 in hyphenated form (400).
    #[error("invalid id")]
    InvalidId,
    /// No or bad credentials (401).
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated but not allowed (403).
    #[error("forbidden")]
    Forbidden,
    /// The resource does not exist *for this tenant and actor* (404).
    #[error("not found")]
    NotFound,
    /// A conditional write lost (stale version, duplicate key) (409).
    #[error("conflict")]
    Conflict { detail: String },
}

impl DomainError {
    /// Turns a value-level error (from a parser in this crate) into a field error on
    /// `field`, so handlers can write `parse_japanese_date(s).map_err(|e| e.for_field("birth_date"))`.
    /// Other variants are returned unchanged.
    pub fn for_field(self, field: &str) -> DomainError {
        match self.field_error(field) {
            Some(fe) => DomainError::Validation(vec![fe]),
            None => self,
        }
    }

    /// The [`FieldError`] this error means when it concerns `field`, for errors that
    /// describe a single value; `None` for the others. Handlers collecting several
    /// field errors into one [`DomainError::Validation`] use this.
    pub fn field_error(&self, field: &str) -> Option<FieldError> {
        let (code, message) = match self {
            DomainError::InvalidValue { code, message } => (*code, *message),
            DomainError::InvalidTenant => ("tenant.invalid", TENANT_MESSAGE),
            DomainError::InvalidId => ("id.invalid", ID_MESSAGE),
            _ => return None,
        };
        Some(FieldError::new(field, code, message))
    }

    /// The problem+json body and status for this error.
    pub fn to_problem(&self) -> Problem {
        use problem_types as t;
        match self {
            DomainError::Validation(errors) => Problem {
                errors: errors.clone(),
                ..Problem::new(t::VALIDATION, "入力内容に誤りがあります。", 422)
            },
            DomainError::InvalidValue { message, .. } => {
                Problem::new(t::VALIDATION, "入力内容に誤りがあります。", 422).with_detail(*message)
            }
            DomainError::Malformed { detail } => {
                Problem::new(t::MALFORMED, "リクエストの形式が正しくありません。", 400)
                    .with_detail(detail.clone())
            }
            DomainError::InvalidTenant => Problem::new(t::INVALID_TENANT, TENANT_MESSAGE, 400),
            DomainError::InvalidId => Problem::new(t::INVALID_ID, ID_MESSAGE, 400),
            DomainError::Unauthorized => Problem::new(
                t::UNAUTHORIZED,
                "ログインが必要です。再度ログインしてください。",
                401,
            ),
            DomainError::Forbidden => {
                Problem::new(t::FORBIDDEN, "この操作を行う権限がありません。", 403)
            }
            DomainError::NotFound => {
                Problem::new(t::NOT_FOUND, "お探しの情報が見つかりません。", 404)
            }
            DomainError::Conflict { detail } => Problem::new(
                t::CONFLICT,
                "他の操作と競合しました。最新の内容を確認してやり直してください。",
                409,
            )
            .with_detail(detail.clone()),
        }
    }

    /// HTTP status of [`Self::to_problem`], without building the body.
    pub fn status(&self) -> u16 {
        match self {
            DomainError::Validation(_) | DomainError::InvalidValue { .. } => 422,
            DomainError::Malformed { .. } | DomainError::InvalidTenant | DomainError::InvalidId => {
                400
            }
            DomainError::Unauthorized => 401,
            DomainError::Forbidden => 403,
            DomainError::NotFound => 404,
            DomainError::Conflict { .. } => 409,
        }
    }
}

const TENANT_MESSAGE: &str = "地方公共団体コードが正しくありません。";
const ID_MESSAGE: &str = "IDの形式が正しくありません。";

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        e.to_problem()
    }
}

impl From<&DomainError> for Problem {
    fn from(e: &DomainError) -> Self {
        e.to_problem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_serializes_with_rfc_names() {
        let p = DomainError::Validation(vec![FieldError::required("name")]).to_problem();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "https://madoguchi.jp/problems/validation",
                "title": "入力内容に誤りがあります。",
                "status": 422,
                "errors": [{"field": "name", "code": "required", "message": "入力してください。"}]
            })
        );
    }

    #[test]
    fn empty_optional_members_are_omitted() {
        let v = serde_json::to_value(DomainError::NotFound.to_problem()).unwrap();
        let obj = v.as_object().unwrap();
        assert!(!obj.contains_key("detail"));
        assert!(!obj.contains_key("errors"));
        assert_eq!(obj["status"], 404);
    }

    #[test]
    fn statuses() {
        let cases = [
            (DomainError::Validation(vec![]), 422),
            (
                DomainError::InvalidValue {
                    code: "x",
                    message: "x",
                },
                422,
            ),
            (
                DomainError::Malformed {
                    detail: "JSONとして読み取れません。".into(),
                },
                400,
            ),
            (DomainError::InvalidTenant, 400),
            (DomainError::InvalidId, 400),
            (DomainError::Unauthorized, 401),
            (DomainError::Forbidden, 403),
            (DomainError::NotFound, 404),
            (
                DomainError::Conflict {
                    detail: "版が古くなっています。".into(),
                },
                409,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status, "{e:?}");
            let p: Problem = e.into();
            assert_eq!(p.status, status);
            assert!(p.type_uri.starts_with(PROBLEM_TYPE_BASE));
            assert!(!p.title.is_ascii(), "title must be Japanese: {}", p.title);
        }
    }

    #[test]
    fn for_field_turns_value_errors_into_validation() {
        let e = DomainError::InvalidTenant.for_field("tenant");
        let p = e.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "tenant");
        assert_eq!(p.errors[0].code, "tenant.invalid");
        // Non-value errors pass through.
        assert_eq!(DomainError::NotFound.for_field("x"), DomainError::NotFound);
    }

    #[test]
    fn problem_round_trips() {
        let p = DomainError::Conflict {
            detail: "版が古くなっています。".into(),
        }
        .to_problem();
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Problem>(&s).unwrap(), p);
        assert_eq!(Problem::internal().status, 500);
    }
}
