//! The standard rule set: it parses, passes every check and its own example cases,
//! and gives issue 6's done-when household the expected procedures.

use madoguchi_guide::{QuestionKind, STANDARD_JSON, check, evaluate, standard};
use serde_json::{Value, json};

#[test]
fn standard_rules_pass_their_checks_and_example_cases() {
    let guide = standard();
    if let Err(errors) = check(&guide) {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("standard rules fail:\n{}", list.join("\n"));
    }
}

#[test]
fn standard_rules_cover_the_required_events_with_cases() {
    let guide = standard();
    for event in [
        "tennyu",
        "tenshutsu",
        "tenkyo",
        "shussei",
        "shibou",
        "konin",
        "shomei",
    ] {
        assert!(guide.event(event).is_some(), "event {event}");
        assert!(
            guide.cases.iter().any(|c| c.event == event),
            "no example case for {event}"
        );
    }
}

#[test]
fn every_standard_rule_states_whether_it_was_confirmed_and_cites_a_source() {
    let guide = standard();
    for e in &guide.events {
        for r in &e.rules {
            assert!(
                r.confirmed.is_some(),
                "{}: {} has no confirmed mark",
                e.id,
                r.procedure
            );
            assert!(
                !r.sources.is_empty(),
                "{}: {} cites nothing",
                e.id,
                r.procedure
            );
        }
    }
}

#[test]
fn standard_rules_round_trip_through_json() {
    let guide = standard();
    let again: madoguchi_guide::Guide =
        serde_json::from_value(serde_json::to_value(&guide).unwrap()).unwrap();
    assert_eq!(guide, again);
    let raw: Value = serde_json::from_str(STANDARD_JSON).unwrap();
    assert_eq!(raw["schema"], 1);
}

fn ids(outcome: &madoguchi_guide::Outcome) -> Vec<&str> {
    outcome.procedures.iter().map(|p| p.id.as_str()).collect()
}

/// Issue 6, done when: a 転入 household with a 70-year-old and a 6-year-old, answered
/// step by step as the SPA does, reaches 100 % with the expected procedures.
#[test]
fn done_when_tennyu_household_with_a_70_and_a_6_year_old() {
    let guide = standard();
    let mut answers = json!({});
    let mut last_progress = 0;
    let mut steps = 0;
    loop {
        let out = evaluate(&guide, "tennyu", &answers).unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert!(out.progress >= last_progress, "progress went down");
        last_progress = out.progress;
        let Some(q) = out.next_question else {
            assert!(out.complete);
            assert_eq!(out.progress, 100);
            let got = ids(&out);
            for want in [
                "jumin_idou",
                "kokuho_kanyu",
                "kaigo_1go",
                "shugaku",
                "jidou_teate",
            ] {
                assert!(got.contains(&want), "missing {want} in {got:?}");
            }
            for not in ["kouki", "nenkin_1go"] {
                assert!(!got.contains(&not), "unexpected {not} in {got:?}");
            }
            let idou = &out.procedures[0];
            assert_eq!(idou.id, "jumin_idou");
            assert_eq!(idou.due.unwrap().to_string(), "2026-06-15");
            break;
        };
        assert!(out.progress < 100);
        let value = match q.id.as_str() {
            "move_date" => json!("令和8年6月1日"),
            "household" => {
                assert_eq!(q.kind, QuestionKind::Household);
                json!([
                    { "birth_date": "1956-03-10", "relationship": "head", "nationality": "japanese", "insurance": "national" },
                    { "birth_date": "2019-11-20", "relationship": "grandchild", "nationality": "japanese", "insurance": "national" }
                ])
            }
            "school" => json!("public"),
            "mynumber_card" | "care_certified" | "seal" => json!(false),
            other => panic!("unexpected question {other}"),
        };
        answers[q.id.as_str()] = value;
        steps += 1;
        assert!(steps < 20);
    }
    // move_date, household, mynumber_card, school, care_certified, seal
    assert_eq!(steps, 6);
}

/// The example in docs/guide.md is a guide that passes every check.
#[test]
fn the_documented_example_is_a_valid_guide() {
    let doc = include_str!("../../../docs/guide.md");
    let start = doc.find("## The model").expect("section");
    let block = &doc[start..];
    let open = block.find("```json\n").expect("json block") + "```json\n".len();
    let close = block[open..].find("```").expect("end of block");
    let guide = madoguchi_guide::parse_and_check(&block[open..open + close]);
    assert!(guide.is_ok(), "{:?}", guide.err());
}
