//! 手数料 (fees): what an application costs, as a form states it, and the amount for a
//! given set of answers.
//!
//! A form's `fee` is a list of lines (明細): a label, a unit price in whole yen, an
//! optional quantity read from a `number` field (e.g. the number of copies of 住民票の写し),
//! and an optional `when` condition in the language of display conditions (表示条件).
//! [`compute_fee`] turns the normalised answers of a submission into a [`FeeBreakdown`].
//!
//! JSON (`docs/forms.md` documents it for staff):
//!
//! ```json
//! {"timing": "at_submission",
//!  "lines": [{"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"}]}
//! ```
//!
//! Reading is strict ([`super::parse_definition`]: unknown keys are errors with paths such
//! as `fee.lines[0].unit_price`); the rules on values (label length, price range, quantity
//! field, references of `when`) are [`super::validate_definition`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::condition::Condition;
use super::parse;
use super::visibility::holds;
use crate::error::FieldError;
use crate::money::Yen;

/// The smallest amount the card gateway charges in JPY. A unit price is 0 or at least
/// this, so any positive total can be charged.
pub const MIN_CHARGE: Yen = Yen::from_u32(50);

/// The largest unit price, and the largest total of one application.
pub const MAX_FEE: Yen = Yen::from_u32(9_999_999);

/// When the citizen pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTiming {
    /// With the submission: the application waits in 支払待ち (`payment_pending`) until the
    /// card payment is confirmed.
    AtSubmission,
    /// After staff accept the application (a payment request follows).
    AfterAcceptance,
}

/// A form's fee (手数料).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeeRule {
    pub timing: PaymentTiming,
    /// 1..=20 lines, in display order.
    pub lines: Vec<FeeLine>,
}

/// One line (明細) of a fee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeeLine {
    /// Shown on the confirm screen and the receipt, 1..=100 characters.
    pub label: String,
    /// 0, or [`MIN_CHARGE`]..=[`MAX_FEE`].
    pub unit_price: Yen,
    /// Id of a `number` field with `integer: true` and `min` ≥ 0 whose answer is the
    /// quantity; absent: quantity 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity_field: Option<String>,
    /// The line counts only when this holds (same language as a field's `show_if`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

/// One line of a computed fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeItem {
    pub label: String,
    pub unit_price: Yen,
    pub quantity: u32,
    /// `unit_price × quantity`.
    pub amount: Yen,
}

/// A computed fee: the lines that count, and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeBreakdown {
    pub items: Vec<FeeItem>,
    pub total: Yen,
}

impl<'de> Deserialize<'de> for FeeRule {
    /// Strict, like the `fee` of [`super::parse_definition`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        parse::parse_fee(&v).map_err(|errors| {
            let first = errors.first();
            serde::de::Error::custom(format_args!(
                "invalid fee: {} problem(s), first {} at {}",
                errors.len(),
                first.map_or("", |e| e.code.as_str()),
                first.map_or("", |e| e.field.as_str()),
            ))
        })
    }
}

/// The fee for a submission.
///
/// `values` are the normalised answers of the visible fields, as
/// [`super::check_answers`] produces them ([`super::Checked::values`]): hidden and
/// unanswered fields are absent, and a `number` answer is a JSON number (an integral one
/// is a JSON integer).
///
/// A line counts when its `when` holds (evaluated exactly as a display condition on those
/// answers) and its quantity is positive. The quantity is 1 without a `quantity_field`;
/// with one, it is that field's answer, and an unanswered or hidden field, or an answer
/// that is not a non-negative integer, gives 0 (the line is left out). Lines that count
/// with a unit price of 0 are listed with amount 0.
///
/// Errors: a total above [`MAX_FEE`] (or an overflow on the way): a [`FieldError`] on
/// `fee`, code `fee.too_large`.
pub fn compute_fee(
    rule: &FeeRule,
    values: &BTreeMap<String, Value>,
) -> Result<FeeBreakdown, FieldError> {
    let mut items = Vec::new();
    let mut total = Yen::ZERO;
    for line in &rule.lines {
        if let Some(c) = &line.when
            && !holds(c, &mut |id| values.get(id).cloned())
        {
            continue;
        }
        let quantity = match &line.quantity_field {
            None => 1,
            Some(id) => match quantity(values.get(id)) {
                Quantity::Count(n) => n,
                Quantity::Huge => return Err(too_large()),
            },
        };
        if quantity == 0 {
            continue;
        }
        let amount = line
            .unit_price
            .checked_mul(quantity)
            .ok_or_else(too_large)?;
        total = total.checked_add(amount).ok_or_else(too_large)?;
        if total > MAX_FEE {
            return Err(too_large());
        }
        items.push(FeeItem {
            label: line.label.clone(),
            unit_price: line.unit_price,
            quantity,
            amount,
        });
    }
    Ok(FeeBreakdown { items, total })
}

