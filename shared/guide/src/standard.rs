//! The standard rule set (標準ルールセット), shipped as data in `rules/standard.json`
//! and cited in `docs/guide.md`. Municipalities start from a copy and edit the
//! counters, what to bring and the procedures marked `municipality_specific`.

use crate::model::Guide;

/// The standard rule set as JSON, as stored.
pub const STANDARD_JSON: &str = include_str!("../rules/standard.json");

/// The standard rule set, parsed.
///
/// The data is compiled in and a test parses and checks it (example cases
/// included), so a failure here is a build defect, not an input error.
pub fn standard() -> Guide {
    Guide::from_json(STANDARD_JSON).expect("rules/standard.json is checked by the tests")
}
