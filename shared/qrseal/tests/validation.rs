//! Field-level validation of a pre-application: paths, codes, Japanese messages.

mod common;

use common::household;
use jiff::civil::date;
use madoguchi_qrseal::{FieldError, Relationship, parse_date, validate};

fn today() -> jiff::civil::Date {
    date(2026, 4, 1)
}

fn errors(app: &madoguchi_qrseal::PreApplication) -> Vec<(String, &'static str)> {
    match validate(app, today()) {
        Ok(()) => vec![],
        Err(e) => e
            .into_iter()
            .map(
                |FieldError {
                     field,
                     code,
                     message,
                 }| {
                    assert!(
                        !message.is_empty() && !message.is_ascii(),
                        "a Japanese message"
                    );
                    (field, code)
                },
            )
            .collect(),
    }
}

#[test]
fn the_sample_households_are_valid() {
    for n in 1..=10 {
        assert_eq!(errors(&household(n)), vec![], "household of {n}");
    }
}

#[test]
fn kana_must_be_full_width_katakana() {
    let mut app = household(3);
    app.members[0].family_kana = "たかはし".into();
    app.members[1].given_kana = "ﾐﾕｷ".into();
    app.members[2].given_kana = "Aoi".into();
    app.members[2].family_kana = String::new();
    assert_eq!(
        errors(&app),
        [
            ("members[0].family_kana".to_owned(), "katakana"),
            ("members[1].given_kana".to_owned(), "katakana"),
            ("members[2].family_kana".to_owned(), "required"),
            ("members[2].given_kana".to_owned(), "katakana"),
        ]
    );
    // Long vowel marks, spaces and the middle dot are katakana names too.
    app = household(1);
    app.members[0].given_kana = "ジョン・ルー　ケー".into();
    assert_eq!(errors(&app), vec![]);
}

#[test]
fn impossible_and_out_of_range_dates() {
    assert_eq!(
        parse_date("members[0].birth_date", "2023-02-29").unwrap_err(),
        FieldError::new(
            "members[0].birth_date",
            "invalid_date",
            "存在しない日付です。"
        )
    );
    assert_eq!(
        parse_date("move_date", "2026-4-1").unwrap_err().code,
        "date_format"
    );
    assert_eq!(
        parse_date("move_date", "2024-02-29").unwrap(),
        date(2024, 2, 29)
    );

    let mut app = household(2);
    app.members[1].birth_date = date(2026, 4, 2);
    app.members[0].birth_date = date(1899, 12, 31);
    app.move_date = date(2028, 1, 1);
    assert_eq!(
        errors(&app),
        [
            ("move_date".to_owned(), "out_of_range"),
            ("members[0].birth_date".to_owned(), "out_of_range"),
            ("members[1].birth_date".to_owned(), "future"),
        ]
    );
}

#[test]
fn required_fields_and_household_shape() {
    let mut app = household(3);
    app.members[0].family_name = " ".into();
    app.members[1].relationship = Relationship::Householder;
    app.new_address.address = String::new();
    app.old_address.postal_code = Some("154-0015".into());
    app.procedures.push("国保".into());
    assert_eq!(
        errors(&app),
        [
            ("old_address.postal_code".to_owned(), "invalid"),
            ("new_address.address".to_owned(), "required"),
            ("members[0].family_name".to_owned(), "required"),
            ("members[1].relationship".to_owned(), "householder_twice"),
            ("procedures[3]".to_owned(), "invalid"),
        ]
    );

    let mut app = household(2);
    app.members.swap(0, 1);
    let e = errors(&app);
    assert!(e.contains(&("members[0].relationship".to_owned(), "householder_first")));

    app.members.clear();
    assert_eq!(errors(&app), [("members".to_owned(), "required")]);

    let mut app = household(madoguchi_qrseal::model::MAX_MEMBERS + 1);
    assert_eq!(errors(&app), [("members".to_owned(), "too_many")]);
    app.members.truncate(1);
    app.members[0].nationality = Some("vn".into());
    app.members[0].given_name = String::new();
    app.members[0].given_kana = String::new();
    // A single-name foreign national needs no given name; the code must be upper case.
    assert_eq!(
        errors(&app),
        [("members[0].nationality".to_owned(), "invalid")]
    );
    app.members[0].relationship = Relationship::Other("\u{7}".into());
    assert!(errors(&app).contains(&("members[0].relationship".to_owned(), "householder_first")));
}
