//! One application → one row of a target layout, through the system's mapping.

use jiff::civil::Date;
use madoguchi_applications::outbox::ExportError;
use madoguchi_applications::records::ApplicationRecord;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, FieldCipher, Sealed};
use madoguchi_linkage::{
    ColumnType, FormMapping, Layout, RowError, Source, SourcePath, format_date, parse_path,
};
use madoguchi_ports::PortResult;
use serde_json::Value;

/// A value found at a path.
enum Found {
    Text(String),
    /// A sealed answer (個人番号) and the answer key it is bound to.
    Sealed(Sealed, String),
    Missing,
}

/// Why an application does not make a row (never the value itself).
fn problem(column: &str, code: &str, message: &str) -> ExportError {
    ExportError {
        column: column.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

pub(crate) fn from_row_errors(errors: Vec<RowError>) -> Vec<ExportError> {
    errors
        .into_iter()
        .map(|e| ExportError {
            column: e.column,
            code: e.code,
            message: e.message,
        })
        .collect()
}

fn text_of(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        Value::Object(_) => return None,
    })
}

fn find(record: &ApplicationRecord, path: &str) -> Result<Found, &'static str> {
    match parse_path(path) {
        Some(SourcePath::App(field)) => Ok(Found::Text(match field {
            "id" => record.id.to_string(),
            "receipt" => record.receipt.clone(),
            "form" => record.slug.clone(),
            "form_version" => record.form_version.to_string(),
            "form_title" => record.form_title.clone(),
            "status" => record.status.as_str().to_owned(),
            "submitted_at" => record.submitted_at.clone(),
            "completed_at" => record.completed_at.clone().unwrap_or_default(),
            _ => return Err("unknown_path"),
        })),
        Some(SourcePath::Answer { key, parts }) => {
            let Some(mut v) = record.answers.get(key) else {
                return Ok(Found::Missing);
            };
            for p in &parts {
                match v.get(p) {
                    Some(next) => v = next,
                    None => return Ok(Found::Missing),
                }
            }
            if let Some(sealed) = v.get("sealed") {
                let sealed: Sealed =
                    serde_json::from_value(sealed.clone()).map_err(|_| "sealed_unreadable")?;
                return Ok(Found::Sealed(sealed, key.to_owned()));
            }
            text_of(v).map(Found::Text).ok_or("not_a_value")
        }
        None => Err("unknown_path"),
    }
}

/// Dates arrive as ISO dates (answers) or timestamps (`app.submitted_at`); a date column
/// wants them in its own format. A timestamp's day is the day in Japan (UTC+9, no DST).
fn as_date(text: &str) -> Option<Date> {
    if let Ok(d) = text.parse::<Date>() {
        return Some(d);
    }
    let ts = text.parse::<jiff::Timestamp>().ok()?;
    Some(
        ts.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
            .date(),
    )
}

/// The row of `record` for `layout` (values in column order), or why the mapping cannot make
/// one. Whether the row fits the layout is the writer's check (`FileWriter::check` / `push`),
/// done once by the caller. Reveals a 個人番号 only into a `my_number` column.
pub(crate) async fn build_row(
    cipher: &FieldCipher,
    tenant: &TenantId,
    layout: &Layout,
    mapping: &FormMapping,
    record: &ApplicationRecord,
) -> PortResult<Result<Vec<String>, Vec<ExportError>>> {
    let mut values = Vec::with_capacity(layout.columns.len());
    let mut errors = Vec::new();
    for column in &layout.columns {
        let label = column.label.as_str();
        let Some(source) = mapping.columns.get(&column.name) else {
            values.push(String::new());
            continue;
        };
        let mut texts = Vec::new();
        let mut failed = false;
        for path in source.paths() {
            match find(record, path) {
                Ok(Found::Text(t)) => texts.push(t),
                Ok(Found::Missing) => texts.push(String::new()),
                Ok(Found::Sealed(sealed, key)) => {
                    if column.ty != ColumnType::MyNumber {
                        errors.push(problem(
                            label,
                            "sealed_into_plain_column",
                            "暗号化された項目（個人番号）は個人番号の列にしか出力できません。",
                        ));
                        failed = true;
                        continue;
                    }
                    let id = record.id.to_string();
                    let plain = cipher
                        .open(
                            tenant,
                            &Binding {
                                record: &id,
                                field: &key,
                            },
                            &sealed,
                        )
                        .await?;
                    match String::from_utf8(plain.to_vec()) {
                        Ok(s) => texts.push(s),
                        Err(_) => {
                            errors.push(problem(
                                label,
                                "sealed_unreadable",
                                "暗号化された項目を読めません。",
                            ));
                            failed = true;
                        }
                    }
                }
                Err(code) => {
                    errors.push(problem(
                        label,
                        code,
                        "連携設定の参照先が値ではありません（部分を指定してください）。",
                    ));
                    failed = true;
                }
            }
        }
        if failed {
            values.push(String::new());
            continue;
        }
        let mut value = match source {
            Source::Const { value } => value.clone(),
            Source::Path(_) => texts.pop().unwrap_or_default(),
            Source::Join { sep, .. } => texts
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(sep),
            Source::Map { map, .. } => {
                let t = texts.pop().unwrap_or_default();
                if t.is_empty() {
                    t
                } else if let Some(code) = map.get(&t) {
                    code.clone()
                } else {
                    errors.push(problem(
                        label,
                        "map.missing",
                        "回答の値が連携設定の変換表にありません。",
                    ));
                    String::new()
                }
            }
        };
        if column.ty == ColumnType::Date
            && !value.is_empty()
            && let (Some(date), Some(format)) = (as_date(&value), column.date_format)
        {
            match format_date(date, format) {
                Some(s) => value = s,
                None => errors.push(problem(
                    label,
                    "date.out_of_range",
                    "和暦で表せない日付です。",
                )),
            }
        }
        values.push(value);
    }
    Ok(if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    })
}
