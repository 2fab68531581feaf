//! `serde_json::Value` <-> DynamoDB `AttributeValue`.
//!
//! | JSON | DynamoDB |
//! |---|---|
//! | `null` | `NULL` |
//! | `true` / `false` | `BOOL` |
//! | number | `N` (the number's JSON text) |
//! | string | `S` (empty strings are allowed outside keys) |
//! | array | `L` |
//! | object | `M` |
//!
//! DynamoDB normalises numbers (`1.0` comes back as `1`, `1e3` as `1000`), so a round trip
//! keeps the value but not always its spelling. DynamoDB numbers hold 38 significant digits,
//! more than `f64` or `i64`/`u64`. Sets and binary values are never written by this crate
//! and are refused when read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

/// Why an attribute could not be read back as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrError(pub String);

impl std::fmt::Display for AttrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AttrError {}

pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(to_attr_map(map)),
    }
}

pub fn to_attr_map(map: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

pub fn from_attr(value: &AttributeValue) -> Result<Value, AttrError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attr).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(from_attr_map(map)?),
        AttributeValue::B(_) | AttributeValue::Bs(_) => {
            return Err(AttrError("binary attribute in a JSON document".into()));
        }
        AttributeValue::Ss(_) | AttributeValue::Ns(_) => {
            return Err(AttrError("set attribute in a JSON document".into()));
        }
        _ => return Err(AttrError("unknown attribute type".into())),
    })
}

pub fn from_attr_map(
    map: &HashMap<String, AttributeValue>,
) -> Result<Map<String, Value>, AttrError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
        .collect()
}

/// Integers stay integers (`i64`, then `u64`); anything else becomes the nearest `f64`.
pub fn parse_number(n: &str) -> Result<Number, AttrError> {
    let bad = || AttrError("number attribute out of JSON range".into());
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Number::from(i));
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(Number::from(u));
    }
    let f: f64 = n.parse().map_err(|_| bad())?;
    Number::from_f64(f).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_json_type() {
        let v = json!({
            "null": null,
            "t": true,
            "f": false,
            "int": -42,
            "big": u64::MAX,
            "float": 1.5,
            "tiny": 1e-300,
            "empty": "",
            "ja": "申請者 山田太郎",
            "list": [1, "two", [3], {"four": 4}],
            "nested": {"a": {"b": {"c": []}}},
            "emptyobj": {}
        });
        let attr = to_attr(&v);
        assert_eq!(from_attr(&attr).unwrap(), v);
    }

    #[test]
    fn numbers_are_n_strings() {
        assert_eq!(to_attr(&json!(7)), AttributeValue::N("7".into()));
        assert_eq!(to_attr(&json!(-0.25)), AttributeValue::N("-0.25".into()));
        assert_eq!(
            to_attr(&json!(i64::MIN)),
            AttributeValue::N(i64::MIN.to_string())
        );
    }

    #[test]
    fn maps_and_lists_use_m_and_l() {
        let attr = to_attr(&json!({"a": [null, true]}));
        let AttributeValue::M(m) = attr else {
            panic!("not a map")
        };
        assert_eq!(
            m["a"],
            AttributeValue::L(vec![AttributeValue::Null(true), AttributeValue::Bool(true)])
        );
    }

    #[test]
    fn normalised_numbers_read_back() {
        // DynamoDB answers with its own spelling of a number.
        assert_eq!(
            from_attr(&AttributeValue::N("1000".into())).unwrap(),
            json!(1000)
        );
        assert_eq!(
            from_attr(&AttributeValue::N("1E+3".into())).unwrap(),
            json!(1000.0)
        );
        assert_eq!(
            from_attr(&AttributeValue::N("0.1".into())).unwrap(),
            json!(0.1)
        );
        assert_eq!(
            from_attr(&AttributeValue::N("18446744073709551615".into())).unwrap(),
            json!(u64::MAX)
        );
        // 38 digits: beyond u64, read as the nearest float.
        let huge = from_attr(&AttributeValue::N("1".repeat(38))).unwrap();
        assert!(huge.as_f64().unwrap() > 1e37);
    }

    #[test]
    fn refuses_sets_binary_and_garbage() {
        assert!(from_attr(&AttributeValue::Ss(vec!["a".into()])).is_err());
        assert!(from_attr(&AttributeValue::B(aws_smithy_types::Blob::new(vec![1]))).is_err());
        assert!(from_attr(&AttributeValue::N("abc".into())).is_err());
        assert!(from_attr(&AttributeValue::N("1e999".into())).is_err());
    }
}
