mod common;

use common::*;
use jiff::civil::date;
use madoguchi_reports::{Aggregator, FormCount, MAX_PERIOD_DAYS, ReportRow};
use proptest::prelude::*;

#[test]
fn counts_a_month_in_japan_standard_time() {
    let r = sample();
    assert_eq!((r.from, r.to), november());
    assert_eq!(r.total, 6);
    assert_eq!(r.by_day.len(), 30);
    assert_eq!(r.by_day[0], (date(2026, 11, 1), 0));
    assert_eq!(r.by_day[1], (date(2026, 11, 2), 4));
    assert_eq!(r.by_day[14], (date(2026, 11, 15), 1));
    assert_eq!(r.by_day[29], (date(2026, 11, 30), 1));
    assert_eq!(r.by_day.iter().map(|d| d.1).sum::<u64>(), 6);

    let mut hours = [0u64; 24];
    for h in [9, 13, 23, 8, 10, 22] {
        hours[h] += 1;
    }
    assert_eq!(r.by_hour, hours);

    assert_eq!(
        r.by_status
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("completed", 3),
            ("in_review", 1),
            ("received", 1),
            ("returned", 1)
        ]
    );
    assert_eq!(
        r.by_department
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("kodomo", 2), ("shimin", 4)]
    );
}

#[test]
fn completions_are_counted_in_the_month_they_happen() {
    let r = sample();
    // tennyu: 2 h and 20 h; inkan: 16 h (submitted in October). jido-teate's completion is
    // in December.
    assert_eq!(r.completed, 3);
    assert_eq!(r.average_hours_to_complete, Some((2.0 + 20.0 + 16.0) / 3.0));
    assert_eq!(
        r.by_form,
        vec![
            FormCount {
                slug: "tennyu".into(),
                title: "転入届".into(),
                department: "shimin".into(),
                count: 4,
                completed: 2,
                average_hours_to_complete: Some(11.0),
            },
            FormCount {
                slug: "jido-teate".into(),
                title: "児童手当認定請求".into(),
                department: "kodomo".into(),
                count: 2,
                completed: 0,
                average_hours_to_complete: None,
            },
            FormCount {
                slug: "inkan".into(),
                title: "印鑑登録証明書交付申請".into(),
                department: "shimin".into(),
                count: 0,
                completed: 1,
                average_hours_to_complete: Some(16.0),
            },
        ]
    );
    assert_eq!(
        r.by_form_day
            .iter()
            .map(|f| f.slug.as_str())
            .collect::<Vec<_>>(),
        ["tennyu", "jido-teate", "inkan"]
    );
    assert_eq!(r.by_form_day[0].per_day[1], 3);
    assert_eq!(r.by_form_day[2].per_day, vec![0; 30]);
}

#[test]
fn period_edges_are_tokyo_midnight() {
    let (from, to) = november();
    let at = |utc: &str| ReportRow {
        submitted_at: utc.parse().unwrap(),
        ..row("tennyu", "received", "2026-11-01 00:00", None)
    };
    let r = report(
        from,
        to,
        &[
            at("2026-10-31T14:59:59Z"), // 10-31 23:59:59 JST: out
            at("2026-10-31T15:00:00Z"), // 11-01 00:00 JST: in
            at("2026-11-30T14:59:59Z"), // 11-30 23:59:59 JST: in
            at("2026-11-30T15:00:00Z"), // 12-01 00:00 JST: out
        ],
    );
    assert_eq!(r.total, 2);
    assert_eq!(r.by_day[0].1, 1);
    assert_eq!(r.by_day[29].1, 1);
    assert_eq!(r.by_hour[0], 1);
    assert_eq!(r.by_hour[23], 1);
}

#[test]
fn only_status_completed_counts_as_completed() {
    let (from, to) = november();
    let r = report(
        from,
        to,
        &[
            row(
                "tennyu",
                "rejected",
                "2026-11-02 09:00",
                Some("2026-11-02 10:00"),
            ),
            row(
                "tennyu",
                "withdrawn",
                "2026-11-02 09:00",
                Some("2026-11-02 10:00"),
            ),
            row("tennyu", "completed", "2026-11-02 09:00", None),
        ],
    );
    assert_eq!(r.total, 3);
    assert_eq!(r.completed, 0);
    assert_eq!(r.average_hours_to_complete, None);
}

#[test]
fn a_completion_before_the_submission_counts_as_zero_hours() {
    let (from, to) = november();
    let r = report(
        from,
        to,
        &[
            row(
                "tennyu",
                "completed",
                "2026-11-02 09:00",
                Some("2026-11-02 08:00"),
            ),
            row(
                "tennyu",
                "completed",
                "2026-11-02 09:00",
                Some("2026-11-02 13:00"),
            ),
        ],
    );
    assert_eq!(r.completed, 2);
    assert_eq!(r.average_hours_to_complete, Some(2.0));
}

