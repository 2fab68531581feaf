//! Versions on the wire: every mutable record's version is its `ETag` (`"3"`), and a change
//! names the version it read in `If-Match`.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_domain::error::{FieldError, PROBLEM_TYPE_BASE, Problem};
use serde::Serialize;

use crate::ApiError;

/// A JSON answer carrying `version` as its `ETag`.
pub fn with_etag<T: Serialize>(status: StatusCode, version: u64, body: T) -> Response {
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// The version named in `If-Match` (`3`, `"3"` or `W/"3"`); `None` when the header is absent,
/// a 422 on `if-match` when it is not a version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "if-match",
                "invalid_format",
                "If-Match に読み込んだ版番号を指定してください。",
            )])
        })
}

/// The version named in `If-Match`, for a change that must name the version it read:
/// 428 Precondition Required (RFC 6585) when the header is missing, 422 when it is not a
/// version. Every function answers a missing `If-Match` the same way.
pub fn required_if_match(headers: &HeaderMap) -> Result<u64, ApiError> {
    if_match(headers)?.ok_or_else(|| {
        ApiError::new(Problem {
            errors: vec![FieldError::new(
                "if-match",
                "required",
                "If-Match に読み込んだ版番号を指定してください。",
            )],
            ..Problem::new(
                format!("{PROBLEM_TYPE_BASE}precondition-required"),
                "読み込み直してから操作してください。",
                428,
            )
            .with_detail("読み込んだときの ETag を If-Match ヘッダーに指定してください。")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_if_match() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
            if_match(&h)
        };
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        for (v, n) in [("3", 3), ("\"3\"", 3), ("W/\"12\"", 12), (" \"7\" ", 7)] {
            assert_eq!(with(v).unwrap(), Some(n), "{v}");
        }
        for bad in ["", "x", "\"-1\"", "*"] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_if_match_is_428_and_a_bad_one_422() {
        let e = required_if_match(&HeaderMap::new()).unwrap_err();
        assert_eq!(e.problem.status, 428);
        assert_eq!(e.problem.errors[0].field, "if-match");
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static("x"));
        assert_eq!(required_if_match(&h).unwrap_err().problem.status, 422);
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"4\""));
        assert_eq!(required_if_match(&h).unwrap(), 4);
    }
}