enum Quantity {
    Count(u32),
    /// A whole number beyond `u32`: no fee could be that large.
    Huge,
}

/// The quantity an answer gives: a non-negative integer, or 0 for no answer or one that
/// is not a non-negative integer (impossible for answers of a validated definition).
fn quantity(v: Option<&Value>) -> Quantity {
    let Some(Value::Number(n)) = v else {
        return Quantity::Count(0);
    };
    if let Some(u) = n.as_u64() {
        return u32::try_from(u).map_or(Quantity::Huge, Quantity::Count);
    }
    match n.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 => {
            if x <= f64::from(u32::MAX) {
                Quantity::Count(x as u32)
            } else {
                Quantity::Huge
            }
        }
        _ => Quantity::Count(0),
    }
}

fn too_large() -> FieldError {
    FieldError::new(
        "fee",
        "fee.too_large",
        format!(
            "手数料の合計が上限（{MAX_FEE}）を超えるため、申請できません。数量などの入力内容をご確認ください。"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{FormDefinition, parse_definition, validate_definition};
    use serde_json::json;

    fn yen(v: i64) -> Yen {
        Yen::new(v).unwrap()
    }

    /// A 住民票の写し form: copies, a purpose, and a fee.
    fn form(fee: Value) -> Value {
        json!({
            "title": "住民票の写しの交付請求",
            "items": [
                {"id": "copies", "type": "number", "label": "必要な通数",
                 "integer": true, "min": 0, "max": 10},
                {"id": "with_family", "type": "radio", "label": "世帯全員分",
                 "options": [{"value": "yes", "label": "はい"}, {"value": "no", "label": "いいえ"}]},
                {"id": "memo", "type": "text", "label": "備考"},
                {"id": "ratio", "type": "number", "label": "割合"}
            ],
            "fee": fee
        })
    }

    fn parse_ok(fee: Value) -> FormDefinition {
        parse_definition(&form(fee)).expect("parses")
    }

    fn parse_err(fee: Value) -> Vec<(String, String)> {
        parse_definition(&form(fee))
            .expect_err("must not parse")
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn validation(fee: Value) -> Vec<(String, String)> {
        validate_definition(&parse_ok(fee))
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn pair(field: &str, code: &str) -> (String, String) {
        (field.to_owned(), code.to_owned())
    }

    fn juminhyo() -> Value {
        json!({"timing": "at_submission",
               "lines": [{"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"}]})
    }

    fn values(v: Value) -> BTreeMap<String, Value> {
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => panic!("not an object"),
        }
    }

    // ---- parsing ----

    #[test]
    fn parses_a_fee() {
        let def = parse_ok(json!({
            "timing": "after_acceptance",
            "lines": [
                {"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"},
                {"label": "郵送料", "unit_price": 140,
                 "when": {"field": "with_family", "equals": "yes"}},
                {"label": "無料の写し", "unit_price": 0}
            ]
        }));
        let fee = def.fee.as_ref().expect("fee");
        assert_eq!(fee.timing, PaymentTiming::AfterAcceptance);
        assert_eq!(fee.lines.len(), 3);
        assert_eq!(fee.lines[0].unit_price, yen(300));
        assert_eq!(fee.lines[0].quantity_field.as_deref(), Some("copies"));
        assert_eq!(
            fee.lines[1].when,
            Some(Condition::equals("with_family", "yes"))
        );
        assert_eq!(fee.lines[2].quantity_field, None);
        assert_eq!(validate_definition(&def), vec![]);
        // Round trip: serialised and read again, the same definition.
        let again = parse_definition(&serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again, def);
        let fee_json = serde_json::to_value(fee).unwrap();
        assert_eq!(fee_json["timing"], "after_acceptance");
        assert_eq!(
            fee_json["lines"][2],
            json!({"label": "無料の写し", "unit_price": 0})
        );
        assert_eq!(serde_json::from_value::<FeeRule>(fee_json).unwrap(), *fee);
    }

    #[test]
    fn no_fee_is_none_and_not_serialised() {
        let mut v = form(Value::Null);
        v.as_object_mut().unwrap().remove("fee");
        let def = parse_definition(&v).unwrap();
        assert_eq!(def.fee, None);
        assert!(serde_json::to_value(&def).unwrap().get("fee").is_none());
        assert_eq!(parse_definition(&form(Value::Null)).unwrap().fee, None);
        assert_eq!(FormDefinition::new("x", vec![]).fee, None);
    }

    #[test]
    fn unknown_keys_are_refused_with_paths() {
        assert_eq!(
            parse_err(json!({"timing": "at_submission", "currency": "JPY",
                             "lines": [{"label": "a", "unit_price": 300, "price": 1}]})),
            vec![
                pair("fee.currency", "unknown_field"),
                pair("fee.lines[0].price", "unknown_field"),
            ]
        );
        assert_eq!(
            parse_err(json!({"timing": "at_submission",
                             "lines": [{"label": "a", "unit_price": 300,
                                        "when": {"field": "copies", "equals": 1, "x": 1}}]})),
            vec![pair("fee.lines[0].when.x", "unknown_field")]
        );
    }

    #[test]
    fn wrong_types_and_missing_keys_are_refused() {
        assert_eq!(parse_err(json!("300")), vec![pair("fee", "wrong_type")]);
        assert_eq!(
            parse_err(json!({"lines": []})),
            vec![pair("fee.timing", "required")]
        );
        assert_eq!(
            parse_err(json!({"timing": "later", "lines": {}})),
            vec![
                pair("fee.timing", "not_an_option"),
                pair("fee.lines", "wrong_type")
            ]
        );
        assert_eq!(
            parse_err(json!({"timing": "at_submission", "lines": [
                {"label": 1, "unit_price": "300"},
                {"label": "a", "unit_price": -50},
                {"label": "a", "unit_price": 12.5, "quantity_field": 3},
                {"unit_price": 18_446_744_073_709_551_615u64},
                "x"
            ]})),
            vec![
                pair("fee.lines[0].label", "wrong_type"),
                pair("fee.lines[0].unit_price", "wrong_type"),
                pair("fee.lines[1].unit_price", "wrong_type"),
                pair("fee.lines[2].unit_price", "wrong_type"),
                pair("fee.lines[2].quantity_field", "wrong_type"),
                pair("fee.lines[3].label", "required"),
                pair("fee.lines[3].unit_price", "out_of_range"),
                pair("fee.lines[4]", "wrong_type"),
            ]
        );
        assert!(serde_json::from_value::<FeeRule>(json!({"timing": "at_submission"})).is_err());
    }

    // ---- validation ----

    #[test]
    fn the_example_is_valid() {
        assert_eq!(validation(juminhyo()), vec![]);
    }

    #[test]
    fn quantity_field_must_be_a_non_negative_integer_field() {
        let line = |q: &str| {
            json!({"timing": "at_submission",
                   "lines": [{"label": "写し", "unit_price": 300, "quantity_field": q}]})
        };
        assert_eq!(
            validation(line("nope")),
            vec![pair("fee.lines[0].quantity_field", "unknown_reference")]
        );
        for wrong in ["memo", "ratio", "with_family"] {
            assert_eq!(
                validation(line(wrong)),
                vec![pair("fee.lines[0].quantity_field", "wrong_kind")],
                "{wrong}"
            );
        }
        // An integer field that admits negative numbers is refused too.
        let mut v = form(line("copies"));
        v["items"][0]["min"] = json!(-1);
        let def = parse_definition(&v).unwrap();
        assert_eq!(
            validate_definition(&def)
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect::<Vec<_>>(),
            vec![pair("fee.lines[0].quantity_field", "wrong_kind")]
        );
    }

    #[test]
    fn unit_price_is_zero_or_chargeable() {
        let line = |p: i64| json!({"timing": "at_submission", "lines": [{"label": "写し", "unit_price": p}]});
        for ok in [0, 50, 300, 9_999_999] {
            assert_eq!(validation(line(ok)), vec![], "{ok}");
        }
        for bad in [1, 30, 49, 10_000_000] {
            assert_eq!(
                validation(line(bad)),
                vec![pair("fee.lines[0].unit_price", "out_of_range")],
                "{bad}"
            );
        }
    }

    #[test]
    fn lines_labels_and_conditions_are_checked() {
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"label": format!("明細{i}"), "unit_price": 100}))
            .collect();
        assert_eq!(
            validation(json!({"timing": "at_submission", "lines": many})),
            vec![pair("fee.lines", "too_many")]
        );
        assert_eq!(
            validation(json!({"timing": "at_submission", "lines": []})),
            vec![pair("fee.lines", "required")]
        );
        assert_eq!(
            validation(json!({"timing": "at_submission", "lines": [
                {"label": " ", "unit_price": 100},
                {"label": "あ".repeat(101), "unit_price": 100},
                {"label": "改\n行", "unit_price": 100}
            ]})),
            vec![
                pair("fee.lines[0].label", "required"),
                pair("fee.lines[1].label", "too_long"),
                pair("fee.lines[2].label", "invalid_char"),
            ]
        );
        assert_eq!(
            validation(json!({"timing": "at_submission", "lines": [
                {"label": "a", "unit_price": 100, "when": {"field": "ghost", "answered": true}},
                {"label": "b", "unit_price": 100, "when": {"field": "with_family", "equals": "maybe"}},
                {"label": "c", "unit_price": 100, "when": {"field": "memo", "gt": 1}}
            ]})),
            vec![
                pair("fee.lines[0].when.field", "unknown_reference"),
                pair("fee.lines[1].when.equals", "not_an_option"),
                pair("fee.lines[2].when.gt", "wrong_kind"),
            ]
        );
    }

    // ---- computation ----

    fn rule(v: Value) -> FeeRule {
        serde_json::from_value(v).expect("a fee rule")
    }

    #[test]
    fn a_fixed_fee() {
        let r = rule(json!({"timing": "at_submission",
                            "lines": [{"label": "手数料", "unit_price": 300}]}));
        let b = compute_fee(&r, &BTreeMap::new()).unwrap();
        assert_eq!(
            b,
            FeeBreakdown {
                items: vec![FeeItem {
                    label: "手数料".into(),
                    unit_price: yen(300),
                    quantity: 1,
                    amount: yen(300),
                }],
                total: yen(300),
            }
        );
    }

    #[test]
    fn copies_times_unit_price() {
        let r = rule(juminhyo());
        let b = compute_fee(&r, &values(json!({"copies": 3}))).unwrap();
        assert_eq!(b.items.len(), 1);
        assert_eq!(b.items[0].quantity, 3);
        assert_eq!(b.items[0].unit_price, yen(300));
        assert_eq!(b.items[0].amount, yen(900));
        assert_eq!(b.total, yen(900));
        // As check_answers produces it, from the citizen's "３".
        let def = parse_ok(juminhyo());
        let answers = match json!({"copies": "３"}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let checked =
            crate::form::check_answers(&def, &answers, crate::date::Date::new(2026, 5, 1).unwrap());
        assert_eq!(checked.errors, vec![]);
        let b = compute_fee(def.fee.as_ref().unwrap(), &checked.values).unwrap();
        assert_eq!(b.total, yen(900));
    }

    #[test]
    fn unanswered_or_zero_quantity_leaves_the_line_out() {
        let r = rule(json!({"timing": "at_submission", "lines": [
            {"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"},
            {"label": "基本料", "unit_price": 200}
        ]}));
        for v in [
            json!({}),
            json!({"copies": 0}),
            json!({"copies": "3"}),
            json!({"copies": -2}),
            json!({"copies": 1.5}),
        ] {
            let b = compute_fee(&r, &values(v.clone())).unwrap();
            assert_eq!(b.items.len(), 1, "{v}");
            assert_eq!(b.items[0].label, "基本料");
            assert_eq!(b.total, yen(200));
        }
        let only = rule(juminhyo());
        assert_eq!(
            compute_fee(&only, &BTreeMap::new()).unwrap(),
            FeeBreakdown {
                items: vec![],
                total: Yen::ZERO
            }
        );
    }

    #[test]
    fn a_line_with_when_counts_only_when_it_holds() {
        let r = rule(json!({"timing": "after_acceptance", "lines": [
            {"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"},
            {"label": "世帯全員分の加算", "unit_price": 100,
             "when": {"field": "with_family", "equals": "yes"}},
            {"label": "未回答の加算", "unit_price": 50,
             "when": {"field": "with_family", "answered": false}}
        ]}));
        let b = compute_fee(&r, &values(json!({"copies": 2, "with_family": "yes"}))).unwrap();
        let labels: Vec<&str> = b.items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["住民票の写し", "世帯全員分の加算"]);
        assert_eq!(b.total, yen(700));
        let b = compute_fee(&r, &values(json!({"copies": 2, "with_family": "no"}))).unwrap();
        assert_eq!(b.total, yen(600));
        let b = compute_fee(&r, &values(json!({"copies": 1}))).unwrap();
        assert_eq!(b.total, yen(350));
    }

    #[test]
    fn zero_price_lines_are_listed() {
        let r = rule(json!({"timing": "at_submission", "lines": [
            {"label": "証明書（無料）", "unit_price": 0}
        ]}));
        let b = compute_fee(&r, &BTreeMap::new()).unwrap();
        assert_eq!(b.items.len(), 1);
        assert_eq!(b.total, Yen::ZERO);
    }

    #[test]
    fn a_total_above_the_maximum_is_refused() {
        let r = rule(json!({"timing": "at_submission", "lines": [
            {"label": "写し", "unit_price": 9_999_999, "quantity_field": "copies"}
        ]}));
        assert_eq!(
            compute_fee(&r, &values(json!({"copies": 1})))
                .unwrap()
                .total,
            MAX_FEE
        );
        for copies in [
            json!(2),
            json!(u64::from(u32::MAX) + 1),
            json!(u64::MAX),
            json!(1e300),
        ] {
            let e = compute_fee(&r, &values(json!({"copies": copies}))).unwrap_err();
            assert_eq!(e.field, "fee");
            assert_eq!(e.code, "fee.too_large");
            assert!(e.message.contains("9,999,999円"), "{}", e.message);
        }
        // Two lines each within the limit, together above it.
        let r = rule(json!({"timing": "at_submission", "lines": [
            {"label": "a", "unit_price": 5_000_000},
            {"label": "b", "unit_price": 5_000_000}
        ]}));
        assert_eq!(
            compute_fee(&r, &BTreeMap::new()).unwrap_err().code,
            "fee.too_large"
        );
    }

    #[test]
    fn constants() {
        assert_eq!(MIN_CHARGE, yen(50));
        assert_eq!(MAX_FEE, yen(9_999_999));
        assert_eq!(
            serde_json::to_value(PaymentTiming::AtSubmission).unwrap(),
            "at_submission"
        );
    }
}
