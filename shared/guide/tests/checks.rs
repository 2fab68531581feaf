//! Saving a guide: every check error kind, with its path and a Japanese message,
//! and example cases that block the save.

use madoguchi_guide::{CheckCode, CheckError, Guide, check, parse_and_check, standard};
use serde_json::{Value, json};

/// A small valid guide; tests break one thing at a time.
fn base() -> Value {
    json!({
        "schema": 1, "name": "テスト",
        "procedures": [
            { "id": "p1", "name": "手続1", "department": "市民課", "counter": "1番" },
            { "id": "p2", "name": "手続2", "department": "保険年金課", "counter": "2番" }
        ],
        "events": [{
            "id": "tennyu", "name": "転入", "date_question": "move_date",
            "questions": [
                { "id": "move_date", "text": "異動日", "kind": "date" },
                { "id": "household", "text": "世帯", "kind": "household" },
                { "id": "kind", "text": "種類", "kind": "single",
                  "options": [ { "value": "a", "label": "A" }, { "value": "b", "label": "B" } ] },
                { "id": "count", "text": "人数", "kind": "number" }
            ],
            "rules": [
                { "procedure": "p1", "deadline": { "days": 14, "text": "14日以内" } },
                { "procedure": "p2", "when": { "any_member": { "age": { "gte": 65 } } } }
            ]
        }],
        "cases": [{
            "name": "65歳", "event": "tennyu",
            "answers": {
                "move_date": "2026-06-01",
                "household": [ { "birth_date": "1960-01-01", "relationship": "head", "nationality": "japanese", "insurance": "national" } ],
                "kind": "a", "count": 1
            },
            "expect": ["p1", "p2"]
        }]
    })
}

fn errors(v: &Value) -> Vec<CheckError> {
    let guide: Guide = Guide::from_json(&v.to_string()).expect("parses");
    check(&guide).err().unwrap_or_default()
}

fn with_show_if(question: usize, show_if: Value) -> Value {
    let mut v = base();
    v["events"][0]["questions"][question]["show_if"] = show_if;
    v
}

fn only(v: &Value, code: CheckCode) -> CheckError {
    let errs = errors(v);
    let found: Vec<&CheckError> = errs.iter().filter(|e| e.code == code).collect();
    assert!(!found.is_empty(), "expected {code:?}, got {errs:?}");
    let e = found[0].clone();
    assert!(
        !e.message.is_ascii(),
        "message should be Japanese: {}",
        e.message
    );
    e
}

#[test]
fn the_base_guide_is_valid() {
    assert_eq!(errors(&base()), vec![]);
}

#[test]
fn unknown_question() {
    let e = only(
        &with_show_if(3, json!({ "question": "nope", "eq": "a" })),
        CheckCode::UnknownQuestion,
    );
    assert_eq!(e.path, "events[0].questions[3].show_if.question");
    assert!(e.message.contains("nope"));
}

#[test]
fn comparing_a_date_question_with_a_number_is_a_wrong_type() {
    let e = only(
        &with_show_if(3, json!({ "question": "move_date", "gte": 5 })),
        CheckCode::WrongType,
    );
    assert_eq!(e.path, "events[0].questions[3].show_if.gte");
    let e = only(
        &with_show_if(3, json!({ "question": "kind", "gte": 1 })),
        CheckCode::WrongType,
    );
    assert_eq!(e.path, "events[0].questions[3].show_if");
    only(
        &with_show_if(3, json!({ "question": "household", "eq": 1 })),
        CheckCode::WrongType,
    );
    only(
        &with_show_if(
            3,
            json!({ "any_member": { "nationality": "japanese" }, "of": "kind" }),
        ),
        CheckCode::WrongType,
    );
}

#[test]
fn an_option_that_does_not_exist_makes_the_question_unreachable() {
    let e = only(
        &with_show_if(3, json!({ "question": "kind", "eq": "c" })),
        CheckCode::UnknownOption,
    );
    assert_eq!(e.path, "events[0].questions[3].show_if.eq");
    only(
        &with_show_if(
            3,
            json!({ "any_member": { "insurance": ["national", "kokuho"] } }),
        ),
        CheckCode::UnknownOption,
    );
}

