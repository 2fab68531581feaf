//! CSV export (streamed into the exports bucket, handed out as a presigned link) and reports.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use madoguchi_applications::keys::{FORM_META_SK, export_key, form_apps_pk, form_pk};
use madoguchi_applications::{ApplicationRecord, FormMeta};
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_csvexport::{CsvEncoding, CsvWriter, Substitution};
use madoguchi_domain::authz::{Action, Shown, View, shown};
use madoguchi_domain::error::DomainError;
use madoguchi_http::{ApiError, ApiJson, ApiQuery};
use madoguchi_ports::{BlobUpload, Index, Key, PresignMethod, QueryRequest, SortKeyCondition};
use madoguchi_reports::{Aggregator, Report, ReportRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::apps::{parse_day, period_bounds, permitted_forms};
use crate::{Caller, StaffState, audit, field_error, internal, port_error};

/// Columns every form has, with their Japanese headers.
const BUILTIN: &[(&str, &str)] = &[
    ("receipt", "受付番号"),
    ("submitted_at", "申請日時"),
    ("status", "処理状況"),
    ("form_version", "様式の版"),
    ("applicant_name", "申請者氏名"),
    ("completed_at", "完了日時"),
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub form: String,
    /// First day (Japan time), `YYYY-MM-DD`.
    pub from: String,
    /// Last day (Japan time), `YYYY-MM-DD`.
    pub to: String,
    /// Built-in columns (`receipt`, `submitted_at`, `status`, `form_version`,
    /// `applicant_name`, `completed_at`) and field ids of the form, in the order wanted.
    pub columns: Vec<String>,
    /// `utf8_bom` (default) or `cp932`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub encoding: Option<CsvEncoding>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubstitutionView {
    /// Data row (1 = first row after the header; 0 = the header).
    pub row: u64,
    pub column: String,
    /// The character that CP932 cannot hold, as `U+XXXX`.
    pub code_point: String,
    pub written: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportResult {
    pub id: String,
    pub rows: u64,
    pub bytes: u64,
    pub encoding: String,
    /// Characters replaced for CP932, row by row (the first 1,000).
    pub substitutions: Vec<SubstitutionView>,
    pub substitutions_total: u64,
    pub download_url: String,
    pub expires_in_seconds: u64,
}

/// A `Write` whose bytes the handler takes out between rows and sends as upload parts.
#[derive(Clone, Default)]
struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Chunks {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *self.0.lock().expect("not poisoned")))
    }
    fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// Bytes gathered before they go out as one write to the upload.
