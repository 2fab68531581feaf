//! Arbitrary bytes as a form definition: `parse_definition` and `validate_definition`
//! must never panic; what parses must serialize and parse back to itself, and the
//! visibility engine must terminate on it (cycles, duplicate ids and all).
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi_domain::Date;
use madoguchi_domain::form::{
    Answers, check_answers, parse_definition, validate_definition, visible_items,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match parse_definition(&v) {
        Err(errors) => assert!(!errors.is_empty()),
        Ok(def) => {
            let _ = validate_definition(&def);
            let back = serde_json::to_value(&def).expect("serializes");
            assert_eq!(parse_definition(&back).expect("round trip"), def);
            let empty = Answers::new();
            let _ = visible_items(&def, &empty);
            let _ = check_answers(&def, &empty, Date::new(2026, 5, 1).unwrap());
        }
    }
});
