//! The canonical JSON form records are hashed in, and number normalisation.
//!
//! Canonical form: JSON with no whitespace, object keys sorted by their UTF-8 bytes at every
//! level, strings escaped as serde_json escapes them (`"` `\` and control characters only;
//! everything else as UTF-8), numbers as serde_json writes them. The keys are sorted here,
//! not by relying on `serde_json::Map` being a `BTreeMap`, so that a crate in the build
//! turning on serde_json's `preserve_order` feature cannot change a hash.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

pub(crate) fn to_canonical_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Integral floats become integers (`2.0` → `2`): DynamoDB normalises numbers, so `2.0`
/// would come back as `2` and no longer hash the same.
pub(crate) fn normalize_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(normalize);
}

fn normalize(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(int) = n.as_f64().and_then(integral) {
                *n = int;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(map) => normalize_map(map),
        _ => {}
    }
}

fn integral(f: f64) -> Option<Number> {
    const I64_LOW: f64 = -9_223_372_036_854_775_808.0; // -2^63, exact
    const I64_END: f64 = 9_223_372_036_854_775_808.0; // 2^63, exact
    const U64_END: f64 = 18_446_744_073_709_551_616.0; // 2^64, exact
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    if (I64_LOW..I64_END).contains(&f) {
        Some(Number::from(f as i64))
    } else if (0.0..U64_END).contains(&f) {
        Some(Number::from(f as u64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_at_every_level_no_whitespace() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": null, "x": true}], "é": "日本", "A": "\n\"\\\u{1}"}});
        let s = String::from_utf8(to_canonical_vec(&v)).unwrap();
        assert_eq!(
            s,
            r#"{"a":{"A":"\n\"\\\u0001","z":[3,{"x":true,"y":null}],"é":"日本"},"b":1}"#
        );
    }

    #[test]
    fn integral_floats_become_integers() {
        let mut m =
            json!({"a": 2.0, "b": [-0.0, 1.5, 1e18, 1.8e19, 1e300], "c": {"d": -3.0}, "e": 7})
                .as_object()
                .unwrap()
                .clone();
        normalize_map(&mut m);
        assert_eq!(
            String::from_utf8(to_canonical_vec(&Value::Object(m))).unwrap(),
            r#"{"a":2,"b":[0,1.5,1000000000000000000,18000000000000000000,1e+300],"c":{"d":-3},"e":7}"#
        );
    }
}