#[test]
fn depending_on_a_later_question() {
    let e = only(
        &with_show_if(2, json!({ "question": "count", "gte": 1 })),
        CheckCode::ForwardReference,
    );
    assert_eq!(e.path, "events[0].questions[2].show_if.question");
}

#[test]
fn cycles_are_named() {
    let mut v = with_show_if(2, json!({ "question": "count", "gte": 1 }));
    v["events"][0]["questions"][3]["show_if"] = json!({ "question": "kind", "eq": "a" });
    let e = only(&v, CheckCode::Cycle);
    assert!(
        e.message.contains("kind → count → kind") || e.message.contains("count → kind → count"),
        "{}",
        e.message
    );
}

#[test]
fn more_than_three_levels_is_too_deep() {
    let mut v = base();
    let qs = v["events"][0]["questions"].as_array_mut().unwrap();
    // kind(1) ← a(2) ← b(3) ← c(4); the example case answers kind = "a", so they stay hidden.
    qs.push(json!({ "id": "a", "text": "a", "kind": "yes_no", "show_if": { "question": "kind", "eq": "b" } }));
    qs.push(json!({ "id": "b", "text": "b", "kind": "yes_no", "show_if": { "question": "a", "eq": true } }));
    let three = v.clone();
    assert_eq!(errors(&three), vec![]);
    v["events"][0]["questions"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "c", "text": "c", "kind": "yes_no", "show_if": { "question": "b", "eq": true } }));
    let e = only(&v, CheckCode::TooDeep);
    assert_eq!(e.path, "events[0].questions[6].show_if");
}

#[test]
fn household_ages_add_a_level_through_the_date_and_household() {
    // move_date(1), household(1) ← q(2) through an age rule.
    let v = with_show_if(3, json!({ "any_member": { "age": { "gte": 65 } } }));
    assert_eq!(errors(&v), vec![]);
}

#[test]
fn duplicate_ids() {
    let mut v = base();
    v["events"][0]["questions"][3]["id"] = json!("kind");
    let e = only(&v, CheckCode::Duplicate);
    assert_eq!(e.path, "events[0].questions[3].id");
    let mut v = base();
    v["procedures"][1]["id"] = json!("p1");
    assert_eq!(only(&v, CheckCode::Duplicate).path, "procedures[1].id");
    let mut v = base();
    v["events"][0]["questions"][2]["options"][1]["value"] = json!("a");
    only(&v, CheckCode::Duplicate);
}

#[test]
fn invalid_ids() {
    let mut v = base();
    v["procedures"][0]["id"] = json!("P-1");
    assert_eq!(only(&v, CheckCode::InvalidId).path, "procedures[0].id");
}

#[test]
fn unknown_procedure_and_event() {
    let mut v = base();
    v["events"][0]["rules"][0]["procedure"] = json!("p9");
    assert_eq!(
        only(&v, CheckCode::UnknownProcedure).path,
        "events[0].rules[0].procedure"
    );
    let mut v = base();
    v["cases"][0]["event"] = json!("tenshutsu");
    assert_eq!(only(&v, CheckCode::UnknownEvent).path, "cases[0].event");
}

#[test]
fn conditions_that_never_hold() {
    only(
        &with_show_if(
            3,
            json!({ "any_member": { "age": { "gte": 65, "lte": 40 } } }),
        ),
        CheckCode::NeverHolds,
    );
    only(
        &with_show_if(
            3,
            json!({ "all": [ { "question": "kind", "eq": "a" }, { "question": "kind", "eq": "b" } ] }),
        ),
        CheckCode::NeverHolds,
    );
}

#[test]
fn ages_and_deadlines_need_a_date() {
    let mut v = base();
    v["events"][0]
        .as_object_mut()
        .unwrap()
        .remove("date_question");
    let errs = errors(&v);
    let paths: Vec<&str> = errs
        .iter()
        .filter(|e| e.code == CheckCode::MissingDate)
        .map(|e| e.path.as_str())
        .collect();
    assert!(
        paths.contains(&"events[0].rules[0].deadline.from"),
        "{errs:?}"
    );
    assert!(
        paths.contains(&"events[0].rules[1].when.any_member"),
        "{errs:?}"
    );
}

