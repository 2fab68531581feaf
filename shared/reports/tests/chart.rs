mod common;

use std::collections::BTreeMap;

use common::*;
use jiff::civil::date;
use madoguchi_reports::{Aggregator, Report, svg_chart};
use proptest::prelude::*;

struct Bar {
    date: String,
    form: String,
    count: u64,
    y: f64,
    height: f64,
}

fn bars(doc: &roxmltree::Document) -> Vec<Bar> {
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().to_owned();
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
        .map(|n| Bar {
            date: attr(n, "data-date"),
            form: attr(n, "data-form"),
            count: attr(n, "data-count").parse().unwrap(),
            y: attr(n, "y").parse().unwrap(),
            height: attr(n, "height").parse().unwrap(),
        })
        .collect()
}

/// Checks the chart against the report: one bar segment per procedure and day with
/// applications, heights proportional to counts, segments stacked without gaps.
fn check(report: &Report, svg: &str) {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    let root = doc.root_element();
    assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    assert_eq!(root.attribute("width"), Some("960"));
    assert_eq!(root.attribute("height"), Some("540"));
    assert!(!doc.descendants().any(|n| n.has_tag_name("script")));

    let plot = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("plot"))
        .unwrap();
    let y_max: f64 = plot.attribute("data-y-max").unwrap().parse().unwrap();
    let plot_height: f64 = plot.attribute("data-plot-height").unwrap().parse().unwrap();
    let baseline: f64 = plot.attribute("data-baseline").unwrap().parse().unwrap();
    let max_day = report.by_day.iter().map(|d| d.1).max().unwrap_or(0);
    assert!(y_max >= max_day as f64 && y_max >= 1.0);

    let bars = bars(&doc);
    let cells: usize = report
        .by_form_day
        .iter()
        .map(|f| f.per_day.iter().filter(|n| **n > 0).count())
        .sum();
    if report
        .by_form_day
        .iter()
        .filter(|f| f.per_day.iter().any(|n| *n > 0))
        .count()
        <= 10
    {
        assert_eq!(bars.len(), cells);
    }
    let mut per_date: BTreeMap<&str, Vec<&Bar>> = BTreeMap::new();
    for bar in &bars {
        assert!(bar.count > 0);
        let expected = bar.count as f64 * plot_height / y_max;
        assert!(
            (bar.height - expected).abs() < 0.011,
            "{} vs {expected}",
            bar.height
        );
        per_date.entry(&bar.date).or_default().push(bar);
    }
    for (day, total) in &report.by_day {
        let stack = per_date
            .remove(day.to_string().as_str())
            .unwrap_or_default();
        assert_eq!(stack.iter().map(|b| b.count).sum::<u64>(), *total, "{day}");
        let mut bottom = baseline;
        for bar in stack {
            assert!(
                (bar.y + bar.height - bottom).abs() < 0.02,
                "{day}: gap in the stack"
            );
            bottom = bar.y;
        }
    }
    assert!(per_date.is_empty(), "bars outside the period");
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .map(|d| d.text().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn month_chart_matches_the_report() {
    let report = sample();
    let svg = svg_chart(&report);
    check(&report, &svg);
    let texts = texts(&svg);
    assert!(texts.contains(&"2026年11月 申請件数".to_owned()));
    assert!(texts.iter().any(|t| t.starts_with("合計 6件")));
    assert!(texts.contains(&"申請件数（件）".to_owned()));
    assert!(texts.contains(&"日付".to_owned()));
    // Legend: procedures with applications, largest first.
    assert!(texts.iter().any(|t| t.starts_with("転入届（4件）")));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("児童手当認定請求（2件）"))
    );
    // Only completions in the month: no bar, no legend entry.
    assert!(
        !texts
            .iter()
            .any(|t| t.starts_with("印鑑登録証明書交付申請"))
    );
    // Every day of November is labelled.
    for d in 1..=30 {
        assert!(texts.contains(&d.to_string()), "{d}");
    }

    let doc = roxmltree::Document::parse(&svg).unwrap();
    let bars = bars(&doc);
    assert_eq!(bars.len(), 4); // 11-02: 転入届 3 + 児童手当 1; 11-15; 11-30
    let nov2: Vec<_> = bars.iter().filter(|b| b.date == "2026-11-02").collect();
    assert_eq!(
        nov2.iter()
            .map(|b| (b.form.as_str(), b.count))
            .collect::<Vec<_>>(),
        [("tennyu", 3), ("jido-teate", 1)]
    );
    // Taller bar for more applications.
    assert!(nov2[0].height > nov2[1].height * 2.9);
}

