//! Staff: an application's payments, its fee, and the daily payment report per form.
//!
//! Authorization is the one function's (`authorize`): reading payments needs 閲覧 on the
//! application (`ReadApplication`), setting a fee 処理 (`ProcessApplication`), the report
//! 出力 on the form (`ExportApplications`). Every answer is audited.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use madoguchi_applications::access::load_grants;
use madoguchi_applications::keys::{APP_SK, FORM_META_SK, app_pk, form_pk};
use madoguchi_applications::{ApplicationRecord, ApplicationStatus, FormMeta};
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_csvexport::{CsvEncoding, CsvWriter};
use madoguchi_domain::Yen;
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::form::PaymentTiming;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_http::{ApiError, ApiJson, ApiPath, ApiQuery};
use madoguchi_payment_ledger::JournalItem;
use madoguchi_payment_ledger::keys::journal_pk;
use madoguchi_ports::{Key, QueryRequest, query_all};
use madoguchi_staffauth::{StaffCaller, audit, port_error};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::view::{PaymentView, view};
use crate::{PaymentsState, internal, no_store, pay_error};

/// The most movements one form's day can list (far above any municipality's day).
const MAX_DAY_ROWS: usize = 50_000;

async fn load_app(
    state: &PaymentsState,
    who: &StaffCaller,
    id: &str,
    action: Action,
) -> Result<ApplicationRecord, ApiError> {
    let id = ApplicationId::parse(id).map_err(|_| ApiError::from(DomainError::NotFound))?;
    who.require(Action::ListForms, Resource::Tenant(&who.tenant), true)?;
    let item = state
        .items
        .get(&Key::new(app_pk(&who.tenant, &id), APP_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let record: ApplicationRecord =
        serde_json::from_value(item.data).map_err(|_| internal("application"))?;
    let (grants, _) = load_grants(state.items.as_ref(), &who.tenant, &record.slug)
        .await
        .map_err(port_error)?;
    who.require(
        action,
        Resource::Application {
            tenant: &who.tenant,
            grants: &grants,
            owner: &record.owner,
        },
        true,
    )?;
    Ok(record)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/payment",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path, description = "the application")),
    responses(
        (status = 200, description = "the fee, what is due, every charge and refund with the gateway's ids, and the history", body = PaymentView),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application for the caller, or no fee was ever set", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(state): State<PaymentsState>,
    who: StaffCaller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let record = load_app(&state, &who, &id, Action::ReadApplication).await?;
    let (ledger, _) = state
        .payments
        .load(&who.tenant, &record.id)
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    audit(
        &state.audit,
        &who.tenant,
        AuditEvent::new(AuditAction::ApplicationRead, who.who())
            .form(&record.slug)
            .application(record.id)
            .detail("payment", true),
    )
    .await?;
    let sandbox = state.payments.gateway.is_sandbox();
    Ok(no_store(Json(view(&ledger, sandbox, true)).into_response()))
}

/// A new fee.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeBody {
    /// The whole fee in yen (0, or 50 to 9,999,999). What was paid beyond it is refunded;
    /// what it exceeds the payments by is asked of the citizen.
    pub amount: i64,
    /// Why (kept in the history; shown to staff only). Up to 200 characters.
    #[serde(default)]
    pub reason: String,
}

fn check_fee(body: &FeeBody) -> Result<Yen, ApiError> {
    let mut errors = Vec::new();
    let min = madoguchi_domain::form::MIN_CHARGE.value();
    let max = madoguchi_domain::form::MAX_FEE.value();
    if body.amount != 0 && !(min..=max).contains(&body.amount) {
        errors.push(FieldError::new(
            "amount",
            "fee.out_of_range",
            format!("手数料は0円、または{min}円から{max}円までで入力してください。"),
        ));
    }
    if body.reason.chars().count() > 200 || body.reason.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(
            "reason",
            "text.too_long",
            "理由は改行を含めず200文字以内で入力してください。",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Yen::new(body.amount).map_err(|_| ApiError::validation(vec![]))
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/fee",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path, description = "the application")),
    request_body = FeeBody,
    responses(
        (status = 200, description = "the payments after the change: a raise is asked of the citizen by mail, a cut is refunded", body = PaymentView),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application for the caller (処理 permission needed)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the application is waiting for its payment at submission, or is closed (rejected, withdrawn, cancelled) and the fee would go up", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "amount out of range", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn set_fee(
    State(state): State<PaymentsState>,
    who: StaffCaller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<FeeBody>,
) -> Result<Response, ApiError> {
    let record = load_app(&state, &who, &id, Action::ProcessApplication).await?;
    let fee = check_fee(&body)?;
    let previous = state
        .payments
        .load(&who.tenant, &record.id)
        .await
        .map_err(port_error)?
        .map(|(l, _)| l.fee.value());
    // While 支払待ち the citizen is paying the form's fee; once an application is closed
    // (却下, 取下げ, 取消) its fee may only go down, to refund what was paid.
    let closed = matches!(
        record.status,
        ApplicationStatus::Rejected | ApplicationStatus::Withdrawn | ApplicationStatus::Cancelled
    );
    if record.status == ApplicationStatus::PaymentPending
        || (closed && fee.value() > previous.unwrap_or(0))
    {
        return Err(ApiError::kind(
            409,
            "fee-not-changeable",
            "この申請の手数料は変更できません。",
            "支払待ちの申請の手数料は変更できません。却下・取下げ・取消の申請は、返金のための減額だけができます。",
        ));
    }
    // Audited before the change: the record says who asked, even if the gateway fails.
    let mut event = AuditEvent::new(AuditAction::FeeChange, who.who())
        .form(&record.slug)
        .application(record.id)
        .detail("fee", fee.value());
    if let Some(p) = previous {
        event = event.detail("previous", p);
    }
    audit(&state.audit, &who.tenant, event).await?;
    let ledger = state
        .payments
        .set_fee(
            &who.tenant,
            &record,
            PaymentTiming::AfterAcceptance,
            fee,
            body.reason.trim(),
        )
        .await
        .map_err(pay_error)?;
    let sandbox = state.payments.gateway.is_sandbox();
    Ok(no_store(Json(view(&ledger, sandbox, true)).into_response()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The day (Japan time), `YYYY-MM-DD` (required).
    pub date: Option<String>,
    /// `utf8` (default, with BOM) or `cp932`.
    pub encoding: Option<String>,
}

/// The CSV header of the daily payment report. Money in and money back are separate
/// columns of non-negative amounts, so that Excel sums both (a negative number would carry
/// the CSV formula guard and read as text).
pub const DAILY_HEADER: [&str; 9] = [
    "日時",
    "受付番号",
    "様式",
    "種別",
    "入金額",
    "返金額",
    "決済ID",
    "申請ID",
    "連番",
];

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/forms/{slug}/payments.csv",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path), ("slug" = String, Path, description = "the form"), DayQuery),
    responses(
        (status = 200, description = "every card payment (決済, 入金額) and refund (返金, 返金額) of the form that day, oldest first, in yen", content_type = "text/csv"),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "no 出力 permission on the form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad date or encoding", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn daily_csv(
    State(state): State<PaymentsState>,
    who: StaffCaller,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<Response, ApiError> {
    // Who may ask comes first; what they asked is checked after.
    who.require(Action::ListForms, Resource::Tenant(&who.tenant), false)?;
    if !madoguchi_domain::form::is_valid_slug(&slug) {
        return Err(DomainError::NotFound.into());
    }
    let day: jiff::civil::Date = q.date.as_deref().unwrap_or("").parse().map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "date",
            "date.invalid",
            "日付は YYYY-MM-DD の形で入力してください。",
        )])
    })?;
    let encoding = match q.encoding.as_deref() {
        None | Some("utf8") => CsvEncoding::Utf8Bom,
        Some("cp932") => CsvEncoding::Cp932,
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "encoding",
                "not_an_option",
                "utf8 か cp932 を指定してください。",
            )]));
        }
    };
    let meta = state
        .items
        .get(&Key::new(form_pk(&who.tenant, &slug), FORM_META_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let _meta: FormMeta = serde_json::from_value(meta.data).map_err(|_| internal("form"))?;
    let (grants, _) = load_grants(state.items.as_ref(), &who.tenant, &slug)
        .await
        .map_err(port_error)?;
    who.require(
        Action::ExportApplications,
        Resource::Form {
            tenant: &who.tenant,
            grants: &grants,
        },
        false,
    )?;
    let items = query_all(
        state.items.as_ref(),
        QueryRequest::partition(journal_pk(&who.tenant, &slug, &day.to_string())).limit(500),
        MAX_DAY_ROWS,
    )
    .await
    .map_err(port_error)?;
    let mut csv =
        CsvWriter::new(Vec::new(), encoding, &DAILY_HEADER).map_err(|_| internal("csv header"))?;
    let mut total: i64 = 0;
    for item in &items {
        let line: JournalItem =
            serde_json::from_value(item.data.clone()).map_err(|_| internal("journal"))?;
        let amount = line.line.amount.value();
        let (kind, paid, refunded) = match line.line.kind.as_str() {
            "refund" => ("返金", String::new(), amount.to_string()),
            _ => ("決済", amount.to_string(), String::new()),
        };
        total += if refunded.is_empty() { amount } else { -amount };
        let at = line
            .line
            .at
            .parse::<jiff::Timestamp>()
            .map(|ts| {
                jiff::tz::offset(9)
                    .to_datetime(ts)
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or(line.line.at.clone());
        csv.write_row(&[
            at,
            line.receipt.clone(),
            line.form_title.clone(),
            kind.to_owned(),
            paid,
            refunded,
            line.line.gateway_id.clone(),
            line.application.to_string(),
            line.line.seq.to_string(),
        ])
        .map_err(|_| internal("csv row"))?;
    }
    let rows = csv.rows();
    let body = csv.finish().map_err(|_| internal("csv"))?;
    audit(
        &state.audit,
        &who.tenant,
        AuditEvent::new(AuditAction::Export, who.who())
            .form(&slug)
            .detail("report", "payments")
            .detail("date", day.to_string())
            .detail("rows", rows)
            .detail("net", total),
    )
    .await?;
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match encoding {
            CsvEncoding::Utf8Bom => "text/csv; charset=utf-8",
            CsvEncoding::Cp932 => "text/csv; charset=windows-31j",
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"payments-{slug}-{day}.csv\""
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(no_store(res))
}