#[test]
fn an_empty_period_still_lists_every_day() {
    let r = Aggregator::new(date(2026, 2, 1), date(2026, 2, 28)).finish();
    assert_eq!(r.total, 0);
    assert_eq!(r.by_day.len(), 28);
    assert!(r.by_day.iter().all(|(_, n)| *n == 0));
    assert!(r.by_form.is_empty() && r.by_form_day.is_empty());
    assert_eq!(r.average_hours_to_complete, None);
}

#[test]
fn reversed_periods_are_swapped_and_long_ones_cut() {
    let r = Aggregator::new(date(2026, 11, 30), date(2026, 11, 1)).finish();
    assert_eq!((r.from, r.to), november());

    let r = Aggregator::new(date(2000, 1, 1), date(2099, 12, 31)).finish();
    assert_eq!(r.by_day.len() as i64, MAX_PERIOD_DAYS);
    assert_eq!(r.from, date(2000, 1, 1));
    assert_eq!(r.to, date(2000, 12, 31)); // 2000 is a leap year: 366 days
    assert_eq!(r.by_day.last().unwrap().0, r.to);

    let r = Aggregator::new(date(2026, 11, 3), date(2026, 11, 3)).finish();
    assert_eq!(r.by_day, vec![(date(2026, 11, 3), 0)]);
}

#[test]
fn the_latest_title_of_a_renamed_form_wins_in_any_order() {
    let (from, to) = november();
    let mut old = row("tennyu", "received", "2026-11-02 09:00", None);
    old.form_title = "転入届（旧）".into();
    let new = row("tennyu", "received", "2026-11-20 09:00", None);
    for rows in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
        assert_eq!(report(from, to, &rows).by_form[0].title, "転入届");
    }
    // Same instant: decided by the text, not by the order.
    let mut same = old.clone();
    same.submitted_at = new.submitted_at;
    for rows in [[same.clone(), new.clone()], [new.clone(), same.clone()]] {
        assert_eq!(report(from, to, &rows).by_form[0].title, "転入届（旧）");
    }
}

#[test]
fn serializes_dates_as_iso_strings() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(json["from"], "2026-11-01");
    assert_eq!(json["by_day"][1], serde_json::json!(["2026-11-02", 4]));
    assert_eq!(json["by_hour"].as_array().unwrap().len(), 24);
}

fn arbitrary_row() -> impl Strategy<Value = ReportRow> {
    let forms = prop::sample::select(vec!["tennyu", "jido-teate", "inkan", "a", "b"]);
    let statuses = prop::sample::select(vec![
        "received",
        "in_review",
        "returned",
        "on_hold",
        "completed",
        "rejected",
        "withdrawn",
    ]);
    // October 15 to December 15, 2026, in seconds.
    let start = jst("2026-10-15 00:00").as_second();
    let end = jst("2026-12-15 00:00").as_second();
    (
        forms,
        statuses,
        start..end,
        prop::option::of(-3_600i64..40 * 86_400),
    )
        .prop_map(|(form, status, submitted, took)| {
            let mut r = row(form, status, "2026-11-01 00:00", None);
            r.submitted_at = jiff::Timestamp::from_second(submitted).unwrap();
            r.completed_at = took.map(|t| jiff::Timestamp::from_second(submitted + t).unwrap());
            r
        })
}

proptest! {
    #[test]
    fn totals_agree_and_order_does_not_matter(
        rows in prop::collection::vec(arbitrary_row(), 0..200),
        seed in any::<u64>(),
    ) {
        let (from, to) = november();
        let r = report(from, to, &rows);
        prop_assert_eq!(r.by_day.len(), 30);
        prop_assert_eq!(r.by_day.iter().map(|d| d.1).sum::<u64>(), r.total);
        prop_assert_eq!(r.by_hour.iter().sum::<u64>(), r.total);
        prop_assert_eq!(r.by_status.values().sum::<u64>(), r.total);
        prop_assert_eq!(r.by_department.values().sum::<u64>(), r.total);
        prop_assert_eq!(r.by_form.iter().map(|f| f.count).sum::<u64>(), r.total);
        prop_assert_eq!(r.by_form.iter().map(|f| f.completed).sum::<u64>(), r.completed);
        for (i, (_, n)) in r.by_day.iter().enumerate() {
            prop_assert_eq!(r.by_form_day.iter().map(|f| f.per_day[i]).sum::<u64>(), *n);
        }
        for (f, d) in r.by_form.iter().zip(&r.by_form_day) {
            prop_assert_eq!(&f.slug, &d.slug);
            prop_assert_eq!(d.per_day.iter().sum::<u64>(), f.count);
        }
        prop_assert_eq!(r.average_hours_to_complete.is_some(), r.completed > 0);

        // The same rows in another order give the same report (up to float rounding of
        // the averages, which are sums of whole seconds and so exact here).
        let mut shuffled = rows.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(report(from, to, &shuffled), r);
    }
}
