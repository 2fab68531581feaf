//! The engine: ages at their legal boundaries, due dates, answer errors, progress.

use madoguchi_guide::{Guide, evaluate, standard};
use serde_json::{Value, json};

/// One event whose rules are the age boundaries the standard set relies on.
fn ages_guide() -> Guide {
    let proc = |id: &str| json!({ "id": id, "name": id, "department": "課", "counter": "窓口" });
    let rule =
        |id: &str, age: Value| json!({ "procedure": id, "when": { "any_member": { "age": age } } });
    let procedures: Vec<Value> = [
        "p65", "p40_64", "p75", "p20_59", "school", "teate", "p_lte_74",
    ]
    .map(proc)
    .into();
    Guide::from_json(
        &json!({
            "schema": 1, "name": "t",
            "procedures": procedures,
            "events": [{
                "id": "e", "name": "e", "date_question": "d",
                "questions": [
                    { "id": "d", "text": "日付", "kind": "date" },
                    { "id": "household", "text": "世帯", "kind": "household" }
                ],
                "rules": [
                    rule("p65", json!({ "gte": 65 })),
                    rule("p40_64", json!({ "gte": 40, "lte": 64 })),
                    rule("p75", json!({ "gte": 75, "basis": "birthday" })),
                    rule("p_lte_74", json!({ "lte": 74, "basis": "birthday" })),
                    rule("p20_59", json!({ "gte": 20, "lte": 59 })),
                    rule("school", json!({ "gte": 6, "lte": 14, "on": "previous_march_31" })),
                    rule("teate", json!({ "lte": 17, "on": "previous_march_31" }))
                ]
            }]
        })
        .to_string(),
    )
    .unwrap()
}

fn procs(guide: &Guide, birth: &str, on: &str) -> Vec<String> {
    let answers = json!({
        "d": on,
        "household": [{ "birth_date": birth, "relationship": "head", "nationality": "japanese", "insurance": "national" }]
    });
    let out = evaluate(guide, "e", &answers).unwrap();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.complete);
    out.procedures.into_iter().map(|p| p.id).collect()
}

fn has(guide: &Guide, birth: &str, on: &str, id: &str) -> bool {
    procs(guide, birth, on).iter().any(|p| p == id)
}

#[test]
fn sixty_five_is_reached_the_day_before_the_birthday() {
    let g = ages_guide();
    // Born 1961-06-02: 65th birthday 2026-06-02, legally 65 from 2026-06-01.
    assert!(!has(&g, "1961-06-02", "2026-05-31", "p65"));
    assert!(has(&g, "1961-06-02", "2026-05-31", "p40_64"));
    assert!(has(&g, "1961-06-02", "2026-06-01", "p65"));
    assert!(!has(&g, "1961-06-02", "2026-06-01", "p40_64"));
}

#[test]
fn forty_is_reached_the_day_before_the_birthday() {
    let g = ages_guide();
    assert!(!has(&g, "1986-06-02", "2026-05-31", "p40_64"));
    assert!(has(&g, "1986-06-02", "2026-06-01", "p40_64"));
}

#[test]
fn seventy_five_counts_from_the_birthday_itself() {
    let g = ages_guide();
    // Legally 75 on 2026-06-01, but 後期高齢者医療 starts on the birthday.
    assert!(!has(&g, "1951-06-02", "2026-06-01", "p75"));
    assert!(has(&g, "1951-06-02", "2026-06-01", "p_lte_74"));
    assert!(has(&g, "1951-06-02", "2026-06-02", "p75"));
    assert!(!has(&g, "1951-06-02", "2026-06-02", "p_lte_74"));
}

#[test]
fn twenty_is_reached_the_day_before_the_birthday() {
    let g = ages_guide();
    assert!(!has(&g, "2006-06-02", "2026-05-31", "p20_59"));
    assert!(has(&g, "2006-06-02", "2026-06-01", "p20_59"));
    // 60: the day before the 60th birthday ends 第1号.
    assert!(has(&g, "1966-06-02", "2026-05-31", "p20_59"));
    assert!(!has(&g, "1966-06-02", "2026-06-01", "p20_59"));
}

#[test]
fn school_age_follows_the_school_year_and_april_1_births() {
    let g = ages_guide();
    // Born 1 April: 6 at the end of 31 March, so starts school that April (早生まれ).
    assert!(has(&g, "2020-04-01", "2026-04-01", "school"));
    assert!(!has(&g, "2020-04-01", "2026-03-31", "school"));
    // Born 2 April: one year later.
    assert!(!has(&g, "2020-04-02", "2026-04-01", "school"));
    assert!(!has(&g, "2020-04-02", "2027-03-31", "school"));
    assert!(has(&g, "2020-04-02", "2027-04-01", "school"));
    // 5 years old at the move date but already 6 in the school year: still 5 → not yet.
    assert!(!has(&g, "2020-10-01", "2026-06-01", "school"));
    // 6 at the move date and in 1st grade.
    assert!(has(&g, "2019-11-20", "2026-06-01", "school"));
    // End of 中学校: through the school year in which 15 is reached.
    assert!(has(&g, "2011-04-02", "2027-03-31", "school"));
    assert!(!has(&g, "2011-04-02", "2027-04-01", "school"));
}

