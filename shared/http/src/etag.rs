//! Versions on the wire: every mutable record's version is its `ETag` (`"3"`), and a change
//! names the version it read in `If-Match`.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_domain::error::FieldError;
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
}
