mod common;

use common::*;
use madoguchi_reports::{MONTHLY_USAGE_HEADER, monthly_usage_csv, monthly_usage_rows};

#[test]
fn monthly_usage_table_is_excel_ready() {
    let csv = monthly_usage_csv(&sample());
    assert_eq!(
        csv,
        "\u{FEFF}集計開始日,集計終了日,手続ID,手続名,担当課ID,申請件数,完了件数,平均処理時間（時間）\r\n\
         2026-11-01,2026-11-30,tennyu,転入届,shimin,4,2,11.0\r\n\
         2026-11-01,2026-11-30,jido-teate,児童手当認定請求,kodomo,2,0,\r\n\
         2026-11-01,2026-11-30,inkan,印鑑登録証明書交付申請,shimin,0,1,16.0\r\n\
         2026-11-01,2026-11-30,,合計,,6,3,12.7\r\n"
    );
}

#[test]
fn staff_typed_titles_cannot_become_formulas() {
    let (from, to) = november();
    let mut r = row("x", "received", "2026-11-02 09:00", None);
    r.form_title = "=HYPERLINK(\"http://evil\",\"申請\")".into();
    let csv = monthly_usage_csv(&report(from, to, &[r]));
    assert!(
        csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"申請\"\")\",somu,1,0,\r\n"),
        "{csv}"
    );
}

#[test]
fn rows_can_be_streamed_in_cp932() {
    let rows = monthly_usage_rows(&sample());
    let mut w = madoguchi_csvexport::CsvWriter::new(
        Vec::new(),
        madoguchi_csvexport::CsvEncoding::Cp932,
        &MONTHLY_USAGE_HEADER,
    )
    .unwrap();
    for row in &rows {
        assert!(w.write_row(row).unwrap().is_empty());
    }
    let bytes = w.finish().unwrap();
    let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!had_errors);
    // Same table as the UTF-8 one, without the BOM.
    assert_eq!(
        text,
        monthly_usage_csv(&sample()).trim_start_matches('\u{FEFF}')
    );
}
