//! The procedure-guide code, the counter's checklist and the printed page.

use madoguchi_domain::TenantId;
use madoguchi_guide::{CodeError, GuideCode, VisitChecklist, evaluate, render_html, standard};
use serde_json::json;

fn done_when_outcome() -> madoguchi_guide::Outcome {
    evaluate(
        &standard(),
        "tennyu",
        &json!({
            "move_date": "2026-06-01",
            "household": [
                { "birth_date": "1956-03-10", "relationship": "head", "nationality": "japanese", "insurance": "national" },
                { "birth_date": "2019-11-20", "relationship": "grandchild", "nationality": "japanese", "insurance": "national" }
            ],
            "mynumber_card": false, "school": "public", "care_certified": false, "seal": false
        }),
    )
    .unwrap()
}

fn tenant() -> TenantId {
    TenantId::from_five_digits("19442").unwrap()
}

#[test]
fn code_round_trips_and_stays_in_the_qr_alphanumeric_set() {
    let outcome = done_when_outcome();
    let code = GuideCode::from_outcome(tenant(), 7, &outcome);
    let text = code.encode();
    assert!(text.starts_with("MG1:"), "{text}");
    let alnum = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || " $%*+-./:".contains(c);
    assert!(text.chars().all(alnum), "{text}");
    assert!(text.len() < 120, "{} chars: {text}", text.len());
    assert_eq!(GuideCode::decode(&text).unwrap(), code);
    // Scanners may change case or add a newline.
    assert_eq!(
        GuideCode::decode(&format!(" {}\n", text.to_lowercase())).unwrap(),
        code
    );
    assert_eq!(code.procedures[0], "jumin_idou");
}

#[test]
fn damaged_or_foreign_codes_are_refused() {
    let code = GuideCode::from_outcome(tenant(), 7, &done_when_outcome()).encode();
    let tampered = code.replacen("KAIGO-1GO", "KOUKI", 1);
    assert_eq!(GuideCode::decode(&tampered), Err(CodeError::Corrupted));
    let truncated = &code[..code.len() - 3];
    assert_eq!(GuideCode::decode(truncated), Err(CodeError::Corrupted));
    assert_eq!(
        GuideCode::decode("MG2:whatever"),
        Err(CodeError::UnsupportedVersion)
    );
    assert_eq!(
        GuideCode::decode("https://example.jp/"),
        Err(CodeError::NotACode)
    );
    assert_eq!(GuideCode::decode(""), Err(CodeError::NotACode));
    assert_eq!(GuideCode::decode("MG1:::::"), Err(CodeError::Corrupted));
}

#[test]
fn an_empty_result_has_a_code_too() {
    let code = GuideCode {
        tenant: tenant(),
        version: 1,
        event: "shomei".into(),
        procedures: vec![],
    };
    assert_eq!(GuideCode::decode(&code.encode()).unwrap(), code);
}

#[test]
fn the_counter_ticks_procedures_off() {
    let guide = standard();
    let code =
        GuideCode::decode(&GuideCode::from_outcome(tenant(), 1, &done_when_outcome()).encode())
            .unwrap();
    let mut visit = VisitChecklist::from_code(&code);
    assert!(visit.done().is_empty());
    assert_eq!(visit.left().len(), code.procedures.len());

    assert_eq!(visit.tick("jumin_idou"), Ok(true));
    assert_eq!(visit.tick("jumin_idou"), Ok(false));
    assert!(visit.tick("kouki").is_err());

    // The 保険年金課 counter scans the code: its procedures are done at once.
    let newly = visit.tick_department(&guide, "保険年金課");
    assert_eq!(newly, vec!["kokuho_kanyu".to_string()]);
    assert_eq!(visit.done(), vec!["jumin_idou", "kokuho_kanyu"]);
    assert!(visit.left().contains(&"kaigo_1go"));
    assert!(!visit.is_complete());

    assert_eq!(visit.untick("jumin_idou"), Ok(true));
    for id in code.procedures.clone() {
        visit.tick(&id).unwrap();
    }
    assert!(visit.is_complete());
    let stored = serde_json::to_string(&visit).unwrap();
    assert_eq!(
        serde_json::from_str::<VisitChecklist>(&stored).unwrap(),
        visit
    );
}

#[test]
fn the_printed_page_lists_procedures_by_department_with_page_breaks() {
    let guide = standard();
    let outcome = done_when_outcome();
    let html = render_html(&guide, &outcome, Some("MG1:194425:1:TENNYU::0000"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("size: A4"));
    assert!(html.contains("break-before: page"));
    assert_eq!(
        html.matches("<section class=\"dept\">").count(),
        5,
        "{html}"
    );
    assert!(html.contains("住民異動届"));
    assert!(html.contains("令和8年6月15日（2026年6月15日）まで"));
    assert!(html.contains("転出証明書"));
    assert!(html.contains("MG1:194425:1:TENNYU::0000"));
    assert!(!html.contains("<script"));
    assert!(
        !html.contains("http"),
        "self-contained: no external resources"
    );
}

#[test]
fn the_printed_page_escapes_everything() {
    let mut guide = standard();
    guide.name = "<script>alert('x')</script>".into();
    let mut outcome = done_when_outcome();
    outcome.procedures[0].name = "A & B <b>".into();
    outcome.procedures[0].bring = vec!["\"quoted\"".into()];
    let html = render_html(&guide, &outcome, Some("<img src=x>"));
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("A &amp; B &lt;b&gt;"));
    assert!(html.contains("&quot;quoted&quot;"));
    assert!(!html.contains("<img"));
}
