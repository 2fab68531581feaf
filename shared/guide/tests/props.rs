//! Properties: nothing a client sends makes the engine or the code reader panic,
//! and answering in order moves progress up to 100.

use madoguchi_guide::{Guide, GuideCode, QuestionKind, check, evaluate, standard};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("2026-06-01"),
            Just("令和8年6月1日"),
            Just("head"),
            Just("national"),
            Just("public"),
            Just("1956-03-10")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("birth_date".to_string()),
                        Just("relationship".to_string()),
                        Just("insurance".to_string()),
                        Just("nationality".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON shaped like rules: the operator keys with arbitrary values.
fn rule_like() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("all"),
        Just("any"),
        Just("not"),
        Just("question"),
        Just("eq"),
        Just("in"),
        Just("has"),
        Just("gte"),
        Just("lte"),
        Just("answered"),
        Just("any_member"),
        Just("count_members"),
        Just("of"),
        Just("age"),
        Just("relationship"),
        Just("insurance"),
        Just("nationality"),
        Just("basis"),
        Just("on"),
    ];
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (0u64..200).prop_map(|n| json!(n)),
        prop_oneof![
            Just("d"),
            Just("h"),
            Just("c"),
            Just("legal"),
            Just("previous_march_31"),
            Just("head"),
            Just("x")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 1..3).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

const EVENTS: [&str; 9] = [
    "tennyu",
    "tenkyo",
    "tenshutsu",
    "shussei",
    "shibou",
    "konin",
    "rikon",
    "shimei_henko",
    "shomei",
];
const QUESTION_IDS: [&str; 16] = [
    "move_date",
    "household",
    "mynumber_card",
    "school",
    "care_certified",
    "pension_change",
    "seal",
    "birth_date",
    "insurance",
    "known_date",
    "deceased",
    "certificates",
    "move",
    "name_change",
    "kind",
    "decided_date",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn evaluate_never_panics_on_arbitrary_answers(
        event in 0usize..9,
        raw in any_json(),
        keyed in prop::collection::vec((0usize..16, any_json()), 0..8),
    ) {
        let guide = standard();
        let _ = evaluate(&guide, EVENTS[event], &raw);
        let answers: Map<String, Value> =
            keyed.into_iter().map(|(k, v)| (QUESTION_IDS[k].to_string(), v)).collect();
        let out = evaluate(&guide, EVENTS[event], &Value::Object(answers)).unwrap();
        prop_assert!(out.progress <= 100);
        // Nothing left to ask exactly when progress is 100 (the standard set has no
        // forward references, so no question can stay "not known yet").
        prop_assert_eq!(out.progress == 100, out.next_question.is_none());
    }

    #[test]
    fn parsing_checking_and_evaluating_arbitrary_rules_never_panics(
        show_if in rule_like(),
        when in rule_like(),
        answers in any_json(),
    ) {
        let doc = json!({
            "schema": 1, "name": "t",
            "procedures": [{ "id": "p", "name": "p", "department": "d", "counter": "c" }],
            "events": [{ "id": "e", "name": "e", "date_question": "d",
                "questions": [
                    { "id": "d", "text": "d", "kind": "date" },
                    { "id": "h", "text": "h", "kind": "household" },
                    { "id": "c", "text": "c", "kind": "multiple", "show_if": show_if,
                      "options": [{ "value": "x", "label": "x" }] }
                ],
                "rules": [{ "procedure": "p", "when": when }]
            }],
            "cases": [{ "name": "n", "event": "e", "answers": answers, "expect": ["p"] }]
        });
        if let Ok(guide) = Guide::from_json(&doc.to_string()) {
            let _ = check(&guide);
            let _ = evaluate(&guide, "e", &guide.cases[0].answers);
            // What was read is written back the same way.
            let again = Guide::from_json(&serde_json::to_string(&guide).unwrap()).unwrap();
            prop_assert_eq!(again, guide);
        }
    }

    #[test]
    fn decode_never_panics(s in ".{0,200}", t in "(MG1|mg1):[0-9]{0,7}:[0-9]{0,4}:[A-Z_-]{0,10}:[A-Z0-9+-]{0,40}:[0-9A-F]{0,5}") {
        let _ = GuideCode::decode(&s);
        let _ = GuideCode::decode(&t);
    }

    #[test]
    fn answering_in_order_only_raises_progress_to_100(
        event in 0usize..9,
        seed in prop::collection::vec(any::<u32>(), 40),
        births in prop::collection::vec((1930i16..2026, 1i8..=12, 1i8..=28), 1..5),
    ) {
        let guide = standard();
        let event_id = EVENTS[event];
        let mut answers = json!({});
        let mut last = 0u8;
        let mut pick = seed.into_iter().cycle();
        for _ in 0..30 {
            let out = evaluate(&guide, event_id, &answers).unwrap();
            prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
            prop_assert!(out.progress >= last, "{} < {}", out.progress, last);
            last = out.progress;
            let Some(q) = out.next_question else {
                prop_assert!(out.complete);
                prop_assert_eq!(out.progress, 100);
                return Ok(());
            };
            prop_assert!(out.progress < 100);
            let n = pick.next().unwrap() as usize;
            let value = match q.kind {
                QuestionKind::YesNo => json!(n.is_multiple_of(2)),
                QuestionKind::Single => json!(q.options[n % q.options.len()].value),
                QuestionKind::Multiple => {
                    json!(q.options.iter().enumerate().filter(|(i, _)| n >> i & 1 == 1).map(|(_, o)| &o.value).collect::<Vec<_>>())
                }
                QuestionKind::Date => json!("2026-06-01"),
                QuestionKind::Number => json!(n % 10),
                QuestionKind::Household => {
                    let rel = ["head", "spouse", "child", "parent", "grandchild", "other"];
                    let ins = ["employee", "national", "late_elderly", "none"];
                    json!(births.iter().enumerate().map(|(i, (y, m, d))| json!({
                        "birth_date": format!("{y:04}-{m:02}-{d:02}"),
                        "relationship": rel[(n + i) % rel.len()],
                        "nationality": if (n + i).is_multiple_of(3) { "foreign" } else { "japanese" },
                        "insurance": ins[(n / 7 + i) % ins.len()],
                    })).collect::<Vec<_>>())
                }
            };
            answers[q.id.as_str()] = value;
        }
        prop_assert!(false, "did not finish");
    }

    #[test]
    fn codes_round_trip(
        version in any::<u32>(),
        ids in prop::collection::btree_set("[a-z][a-z0-9_]{0,15}", 0..12),
        event in "[a-z][a-z0-9_]{0,15}",
    ) {
        let code = GuideCode {
            tenant: madoguchi_domain::TenantId::from_five_digits("13101").unwrap(),
            version,
            event,
            procedures: ids.into_iter().collect(),
        };
        prop_assert_eq!(GuideCode::decode(&code.encode()).unwrap(), code);
    }
}
