//! Arbitrary answers (and optionally an arbitrary definition) through the submission
//! validator: `check_answers`, `check_draft`, `visible_items` must never panic, and
//! their results must keep their promises.
//!
//! Input: `<definition JSON>\n\n<answers JSON>` to fuzz both, or just `<answers JSON>`
//! against the complete example of docs/forms.md. Answers that are not a JSON object
//! are given to every input field at once, to reach each type's checks quickly.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use madoguchi_domain::Date;
use madoguchi_domain::form::{
    Answers, FormDefinition, check_answers, check_draft, parse_definition, visible_items,
};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/forms.md");

fn rich() -> &'static FormDefinition {
    static DEF: OnceLock<FormDefinition> = OnceLock::new();
    DEF.get_or_init(|| {
        let fence = "```json form-definition\n";
        let start = DOC.find(fence).expect("example") + fence.len();
        let end = start + DOC[start..].find("\n```").expect("fence");
        parse_definition(&serde_json::from_str(&DOC[start..end]).expect("json")).expect("valid")
    })
}

fn answers_for(def: &FormDefinition, v: Value) -> Answers {
    match v {
        Value::Object(m) => m,
        other => def
            .inputs()
            .map(|f| (f.id.clone(), other.clone()))
            .collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (custom, answer_bytes) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) if data.first() == Some(&b'{') => (Some(&data[..i]), &data[i + 2..]),
        _ => (None, data),
    };
    let owned;
    let def = match custom {
        Some(bytes) => {
            let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
                return;
            };
            let Ok(d) = parse_definition(&v) else {
                return;
            };
            owned = d;
            &owned
        }
        None => rich(),
    };
    let Ok(v) = serde_json::from_slice::<Value>(answer_bytes) else {
        return;
    };
    let answers = answers_for(def, v);
    let today = Date::new(2026, 5, 1).unwrap();

    let visible = visible_items(def, &answers);
    let checked = check_answers(def, &answers, today);
    assert_eq!(checked.values.len(), checked.summary.len());
    for id in checked.values.keys() {
        assert!(visible.contains(id), "value of a hidden field");
        assert!(def.field(id).is_some_and(|f| f.kind.is_input()));
    }
    for e in &checked.errors {
        assert!(!e.code.is_empty() && !e.message.is_empty());
    }
    // A My Number never reaches a message or the summary unmasked.
    if custom.is_none() {
        for id in def.sensitive_fields() {
            let Some(Value::String(raw)) = answers.get(id) else {
                continue;
            };
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 6 {
                for e in &checked.errors {
                    assert!(!e.message.contains(&digits));
                }
                for row in &checked.summary {
                    assert!(row.field != id || !row.display.contains(&digits[..6]));
                }
            }
        }
    }
    // Clean answers are a fixpoint of normalisation.
    if checked.errors.is_empty() {
        let again: Answers = checked.values.clone().into_iter().collect();
        let re = check_answers(def, &again, today);
        assert!(re.errors.is_empty());
        assert_eq!(re.values, checked.values);
    }
    let _ = check_draft(def, &answers);
});
