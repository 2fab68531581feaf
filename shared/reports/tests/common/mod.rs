#![allow(dead_code)] // each test file uses its own part of the helpers

use jiff::Timestamp;
use jiff::civil::{Date, date};
use madoguchi_reports::{Aggregator, Report, ReportRow};

/// A timestamp written in Japan Standard Time, e.g. "2026-11-03 10:15".
pub fn jst(s: &str) -> Timestamp {
    format!("{}:00+09:00", s.replace(' ', "T")).parse().unwrap()
}

pub fn row(form: &str, status: &str, submitted: &str, completed: Option<&str>) -> ReportRow {
    let (title, department) = match form {
        "tennyu" => ("転入届", "shimin"),
        "jido-teate" => ("児童手当認定請求", "kodomo"),
        "inkan" => ("印鑑登録証明書交付申請", "shimin"),
        other => (other, "somu"),
    };
    ReportRow {
        form: form.to_owned(),
        form_title: title.to_owned(),
        department: department.to_owned(),
        status: status.to_owned(),
        submitted_at: jst(submitted),
        completed_at: completed.map(jst),
    }
}

pub fn november() -> (Date, Date) {
    (date(2026, 11, 1), date(2026, 11, 30))
}

pub fn report(from: Date, to: Date, rows: &[ReportRow]) -> Report {
    let mut agg = Aggregator::new(from, to);
    for r in rows {
        agg.add(r);
    }
    agg.finish()
}

/// A small November: three procedures, completions inside and across the month edges.
pub fn sample() -> Report {
    let (from, to) = november();
    report(
        from,
        to,
        &[
            row(
                "tennyu",
                "completed",
                "2026-11-02 09:00",
                Some("2026-11-02 11:00"),
            ),
            row(
                "tennyu",
                "completed",
                "2026-11-02 13:30",
                Some("2026-11-03 09:30"),
            ),
            row("tennyu", "received", "2026-11-02 23:59", None),
            row("tennyu", "in_review", "2026-11-15 08:00", None),
            row("jido-teate", "returned", "2026-11-02 10:00", None),
            row(
                "jido-teate",
                "completed",
                "2026-11-30 22:00",
                Some("2026-12-01 09:00"),
            ),
            // Submitted in October, completed in November: a completion, not an application.
            row(
                "inkan",
                "completed",
                "2026-10-31 17:00",
                Some("2026-11-01 09:00"),
            ),
            // Outside the period on both counts.
            row("tennyu", "received", "2026-12-01 00:00", None),
            row(
                "tennyu",
                "completed",
                "2026-10-01 00:00",
                Some("2026-10-02 00:00"),
            ),
        ],
    )
}
