//! The monthly usage table per procedure (各手続におけるオンライン申請の利用状況), seed 000
//! section 10(2).

use madoguchi_csvexport::{CsvEncoding, CsvWriter};

use crate::Report;

/// Column headers of the usage table, in the Japanese staff read.
///
/// The period is repeated on every row so that tables of several months pasted together
/// in Excel stay readable.
pub const MONTHLY_USAGE_HEADER: [&str; 8] = [
    "集計開始日",
    "集計終了日",
    "手続ID",
    "手続名",
    "担当課ID",
    "申請件数",
    "完了件数",
    "平均処理時間（時間）",
];

/// Name of the last row, which adds up all procedures.
pub const TOTAL_ROW_LABEL: &str = "合計";

/// The rows of the usage table: one per procedure in [`Report::by_form`] order, then the
/// total. Average hours have one decimal; a procedure with no completion has an empty cell
/// (not 0, which would read as "done instantly").
///
/// For callers that stream the table through their own [`CsvWriter`] (e.g. in CP932).
pub fn monthly_usage_rows(report: &Report) -> Vec<[String; 8]> {
    let from = report.from.to_string();
    let to = report.to.to_string();
    let mut rows: Vec<[String; 8]> = report
        .by_form
        .iter()
        .map(|f| {
            [
                from.clone(),
                to.clone(),
                f.slug.clone(),
                f.title.clone(),
                f.department.clone(),
                f.count.to_string(),
                f.completed.to_string(),
                hours(f.average_hours_to_complete),
            ]
        })
        .collect();
    rows.push([
        from,
        to,
        String::new(),
        TOTAL_ROW_LABEL.to_owned(),
        String::new(),
        report.total.to_string(),
        report.completed.to_string(),
        hours(report.average_hours_to_complete),
    ]);
    rows
}

/// The usage table as a UTF-8 CSV with BOM (it starts with U+FEFF), CRLF line ends and
/// the export rules of `madoguchi-csvexport`, so that form titles typed by staff cannot
/// turn into spreadsheet formulas.
pub fn monthly_usage_csv(report: &Report) -> String {
    // Writing into a Vec cannot fail, and every row has the header's length.
    let mut writer = CsvWriter::new(Vec::new(), CsvEncoding::Utf8Bom, &MONTHLY_USAGE_HEADER)
        .expect("writing to a Vec cannot fail");
    for row in monthly_usage_rows(report) {
        writer
            .write_row(&row)
            .expect("writing to a Vec cannot fail");
    }
    let bytes = writer.finish().expect("writing to a Vec cannot fail");
    String::from_utf8(bytes).expect("the UTF-8 writer writes UTF-8")
}

fn hours(value: Option<f64>) -> String {
    value.map(|h| format!("{h:.1}")).unwrap_or_default()
}