const FLUSH_AT: usize = 1024 * 1024;

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/exports",
    tag = "staff",
    params(("tenant" = String, Path)),
    request_body = ExportRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "written; a short-lived download link and the characters replaced", body = ExportResult),
        (status = 403, description = "no 出力 permission on the form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad period, unknown column or too many rows", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn create_export(
    State(state): State<StaffState>,
    who: Caller,
    ApiJson(body): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ListForms,
        madoguchi_domain::authz::Resource::Tenant(&who.tenant),
        false,
    )?;
    if !madoguchi_domain::form::is_valid_slug(&body.form) {
        return Err(DomainError::NotFound.into());
    }
    permitted_forms(&state, &who, Some(&body.form), Action::ExportApplications).await?;
    let from = parse_day("from", &body.from)?;
    let to = parse_day("to", &body.to)?;
    if to < from {
        return Err(field_error(
            "to",
            "period.inverted",
            "終了日は開始日以降にしてください。",
        ));
    }
    let meta = state
        .items
        .get(&Key::new(form_pk(&who.tenant, &body.form), FORM_META_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let meta: FormMeta = serde_json::from_value(meta.data).map_err(|_| internal("form"))?;
    if body.columns.is_empty() || body.columns.len() > 200 {
        return Err(field_error(
            "columns",
            "required",
            "出力する項目を1〜200個選んでください。",
        ));
    }
    // Headers: built-in names, or the field's label in the working definition.
    let mut header = Vec::new();
    let mut sensitive = Vec::new();
    for (i, c) in body.columns.iter().enumerate() {
        if let Some((_, h)) = BUILTIN.iter().find(|(id, _)| id == c) {
            header.push((*h).to_owned());
            sensitive.push(false);
        } else if let Some(f) = meta.definition.field(c).filter(|f| f.kind.is_input()) {
            header.push(f.label.clone());
            sensitive.push(f.kind.is_sensitive());
        } else {
            return Err(field_error(
                &format!("columns[{i}]"),
                "unknown",
                "この様式にない項目です。",
            ));
        }
    }
    let encoding = body.encoding.unwrap_or(CsvEncoding::Utf8Bom);
    let id = state.ids.new_id().to_string();
    let key = export_key(&who.tenant, &id);
    let mut upload = state
        .exports
        .upload(&key, Some(content_type(encoding)))
        .await
        .map_err(port_error)?;
    let sink = Chunks::default();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut csv =
        CsvWriter::new(sink.clone(), encoding, &header_refs).map_err(|_| internal("csv header"))?;
    // A field label CP932 cannot hold is reported as row 0.
    let mut substitutions: Vec<Substitution> = csv.header_substitutions().to_vec();
    let mut substitutions_total = substitutions.len() as u64;
    let (lo, hi) = period_bounds(Some(from), Some(to));
    let mut cursor = None;
    let outcome: Result<(), ApiError> = async {
        loop {
            let page = state
                .items
                .query(
                    QueryRequest::partition(form_apps_pk(&who.tenant, &body.form))
                        .on(Index::Gsi1)
                        .sk(SortKeyCondition::Between(lo.clone(), hi.clone()))
                        .limit(500)
                        .after(cursor.take()),
                )
                .await
                .map_err(port_error)?;
            for item in page.items {
                let record: ApplicationRecord =
                    serde_json::from_value(item.data).map_err(|_| internal("application"))?;
                if csv.rows() >= state.settings.max_export_rows {
                    return Err(field_error(
                        "to",
                        "export.too_many",
                        "出力件数が上限を超えます。期間を短くしてください。",
                    ));
                }
                let cells = cells(&record, &body.columns, &sensitive);
                let subs = csv.write_row(&cells).map_err(|_| internal("csv row"))?;
                substitutions_total += subs.len() as u64;
                for s in subs {
                    if substitutions.len() < 1000 {
                        substitutions.push(s);
                    }
                }
                if sink.len() >= FLUSH_AT {
                    upload.write(sink.take()).await.map_err(port_error)?;
                }
            }
            cursor = page.next;
            if cursor.is_none() {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = outcome {
        let _ = upload.abort().await;
        return Err(e);
    }
    let rows = csv.rows();
    let bytes = csv.bytes_written();
    csv.finish().map_err(|_| internal("csv finish"))?;
    upload.write(sink.take()).await.map_err(port_error)?;
    finish(upload).await?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::Export, who.who())
            .form(&body.form)
            .detail("export", id.as_str())
            .detail("from", body.from.as_str())
            .detail("to", body.to.as_str())
            .detail("columns", body.columns.clone())
            .detail("rows", rows)
            .detail("encoding", encoding_name(encoding))
            .detail("substitutions", substitutions_total),
    )
    .await?;
    let link = state
        .exports
        .presign(&key, PresignMethod::Get, state.settings.link_ttl)
        .await
        .map_err(port_error)?;
    Ok((
        StatusCode::CREATED,
        Json(ExportResult {
            id,
            rows,
            bytes,
            encoding: encoding_name(encoding).into(),
            substitutions: substitutions
                .into_iter()
                .map(|s| SubstitutionView {
                    row: s.row,
                    column: s.column,
                    code_point: format!("U+{:04X}", s.original as u32),
                    written: s.written,
                })
                .collect(),
            substitutions_total,
            download_url: link.url,
            expires_in_seconds: state.settings.link_ttl.as_secs(),
        }),
    )
        .into_response())
}

async fn finish(upload: Box<dyn BlobUpload>) -> Result<(), ApiError> {
    upload.finish().await.map_err(port_error)?;
    Ok(())
}

fn encoding_name(e: CsvEncoding) -> &'static str {
    match e {
        CsvEncoding::Utf8Bom => "utf8_bom",
        CsvEncoding::Cp932 => "cp932",
    }
}

fn content_type(e: CsvEncoding) -> &'static str {
    match e {
        CsvEncoding::Utf8Bom => "text/csv; charset=utf-8",
        CsvEncoding::Cp932 => "text/csv; charset=windows-31j",
    }
}

/// One CSV row. Masking is the domain's decision (`authz::shown`): a 個人番号 is masked in
/// an export as everywhere else.
fn cells(r: &ApplicationRecord, columns: &[String], sensitive: &[bool]) -> Vec<String> {
    columns
        .iter()
        .zip(sensitive)
        .map(|(c, s)| match c.as_str() {
            "receipt" => r.receipt.clone(),
            "submitted_at" => japan_time(&r.submitted_at),
            "status" => r.status.label_ja().to_owned(),
            "form_version" => r.form_version.to_string(),
            "applicant_name" => r.applicant_name.clone().unwrap_or_default(),
            "completed_at" => r
                .completed_at
                .as_deref()
                .map(japan_time)
                .unwrap_or_default(),
            field => {
                let display = r
                    .summary
                    .iter()
                    .find(|row| row.field == field)
                    .map(|row| row.display.clone())
                    .unwrap_or_default();
                match shown(View::Export, *s, true) {
                    Shown::Plain => display,
                    // The summary already holds the masked form of a sensitive value.
                    Shown::Masked => display,
                    Shown::Omitted => String::new(),
                }
            }
        })
        .collect()
}

fn japan_time(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(ts) => jiff::tz::offset(9)
            .to_datetime(ts)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Reports

/// How far before a report's period an application may have been submitted and still count
/// as completed in it.
const COMPLETION_LOOKBACK_DAYS: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD` (default: the first of this month, Japan time).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: the end of `from`'s month).
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM` (default: this month, Japan time).
    pub month: Option<String>,
}

async fn build_report(
    state: &StaffState,
    who: &crate::Caller,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Result<Report, ApiError> {
    let forms = permitted_forms(state, who, None, Action::ViewReports).await?;
    let mut agg = Aggregator::new(from, to);
    // Applications completed in the period may have been submitted up to a year before it;
    // the aggregator counts each row where it belongs (submitted / completed in the period).
    let lookback = from
        .checked_sub(jiff::Span::new().days(COMPLETION_LOOKBACK_DAYS))
        .unwrap_or(from);
    let (lo, hi) = period_bounds(Some(lookback), Some(to));
    for (slug, title, grants) in &forms {
        let mut cursor = None;
        loop {
            let page = state
                .items
                .query(
                    QueryRequest::partition(form_apps_pk(&who.tenant, slug))
                        .on(Index::Gsi1)
                        .sk(SortKeyCondition::Between(lo.clone(), hi.clone()))
                        .limit(500)
                        .after(cursor.take()),
                )
                .await
                .map_err(port_error)?;
            for item in page.items {
                let r: ApplicationRecord =
                    serde_json::from_value(item.data).map_err(|_| internal("application"))?;
                let Ok(submitted_at) = r.submitted_at.parse::<jiff::Timestamp>() else {
                    continue;
                };
                agg.add(&ReportRow {
                    form: slug.clone(),
                    form_title: title.clone(),
                    department: grants.owner.clone(),
                    status: r.status.as_str().to_owned(),
                    submitted_at,
                    completed_at: r.completed_at.as_deref().and_then(|c| c.parse().ok()),
                });
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(agg.finish())
}

/// The report of one month over the forms the caller may view.
async fn month_report(
    state: &StaffState,
    who: &crate::Caller,
    month: Option<&str>,
) -> Result<Report, ApiError> {
    who.require(
        Action::ListForms,
        madoguchi_domain::authz::Resource::Tenant(&who.tenant),
        false,
    )?;
    let (from, to) = month_of(state, month)?;
    build_report(state, who, from, to).await
}

fn this_month(state: &StaffState) -> jiff::civil::Date {
    let today = jiff::tz::offset(9).to_datetime(state.clock.now()).date();
    today.first_of_month()
}

fn month_of(
    state: &StaffState,
    month: Option<&str>,
) -> Result<(jiff::civil::Date, jiff::civil::Date), ApiError> {
    let first = match month {
        Some(m) => format!("{m}-01")
            .parse::<jiff::civil::Date>()
            .map_err(|_| {
                field_error(
                    "month",
                    "month.invalid",
                    "月は YYYY-MM で指定してください。",
                )
            })?,
        None => this_month(state),
    };
    Ok((first, first.last_of_month()))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/reports",
    tag = "staff",
    params(("tenant" = String, Path), ReportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "counts per form, status, department, day and hour, and the average time to completion, over the forms the caller may view", body = Object),
        (status = 422, description = "bad period", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn report(
    State(state): State<StaffState>,
    who: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ListForms,
        madoguchi_domain::authz::Resource::Tenant(&who.tenant),
        false,
    )?;
    let from = match q.from.as_deref() {
        Some(s) => parse_day("from", s)?,
        None => this_month(&state),
    };
    let to = match q.to.as_deref() {
        Some(s) => parse_day("to", s)?,
        None => from.last_of_month(),
    };
    if to < from || from.until(to).map(|s| s.get_days()).unwrap_or(i32::MAX) > 366 {
        return Err(field_error(
            "to",
            "period.invalid",
            "期間は1日から366日までで指定してください。",
        ));
    }
    let report = build_report(&state, &who, from, to).await?;
    Ok(Json(report).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/reports/usage.csv",
    tag = "staff",
    params(("tenant" = String, Path), MonthQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "monthly usage per procedure (UTF-8 with BOM)", content_type = "text/csv"),
    )
)]
pub async fn usage_csv(
    State(state): State<StaffState>,
    who: Caller,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Response, ApiError> {
    let report = month_report(&state, &who, q.month.as_deref()).await?;
    let body = madoguchi_reports::monthly_usage_csv(&report);
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(res)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/reports/usage.svg",
    tag = "staff",
    params(("tenant" = String, Path), MonthQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the month's applications per day as a chart", content_type = "image/svg+xml"),
    )
)]
pub async fn usage_svg(
    State(state): State<StaffState>,
    who: Caller,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Response, ApiError> {
    let report = month_report(&state, &who, q.month.as_deref()).await?;
    let mut res = madoguchi_reports::svg_chart(&report).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    // The SVG is ours; no script, and a browser must not sniff it as anything else.
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(res)
}
