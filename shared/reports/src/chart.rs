//! A bar chart of applications per day, stacked per procedure, as a self-contained SVG.
//!
//! Staff open it in a browser, paste it into a report or print it; it needs no script, no
//! web font and no external file. Each bar segment carries its numbers in `data-*`
//! attributes and a `<title>` (the hover text), so it can be checked against the report.

use std::fmt::Write as _;

use jiff::civil::{Date, Weekday};

use crate::Report;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 540;

const PLOT_LEFT: f64 = 72.0;
const PLOT_TOP: f64 = 84.0;
const PLOT_RIGHT: f64 = 690.0;
const PLOT_BOTTOM: f64 = 460.0;
const LEGEND_X: f64 = 708.0;
const LEGEND_Y: f64 = 92.0;
const LEGEND_ROW: f64 = 24.0;
/// Procedures shown on their own; with more, the smallest are merged into その他 so that
/// the colours stay tellable apart.
const MAX_SERIES: usize = 10;
/// Characters of a title shown in the legend; the full title is in the hover text.
const LEGEND_TITLE_CHARS: usize = 11;

/// Tableau 10: distinguishable in print and for most colour-blind readers. The last one,
/// grey, is kept for その他.
const PALETTE: [&str; 10] = [
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
    "#9C755F", "#BAB0AC",
];
const SATURDAY: &str = "#1F5FBF";
const SUNDAY: &str = "#C0392B";
const FONT: &str = "'Hiragino Sans','Yu Gothic','Meiryo','Noto Sans CJK JP',sans-serif";

struct Series<'a> {
    /// The form slug; `None` for その他.
    slug: Option<&'a str>,
    title: String,
    count: u64,
    per_day: Vec<u64>,
    color: &'static str,
}

/// A self-contained SVG of [`Report::by_day`], stacked per procedure.
pub fn svg_chart(report: &Report) -> String {
    let days = report.by_day.len();
    let series = series(report, days);
    let day_totals: Vec<u64> = (0..days)
        .map(|i| series.iter().map(|s| s.per_day[i]).sum())
        .collect();
    let max = day_totals.iter().copied().max().unwrap_or(0);
    let step = tick_step(max);
    let y_max = max.div_ceil(step).max(1).saturating_mul(step);
    let plot_height = PLOT_BOTTOM - PLOT_TOP;
    let scale = plot_height / y_max as f64;
    let slot = (PLOT_RIGHT - PLOT_LEFT) / days.max(1) as f64;
    let bar_width = slot * 0.7;

    let title = chart_title(report);
    let mut svg = String::with_capacity(16 * 1024);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" font-family="{FONT}">"##
    );
    let _ = write!(
        svg,
        r##"<title id="chart-title">{}</title><desc id="chart-desc">{}</desc>"##,
        escape(&title),
        escape(&summary(report))
    );
    let _ = write!(
        svg,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#FFFFFF"/>"##
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="36" font-size="22" font-weight="bold" text-anchor="middle" fill="#222222">{}</text>"##,
        WIDTH / 2,
        escape(&title)
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="62" font-size="14" text-anchor="middle" fill="#444444">{}</text>"##,
        WIDTH / 2,
        escape(&summary(report))
    );

    // Y axis: grid lines and counts.
    let _ = write!(svg, r##"<g class="y-axis" font-size="12" fill="#444444">"##);
    let mut tick = 0;
    while tick <= y_max {
        let y = PLOT_BOTTOM - tick as f64 * scale;
        let _ = write!(
            svg,
            r##"<line x1="{PLOT_LEFT}" y1="{y:.2}" x2="{PLOT_RIGHT}" y2="{y:.2}" stroke="{}" stroke-width="1"/><text x="{}" y="{:.2}" text-anchor="end">{tick}</text>"##,
            if tick == 0 { "#444444" } else { "#E0E0E0" },
            PLOT_LEFT - 8.0,
            y + 4.0
        );
        match tick.checked_add(step) {
            Some(next) => tick = next,
            None => break,
        }
    }
    let mid_y = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
    let _ = write!(
        svg,
        r##"<text x="24" y="{mid_y}" font-size="13" text-anchor="middle" transform="rotate(-90 24 {mid_y})">申請件数（件）</text></g>"##
    );

    // X axis: day labels, Saturdays blue and Sundays red as on Japanese calendars.
    let single_month = is_single_month(report);
    let label_width = if single_month { 16.0 } else { 36.0 };
    let label_every = ((label_width / slot).ceil() as usize).max(1);
    let _ = write!(
        svg,
        r##"<g class="x-axis" font-size="11" text-anchor="middle">"##
    );
    for (i, (date, _)) in report.by_day.iter().enumerate() {
        if i % label_every != 0 {
            continue;
        }
        let x = PLOT_LEFT + slot * (i as f64 + 0.5);
        let color = match date.weekday() {
            Weekday::Saturday => SATURDAY,
            Weekday::Sunday => SUNDAY,
            _ => "#444444",
        };
        let label = if single_month {
            date.day().to_string()
        } else {
            format!("{}/{}", date.month(), date.day())
        };
        let _ = write!(
            svg,
            r##"<text x="{x:.2}" y="{}" fill="{color}">{label}</text>"##,
            PLOT_BOTTOM + 18.0
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="13" fill="#444444">日付</text></g>"##,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        PLOT_BOTTOM + 44.0
    );

    // Bars: one rect per procedure and day with applications, stacked from the axis up.
    let _ = write!(
        svg,
        r##"<g class="plot" data-y-max="{y_max}" data-plot-height="{plot_height}" data-baseline="{PLOT_BOTTOM}">"##
    );
    for (i, (date, _)) in report.by_day.iter().enumerate() {
        let x = PLOT_LEFT + slot * i as f64 + (slot - bar_width) / 2.0;
        let mut top = PLOT_BOTTOM;
        for s in &series {
            let n = s.per_day[i];
            if n == 0 {
                continue;
            }
            let height = n as f64 * scale;
            top -= height;
            let _ = write!(
                svg,
                r##"<rect class="bar" x="{x:.2}" y="{top:.2}" width="{bar_width:.2}" height="{height:.2}" fill="{}" data-date="{date}" data-form="{}" data-count="{n}"><title>{}月{}日 {}: {n}件</title></rect>"##,
                s.color,
                escape(s.slug.unwrap_or("")),
                date.month(),
                date.day(),
                escape(&s.title)
            );
        }
    }
    if report.total == 0 {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="16" text-anchor="middle" fill="#666666">この期間の申請はありません</text>"##,
            (PLOT_LEFT + PLOT_RIGHT) / 2.0,
            mid_y
        );
    }
    svg.push_str("</g>");

    // Legend: procedures in stacking order, bottom of the bar first.
    let _ = write!(svg, r##"<g class="legend" font-size="12" fill="#222222">"##);
    for (k, s) in series.iter().enumerate() {
        let y = LEGEND_Y + LEGEND_ROW * k as f64;
        let _ = write!(
            svg,
            r##"<rect x="{LEGEND_X}" y="{:.2}" width="14" height="14" fill="{}"/><text x="{}" y="{:.2}">{}（{}件）<title>{}</title></text>"##,
            y - 11.0,
            s.color,
            LEGEND_X + 20.0,
            y,
            escape(&truncate(&s.title, LEGEND_TITLE_CHARS)),
            s.count,
            escape(&s.title)
        );
    }
    svg.push_str("</g></svg>\n");
    svg
}

/// Procedures with applications in the period, largest first; beyond [`MAX_SERIES`] the
/// rest are merged into one その他 series.
fn series(report: &Report, days: usize) -> Vec<Series<'_>> {
    let with_applications: Vec<_> = report
        .by_form
        .iter()
        .zip(&report.by_form_day)
        .filter(|(f, _)| f.count > 0)
        .collect();
    let shown = if with_applications.len() > MAX_SERIES {
        MAX_SERIES - 1
    } else {
        with_applications.len()
    };
    let mut out: Vec<Series<'_>> = with_applications[..shown]
        .iter()
        .enumerate()
        .map(|(k, (f, d))| Series {
            slug: Some(&f.slug),
            title: f.title.clone(),
            count: f.count,
            per_day: d.per_day.clone(),
            color: PALETTE[k],
        })
        .collect();
    let rest = &with_applications[shown..];
    if !rest.is_empty() {
        let mut per_day = vec![0; days];
        for (_, d) in rest {
            for (sum, n) in per_day.iter_mut().zip(&d.per_day) {
                *sum += n;
            }
        }
        out.push(Series {
            slug: None,
            title: format!("その他（{}手続）", rest.len()),
            count: rest.iter().map(|(f, _)| f.count).sum(),
            per_day,
            color: PALETTE[MAX_SERIES - 1],
        });
    }
    out
}