#[test]
fn child_allowance_runs_to_the_first_march_31_after_18() {
    let g = ages_guide();
    // Born 2008-04-02: reaches 18 on 2026-04-01, so through 2027-03-31.
    assert!(has(&g, "2008-04-02", "2027-03-31", "teate"));
    assert!(!has(&g, "2008-04-02", "2027-04-01", "teate"));
    // Born 2008-04-01: reaches 18 on 2026-03-31, so through that very day.
    assert!(has(&g, "2008-04-01", "2026-03-31", "teate"));
    assert!(!has(&g, "2008-04-01", "2026-04-01", "teate"));
    // A newborn after the last 31 March is eligible, and not of school age.
    assert!(has(&g, "2026-05-01", "2026-06-01", "teate"));
    assert!(!has(&g, "2026-05-01", "2026-06-01", "school"));
}

#[test]
fn leap_day_births_turn_on_28_february_legally() {
    let g = ages_guide();
    assert!(!has(&g, "1961-02-28", "2026-02-26", "p65"));
    assert!(has(&g, "1961-02-28", "2026-02-27", "p65"));
    // Born 29 February 1960: legally 65 at the end of 28 February 2025.
    assert!(!has(&g, "1960-02-29", "2025-02-27", "p65"));
    assert!(has(&g, "1960-02-29", "2025-02-28", "p65"));
}

#[test]
fn due_dates_count_the_first_day_only_where_the_law_says_so() {
    let g = standard();
    let out = evaluate(
        &g,
        "shussei",
        &json!({ "birth_date": "2026-06-01", "insurance": "national", "public_servant": false }),
    )
    .unwrap();
    let due = |id: &str| {
        out.procedures
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.due)
            .map(|d| d.to_string())
    };
    // 戸籍法 第43条: the day of birth counts → 14 days end on the 14th.
    assert_eq!(due("shussei_todoke").as_deref(), Some("2026-06-14"));
    // 民法 第140条: the first day does not count.
    assert_eq!(due("kokuho_kanyu").as_deref(), Some("2026-06-15"));
    assert_eq!(due("jidou_teate").as_deref(), Some("2026-06-16"));
    let death = evaluate(
        &g,
        "shibou",
        &json!({ "known_date": "2026-06-01", "deceased": [
            { "birth_date": "1990-01-01", "relationship": "spouse", "nationality": "japanese", "insurance": "employee" }
        ] }),
    )
    .unwrap();
    assert_eq!(death.procedures[0].due.unwrap().to_string(), "2026-06-07");
    // 調停離婚: 10 days counting the day of the 調停 (戸籍法 第77条・第63条・第43条).
    let divorce = evaluate(
        &g,
        "rikon",
        &json!({ "kind": "court", "decided_date": "2026-06-01", "name_back": "none",
                 "leave_employee": false, "children": false }),
    )
    .unwrap();
    assert!(divorce.complete);
    assert_eq!(divorce.procedures[0].due.unwrap().to_string(), "2026-06-10");
    // 協議離婚: the second rule of the same procedure, without a deadline.
    let agreed = evaluate(
        &g,
        "rikon",
        &json!({ "kind": "kyogi", "name_back": "none", "leave_employee": false, "children": false }),
    )
    .unwrap();
    assert_eq!(agreed.procedures[0].id, "rikon_todoke");
    assert_eq!(agreed.procedures[0].due, None);
    assert_eq!(agreed.procedures[0].deadline, None);
}

#[test]
fn bad_answers_are_field_errors_in_japanese_and_count_as_unanswered() {
    let g = standard();
    let out = evaluate(
        &g,
        "tennyu",
        &json!({
            "move_date": "2026-02-30",
            "household": [{ "birth_date": "1990-01-01", "relationship": "boss", "nationality": "japanese" }],
            "nope": 1
        }),
    )
    .unwrap();
    let codes: Vec<(&str, &str)> = out
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_str()))
        .collect();
    assert!(codes.contains(&("move_date", "invalid_date")), "{codes:?}");
    assert!(
        codes.contains(&("household[0].relationship", "not_an_option")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("household[0].insurance", "required")),
        "{codes:?}"
    );
    assert!(codes.contains(&("nope", "unknown_field")), "{codes:?}");
    assert!(
        out.errors
            .iter()
            .all(|e| !e.message.is_empty() && !e.message.is_ascii())
    );
    assert_eq!(out.next_question.unwrap().id, "move_date");
    assert!(!out.complete);
    assert_eq!(out.progress, 0);
}

