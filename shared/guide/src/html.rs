//! The printable result (手続き案内票): one self-contained HTML page, A4, one
//! department a page, nothing fetched from elsewhere (kiosks and LGWAN terminals
//! may print offline).

use std::fmt::Write;

use jiff::civil::Date;
use madoguchi_domain::format_wareki;

use crate::eval::{ApplicableProcedure, Outcome};
use crate::model::Guide;

const CSS: &str = "\
@page { size: A4; margin: 15mm; }
body { font-family: 'BIZ UDPGothic', 'Hiragino Sans', 'Yu Gothic', 'Meiryo', sans-serif; color: #000; font-size: 11pt; line-height: 1.6; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 4mm; }
h2 { font-size: 14pt; border-bottom: 1.5pt solid #000; margin: 6mm 0 3mm; }
h3 { font-size: 12pt; margin: 4mm 0 1mm; }
.dept { break-inside: auto; }
.dept + .dept { break-before: page; page-break-before: always; }
.proc { break-inside: avoid; page-break-inside: avoid; border: 0.75pt solid #000; padding: 2mm 3mm; margin: 0 0 3mm; }
dl { margin: 0; display: grid; grid-template-columns: 7em 1fr; }
dt { font-weight: bold; }
dd { margin: 0; }
.meta, .note { font-size: 10pt; }
.code { font-family: monospace; word-break: break-all; }
.box { display: inline-block; width: 1em; height: 1em; border: 1pt solid #000; vertical-align: middle; margin-right: 0.5em; }
@media screen { body { max-width: 180mm; margin: 10mm auto; padding: 0 5mm; } }
";

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn date_text(d: Date) -> String {
    let western = format!("{}年{}月{}日", d.year(), d.month(), d.day());
    match format_wareki(d) {
        Ok(w) => format!("{w}（{western}）"),
        Err(_) => western,
    }
}

/// Renders `outcome` of `guide` as a printable page. `code` is the procedure-guide
/// code text; the caller places its QR image next to it when it has one.
pub fn render_html(guide: &Guide, outcome: &Outcome, code: Option<&str>) -> String {
    let event_name = guide
        .event(&outcome.event)
        .map_or(outcome.event.as_str(), |e| e.name.as_str());
    let mut h = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>{}：{}の手続き</h1>\n",
        escape(&guide.name),
        escape(event_name),
        escape(&guide.name),
        escape(event_name),
    );
    if !outcome.complete {
        h.push_str(
            "<p class=\"note\">回答が終わっていないため、手続きの一覧は途中のものです。</p>\n",
        );
    }
    if let Some(c) = code {
        let _ = writeln!(
            h,
            "<p class=\"meta\">窓口でこの案内票のコードを読み取ると、手続きの状況を確認できます。<br><span class=\"code\">{}</span></p>",
            escape(c)
        );
    }
    if outcome.procedures.is_empty() {
        h.push_str("<p>該当する手続きはありません。</p>\n");
    }
    // Departments in the order their first procedure appears.
    let mut departments: Vec<&str> = Vec::new();
    for p in &outcome.procedures {
        if !departments.contains(&p.department.as_str()) {
            departments.push(&p.department);
        }
    }
    for dept in departments {
        let _ = writeln!(h, "<section class=\"dept\">\n<h2>{}</h2>", escape(dept));
        for p in outcome.procedures.iter().filter(|p| p.department == dept) {
            procedure(&mut h, p);
        }
        h.push_str("</section>\n");
    }
    h.push_str("<p class=\"note\">期限の最終日が閉庁日にあたるときは、次の開庁日までとなります。内容は市町村によって異なることがあります。</p>\n</body>\n</html>\n");
    h
}

fn procedure(h: &mut String, p: &ApplicableProcedure) {
    let mut title = escape(&p.name);
    if p.optional {
        title.push_str("（任意）");
    }
    let _ = write!(
        h,
        "<div class=\"proc\">\n<h3><span class=\"box\"></span>{title}</h3>\n<dl>\n<dt>窓口</dt><dd>{}</dd>\n",
        escape(&p.counter)
    );
    if let Some(d) = &p.deadline {
        let due = p
            .due
            .map(|d| format!("（{}まで）", date_text(d)))
            .unwrap_or_default();
        let _ = writeln!(h, "<dt>期限</dt><dd>{}{due}</dd>", escape(d));
    }
    if !p.bring.is_empty() {
        h.push_str("<dt>持ち物</dt><dd><ul>");
        for b in &p.bring {
            let _ = write!(h, "<li>{}</li>", escape(b));
        }
        h.push_str("</ul></dd>\n");
    }
    h.push_str("</dl>\n");
    for text in [&p.description, &p.note] {
        if !text.is_empty() {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(text));
        }
    }
    if p.municipality_specific {
        h.push_str("<p class=\"note\">※市町村独自の制度です。</p>\n");
    }
    h.push_str("</div>\n");
}