/// 1, 2 or 5 × 10ⁿ, so that the axis has at most about five ticks.
fn tick_step(max: u64) -> u64 {
    let raw = max.div_ceil(5).max(1);
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10 * magnitude)
}

fn is_single_month(report: &Report) -> bool {
    report.from.day() == 1 && report.to == report.from.last_of_month()
}

/// "2026年11月 申請件数" for a calendar month, the dates otherwise.
fn chart_title(report: &Report) -> String {
    let (from, to) = (report.from, report.to);
    if is_single_month(report) {
        format!("{}年{}月 申請件数", from.year(), from.month())
    } else if from == to {
        format!("{} 申請件数", japanese_date(from))
    } else {
        format!("{}〜{} 申請件数", japanese_date(from), japanese_date(to))
    }
}

fn japanese_date(date: Date) -> String {
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

fn summary(report: &Report) -> String {
    let average = report
        .average_hours_to_complete
        .map(|h| format!("{h:.1}時間"))
        .unwrap_or_else(|| "—".to_owned());
    format!(
        "合計 {}件　完了 {}件　平均処理時間 {}",
        report.total, report.completed, average
    )
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max_chars - 1).collect();
        out.push('…');
        out
    }
}

/// Text for XML content and attribute values: markup characters escaped, and characters
/// XML 1.0 does not allow (most control characters, U+FFFE, U+FFFF) replaced by U+FFFD,
/// so that no title typed by staff can break the file.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(3), 1);
        assert_eq!(tick_step(5), 1);
        assert_eq!(tick_step(6), 2);
        assert_eq!(tick_step(12), 5);
        assert_eq!(tick_step(37), 10);
        assert_eq!(tick_step(180), 50);
        assert_eq!(tick_step(1_000), 200);
        assert_eq!(tick_step(u64::MAX), 5_000_000_000_000_000_000);
    }

    #[test]
    fn escape_makes_any_text_safe() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{0}b\u{1B}\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("転入届", 12), "転入届");
        assert_eq!(
            truncate("あいうえおかきくけこさしすせそ", 12),
            "あいうえおかきくけこさ…"
        );
    }
}