#[test]
fn a_member_born_after_the_event_date_is_an_error() {
    let g = standard();
    let out = evaluate(
        &g,
        "tennyu",
        &json!({ "move_date": "2026-06-01", "household": [
            { "birth_date": "2026-07-01", "relationship": "child", "nationality": "japanese", "insurance": "national" }
        ] }),
    )
    .unwrap();
    assert_eq!(out.errors[0].field, "household[0].birth_date");
    assert!(!out.complete);
}

#[test]
fn wrong_shapes_never_fail_the_call() {
    let g = standard();
    for answers in [
        json!(null),
        json!([1, 2]),
        json!("x"),
        json!({ "household": {} }),
    ] {
        let out = evaluate(&g, "tennyu", &answers).unwrap();
        assert!(!out.complete);
    }
    assert!(evaluate(&g, "no_such_event", &json!({})).is_err());
}

#[test]
fn answers_to_hidden_questions_are_ignored() {
    let g = standard();
    // school is only asked when a child is of school age.
    let out = evaluate(
        &g,
        "tenkyo",
        &json!({ "move_date": "2026-06-01", "household": [
            { "birth_date": "1990-01-01", "relationship": "head", "nationality": "japanese", "insurance": "employee" }
        ], "mynumber_card": false, "school": "not even an option" }),
    )
    .unwrap();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.complete);
}

#[test]
fn next_question_carries_its_glossary() {
    let g = standard();
    let out = evaluate(&g, "tennyu", &json!({ "move_date": "2026-06-01" })).unwrap();
    let q = out.next_question.unwrap();
    assert_eq!(q.id, "household");
    let terms: Vec<&str> = q.glossary.iter().map(|e| e.term.as_str()).collect();
    assert!(terms.contains(&"世帯員"), "{terms:?}");
    assert!(terms.contains(&"続柄"), "{terms:?}");
}

/// Progress counts questions that may still be asked, so answering in order never
/// lowers it even when an answer opens follow-up questions.
#[test]
fn progress_never_goes_down_when_an_answer_opens_follow_ups() {
    let follow = |id: &str| json!({ "id": id, "text": id, "kind": "yes_no", "show_if": { "question": "q2", "eq": true } });
    let g = Guide::from_json(
        &json!({
            "schema": 1, "name": "t", "procedures": [],
            "events": [{ "id": "e", "name": "e", "rules": [], "questions": [
                { "id": "q1", "text": "1", "kind": "yes_no" },
                { "id": "q2", "text": "2", "kind": "yes_no" },
                follow("q3"), follow("q4"), follow("q5")
            ] }]
        })
        .to_string(),
    )
    .unwrap();
    let step = |a: Value| evaluate(&g, "e", &a).unwrap().progress;
    assert_eq!(step(json!({})), 0);
    assert_eq!(step(json!({ "q1": true })), 20);
    assert_eq!(step(json!({ "q1": true, "q2": true })), 40);
    assert_eq!(step(json!({ "q1": true, "q2": false })), 100);
    assert_eq!(
        step(json!({ "q1": true, "q2": true, "q3": true, "q4": true })),
        80
    );
    assert_eq!(
        step(json!({ "q1": true, "q2": true, "q3": true, "q4": true, "q5": false })),
        100
    );
}

#[test]
fn count_members_counts_with_bounds() {
    let g = Guide::from_json(
        &json!({
            "schema": 1, "name": "t",
            "procedures": [{ "id": "many_kids", "name": "n", "department": "d", "counter": "c" }],
            "events": [{ "id": "e", "name": "e", "date_question": "d",
                "questions": [
                    { "id": "d", "text": "d", "kind": "date" },
                    { "id": "household", "text": "h", "kind": "household" }
                ],
                "rules": [{ "procedure": "many_kids", "when": {
                    "count_members": { "all": [ { "relationship": "child" }, { "age": { "lte": 17 } } ] }, "gte": 3 } }]
            }]
        })
        .to_string(),
    )
    .unwrap();
    let kid = |b: &str| json!({ "birth_date": b, "relationship": "child", "nationality": "foreign", "insurance": "employee" });
    let two = json!({ "d": "2026-06-01", "household": [kid("2015-01-01"), kid("2016-01-01")] });
    let three = json!({ "d": "2026-06-01", "household": [kid("2015-01-01"), kid("2016-01-01"), kid("2017-01-01")] });
    assert!(evaluate(&g, "e", &two).unwrap().procedures.is_empty());
    assert_eq!(
        evaluate(&g, "e", &three).unwrap().procedures[0].id,
        "many_kids"
    );
}