#[test]
fn a_failing_example_case_blocks_the_save_and_says_which() {
    let mut v = base();
    v["cases"][0]["expect"] = json!(["p1"]);
    v["cases"].as_array_mut().unwrap().push(json!({
        "name": "若い人", "event": "tennyu",
        "answers": {
            "move_date": "2026-06-01",
            "household": [ { "birth_date": "2000-01-01", "relationship": "head", "nationality": "japanese", "insurance": "employee" } ],
            "kind": "b", "count": 2
        },
        "expect": ["p1", "p2"]
    }));
    let errs: Vec<CheckError> = errors(&v)
        .into_iter()
        .filter(|e| e.code == CheckCode::CaseFailed)
        .collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].path, "cases[0]");
    assert_eq!(
        errs[0].message,
        "事例「65歳」が期待と違います（不足：なし／余分：p2）。"
    );
    assert_eq!(errs[1].path, "cases[1]");
    assert_eq!(
        errs[1].message,
        "事例「若い人」が期待と違います（不足：p2／余分：なし）。"
    );
    assert!(parse_and_check(&v.to_string()).is_err());
}

#[test]
fn an_incomplete_or_invalid_example_case_is_reported() {
    let mut v = base();
    v["cases"][0]["answers"]
        .as_object_mut()
        .unwrap()
        .remove("count");
    let e = only(&v, CheckCode::CaseInvalid);
    assert!(e.message.contains("次の設問：count"), "{}", e.message);
    let mut v = base();
    v["cases"][0]["answers"]["move_date"] = json!("2026-13-01");
    let e = only(&v, CheckCode::CaseInvalid);
    assert!(e.message.contains("move_date"), "{}", e.message);
}

#[test]
fn malformed_rules_and_unknown_keys_fail_to_parse_with_a_japanese_message() {
    let bad = with_show_if(3, json!({ "question": "kind", "equals": "a" }));
    let err = Guide::from_json(&bad.to_string()).unwrap_err();
    assert_eq!(err.code, CheckCode::InvalidJson);
    assert!(err.message.contains("equals"), "{}", err.message);
    let mut bad = base();
    bad["events"][0]["questions"][0]["colour"] = json!("red");
    assert_eq!(
        Guide::from_json(&bad.to_string()).unwrap_err().code,
        CheckCode::InvalidJson
    );
    assert!(parse_and_check("not json").is_err());
}

#[test]
fn other_schemas_are_refused() {
    let mut v = base();
    v["schema"] = json!(2);
    assert_eq!(only(&v, CheckCode::UnsupportedSchema).path, "schema");
}

#[test]
fn deadlines_must_run_from_a_date_question() {
    let mut v = base();
    v["events"][0]["rules"][0]["deadline"]["from"] = json!("kind");
    assert_eq!(
        only(&v, CheckCode::WrongType).path,
        "events[0].rules[0].deadline.from"
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let mut v = with_show_if(3, json!({ "question": "nope", "eq": 1 }));
    v["procedures"][1]["department"] = json!("");
    v["events"][0]["rules"][0]["procedure"] = json!("zzz");
    let codes: Vec<CheckCode> = errors(&v).into_iter().map(|e| e.code).collect();
    for c in [
        CheckCode::UnknownQuestion,
        CheckCode::Required,
        CheckCode::UnknownProcedure,
    ] {
        assert!(codes.contains(&c), "{codes:?}");
    }
}

#[test]
fn check_errors_serialise_with_snake_case_codes() {
    let e = CheckError::new("events[0]", CheckCode::ForwardReference, "後の設問");
    assert_eq!(
        serde_json::to_value(&e).unwrap()["code"],
        "forward_reference"
    );
}

#[test]
fn an_edited_standard_rule_that_breaks_a_case_is_caught() {
    let mut g = standard();
    // Someone lowers 介護保険 第1号 to 75: the 70-year-old case must fail.
    let tennyu = g.events.iter_mut().find(|e| e.id == "tennyu").unwrap();
    let rule = tennyu
        .rules
        .iter_mut()
        .find(|r| r.procedure == "kaigo_1go")
        .unwrap();
    rule.when =
        Some(serde_json::from_value(json!({ "any_member": { "age": { "gte": 75 } } })).unwrap());
    let errs = check(&g).unwrap_err();
    assert!(
        errs.iter().any(|e| e.code == CheckCode::CaseFailed
            && e.message.contains("70歳と6歳")
            && e.message.contains("不足：kaigo_1go")),
        "{errs:?}"
    );
}