#[test]
fn titles_are_escaped() {
    let (from, to) = november();
    let mut r = row("x", "received", "2026-11-02 09:00", None);
    r.form_title = "<script>alert(\"&\")</script>\u{0}'".into();
    r.form = "a\"b".into();
    let report = report(from, to, &[r]);
    let svg = svg_chart(&report);
    check(&report, &svg);
    assert!(!svg.contains("<script>"));
    // Legend: cut to fit, with the full title as its hover text.
    assert!(
        texts(&svg)
            .iter()
            .any(|t| t.starts_with("<script>al…（1件）"))
    );
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(
        doc.descendants().any(|n| n.has_tag_name("title")
            && n.text() == Some("<script>alert(\"&\")</script>\u{FFFD}'"))
    );
}

#[test]
fn many_procedures_are_merged_into_others() {
    let (from, to) = november();
    let rows: Vec<_> = (0..14)
        .flat_map(|k| {
            (0..=k).map(move |_| {
                row(
                    &format!("form-{k:02}"),
                    "received",
                    "2026-11-05 10:00",
                    None,
                )
            })
        })
        .collect();
    let report = report(from, to, &rows);
    let svg = svg_chart(&report);
    check(&report, &svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let bars = bars(&doc);
    assert_eq!(bars.len(), 10);
    let others = bars.iter().find(|b| b.form.is_empty()).unwrap();
    assert_eq!(others.count, 1 + 2 + 3 + 4 + 5); // the five smallest
    assert!(
        texts(&svg)
            .iter()
            .any(|t| t.starts_with("その他（5手続）（15件）"))
    );
}

#[test]
fn an_empty_month_says_so() {
    let report = Aggregator::new(date(2026, 2, 1), date(2026, 2, 28)).finish();
    let svg = svg_chart(&report);
    check(&report, &svg);
    assert!(texts(&svg).contains(&"この期間の申請はありません".to_owned()));
    assert!(texts(&svg).contains(&"2026年2月 申請件数".to_owned()));
}

#[test]
fn other_periods_are_titled_with_dates_and_thinned_labels() {
    let report = Aggregator::new(date(2026, 4, 1), date(2027, 3, 31)).finish();
    let svg = svg_chart(&report);
    check(&report, &svg);
    let all = texts(&svg);
    assert!(all.contains(&"2026年4月1日〜2027年3月31日 申請件数".to_owned()));
    let labels = all.iter().filter(|t| t.contains('/')).count();
    assert!(labels > 5 && labels < 40, "{labels} day labels");

    let report = Aggregator::new(date(2026, 11, 3), date(2026, 11, 3)).finish();
    assert!(texts(&svg_chart(&report)).contains(&"2026年11月3日 申請件数".to_owned()));
}

proptest! {
    #[test]
    fn any_titles_and_counts_give_a_well_formed_matching_chart(
        titles in prop::collection::vec(any::<String>(), 1..14),
        picks in prop::collection::vec((0usize..14, 0i64..30 * 86_400), 0..120),
    ) {
        let (from, to) = november();
        let start = jst("2026-11-01 00:00").as_second();
        let rows: Vec<_> = picks
            .iter()
            .map(|(k, offset)| {
                let k = k % titles.len();
                let mut r = row(&format!("form-{k}"), "received", "2026-11-01 00:00", None);
                r.form_title = titles[k].clone();
                r.submitted_at = jiff::Timestamp::from_second(start + offset).unwrap();
                r
            })
            .collect();
        let report = report(from, to, &rows);
        check(&report, &svg_chart(&report));
    }
}
