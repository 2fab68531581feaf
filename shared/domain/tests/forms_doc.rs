//! docs/forms.md cannot rot: its JSON examples are parsed, validated and checked here.

use madoguchi_domain::Date;
use madoguchi_domain::Yen;
use madoguchi_domain::form::{
    Answers, PaymentTiming, check_answers, check_draft, compute_fee, parse_definition,
    validate_definition, visible_items,
};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/forms.md");

/// The body of the fenced block whose info string is `json <tag>`.
fn block(tag: &str) -> Value {
    let fence = format!("```json {tag}\n");
    let start = DOC
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/forms.md has no ```json {tag} block"))
        + fence.len();
    let end = start + DOC[start..].find("\n```").expect("unterminated block");
    serde_json::from_str(&DOC[start..end])
        .unwrap_or_else(|e| panic!("```json {tag} block is not JSON: {e}"))
}

#[test]
fn example_definition_parses_and_validates() {
    let def = parse_definition(&block("form-definition")).expect("parses");
    assert_eq!(validate_definition(&def), vec![]);
    // It really is complete: every type appears, plus a section and conditions.
    let types: std::collections::BTreeSet<&str> =
        def.all_items().map(|f| f.kind.type_name()).collect();
    for t in [
        "text",
        "radio",
        "select",
        "checkbox",
        "phone",
        "email",
        "date",
        "attachment",
        "my_number",
        "number",
        "postal_code",
        "name",
        "address",
        "heading",
        "explanation",
        "section",
    ] {
        assert!(types.contains(t), "the example lacks a {t} item");
    }
    assert!(def.all_items().any(|f| f.show_if.is_some()));
    assert_eq!(def.sensitive_fields(), vec!["my_number"]);
}

#[test]
fn example_answers_normalise_as_documented() {
    let def = parse_definition(&block("form-definition")).unwrap();
    let Value::Object(answers) = block("answers") else {
        panic!("answers block is not an object")
    };
    let today = Date::new(2026, 5, 1).unwrap();
    let checked = check_answers(&def, &answers, today);
    assert_eq!(checked.errors, vec![]);
    let want = block("normalised");
    let got = serde_json::to_value(&checked.values).unwrap();
    assert_eq!(got, want);
    let row = |id: &str| {
        checked
            .summary
            .iter()
            .find(|r| r.field == id)
            .map(|r| r.display.as_str())
            .unwrap_or_else(|| panic!("no summary row for {id}"))
    };
    assert_eq!(row("birth_date"), "平成2年4月1日（1990年4月1日）");
    assert_eq!(row("my_number"), "********9018");
    assert_eq!(row("phone"), "0725331131");
    assert_eq!(row("circumstances"), "ひとり親家庭");
    assert_eq!(row("passbook"), "1件");
    assert_eq!(row("applicant"), "山田\u{3000}花子（ヤマダ\u{3000}ハナコ）");
    assert_eq!(
        row("address"),
        "〒595-0013 大阪府泉大津市宮町2-25 泉大津ハイツ101"
    );

    let visible = visible_items(&def, &answers);
    assert!(!visible.contains("remarks"));
    assert!(visible.contains("email_note"));
    assert!(!visible.contains("guardian_note"));
    assert!(visible.contains("bank_note"));

    // The same answers are a fine draft too.
    assert_eq!(check_draft(&def, &answers), vec![]);
    let _: &Answers = &answers;
}

#[test]
fn fee_example_parses_validates_and_computes() {
    let def = parse_definition(&block("fee-form")).expect("parses");
    assert_eq!(validate_definition(&def), vec![]);
    let fee = def.fee.as_ref().expect("the example has a fee");
    assert_eq!(fee.timing, PaymentTiming::AtSubmission);
    let Value::Object(answers) = serde_json::json!({
        "applicant": {"family": "山田", "given": "花子"},
        "copies": "３"
    }) else {
        unreachable!()
    };
    let checked = check_answers(&def, &answers, Date::new(2026, 5, 1).unwrap());
    assert_eq!(checked.errors, vec![]);
    let b = compute_fee(fee, &checked.values).unwrap();
    assert_eq!(b.items.len(), 1);
    assert_eq!(b.items[0].label, "住民票の写し");
    assert_eq!(b.items[0].quantity, 3);
    assert_eq!(b.items[0].amount, Yen::new(900).unwrap());
    assert_eq!(b.total, Yen::new(900).unwrap());
}
