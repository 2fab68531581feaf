//! Working applications: list, detail, 個人番号 reveal, status workflow, memos, files.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use madoguchi_applications::access::load_grants;
use madoguchi_applications::keys::{
    APP_SK, ATTACHMENT_PREFIX, FORM_META_SK, MEMO_PREFIX, SINGLE_SK, STAFF_ATTACHMENT_PREFIX,
    app_pk, form_apps_pk, form_pk, form_version_sk, forms_index_pk, memo_sk, receipt_pk,
    staff_attachment_key, staff_attachment_sk, upload_pk,
};
use madoguchi_applications::outbox::{PendingExport, pending_item};
use madoguchi_applications::{
    ApplicationRecord, AttachmentRecord, AttachmentStatus, CorrectionRequest, FormMeta, MemoRecord,
    NotifyMessage, PublishedForm, StaffAttachmentRecord, StatusChange, application_item,
    history_item,
};
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_domain::authz::{Action, FormGrants, Resource, Shown, View, shown};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::form::FieldKind;
use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::workflow::{ApplicationStatus, Mover, check_move, notice_for};
use madoguchi_fieldcrypt::{Binding, Sealed};
use madoguchi_http::{ApiError, ApiJson, ApiPath, ApiQuery, with_etag};
use madoguchi_ports::{
    Condition, Index, Item, Key, OutgoingMessage, PresignMethod, QueryRequest, SortKeyCondition,
    TxOp, query_all,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::linkage::{LinkageView, linkage_views, nudge_outbound};
use crate::{Caller, StaffState, audit, field_error, internal, port_error, required_if_match};

// ---------------------------------------------------------------------------------------
// Loading

/// A stored application with what authorization needs.
pub(crate) struct Loaded {
    pub record: ApplicationRecord,
    pub version: u64,
    pub grants: FormGrants,
}

pub(crate) fn parse_id(id: &str) -> Result<ApplicationId, ApiError> {
    // An id that is not ours names nothing: 404 like any unknown application.
    ApplicationId::parse(id).map_err(|_| DomainError::NotFound.into())
}

pub(crate) async fn load(
    state: &StaffState,
    tenant: &TenantId,
    id: &ApplicationId,
) -> Result<Loaded, ApiError> {
    let item = state
        .items
        .get(&Key::new(app_pk(tenant, id), APP_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let record: ApplicationRecord =
        serde_json::from_value(item.data).map_err(|_| internal("application"))?;
    let (grants, _) = load_grants(state.items.as_ref(), tenant, &record.slug)
        .await
        .map_err(port_error)?;
    Ok(Loaded {
        record,
        version: item.version,
        grants,
    })
}

/// Loads an application the caller may act on, or 404.
pub(crate) async fn load_for(
    state: &StaffState,
    who: &Caller,
    id: &str,
    action: Action,
) -> Result<Loaded, ApiError> {
    let id = parse_id(id)?;
    // Refuse callers of another tenant or citizens before touching storage.
    who.require(Action::ListForms, Resource::Tenant(&who.tenant), true)?;
    let loaded = load(state, &who.tenant, &id).await?;
    who.require(
        action,
        Resource::Application {
            tenant: &who.tenant,
            grants: &loaded.grants,
            owner: &loaded.record.owner,
        },
        true,
    )?;
    Ok(loaded)
}

async fn published_version(
    state: &StaffState,
    tenant: &TenantId,
    slug: &str,
    version: u64,
) -> Result<PublishedForm, ApiError> {
    let item = state
        .items
        .get(&Key::new(form_pk(tenant, slug), form_version_sk(version)))
        .await
        .map_err(port_error)?
        .ok_or_else(|| internal("form version of an application"))?;
    serde_json::from_value(item.data).map_err(|_| internal("form version"))
}

// ---------------------------------------------------------------------------------------
// List

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Form slug; without it, every form the caller may view.
    pub form: Option<String>,
    /// `payment_pending`, `received`, `in_review`, `returned`, `on_hold`, `completed`, `rejected`, `withdrawn`, `cancelled`.
    pub status: Option<String>,
    /// Submitted on or after this day (Japan time), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Submitted on or before this day (Japan time), `YYYY-MM-DD`.
    pub to: Option<String>,
    /// 受付番号 (exact).
    pub receipt: Option<String>,
    /// Part of the applicant's name (width and spaces ignored).
    pub name: Option<String>,
    pub cursor: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<usize>,
    /// By submission time: `desc` (newest first, the default) or `asc`.
    pub order: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListRow {
    pub id: String,
    pub receipt: String,
    pub form: String,
    pub form_title: String,
    pub status: String,
    pub status_label: String,
    pub submitted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicant_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage {
    pub items: Vec<ListRow>,
    /// Pass as `cursor` for the next (older) page; absent on the last page. New
    /// applications arriving meanwhile never shift a page: the cursor is a position in
    /// submission order, not an offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Start of a Japan day in epoch milliseconds (Japan has no daylight saving time).
pub(crate) fn day_start_ms(date: jiff::civil::Date) -> i64 {
    jiff::tz::offset(9)
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

pub(crate) fn parse_day(field: &str, s: &str) -> Result<jiff::civil::Date, ApiError> {
    s.parse::<jiff::civil::Date>().map_err(|_| {
        field_error(
            field,
            "date.invalid",
            "日付は YYYY-MM-DD で指定してください。",
        )
    })
}

/// Sort-key bounds of a submission period (inclusive).
pub(crate) fn period_bounds(
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
) -> (String, String) {
    let lo = from.map(day_start_ms).unwrap_or(0);
    let hi = to
        .and_then(|d| d.tomorrow().ok())
        .map(|d| day_start_ms(d) - 1)
        .unwrap_or(999_999_999_999_999);
    (format!("{lo:015}"), format!("{hi:015}#~"))
}

fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

fn encode_cursor(sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

fn decode_cursor(c: &str) -> Result<String, ApiError> {
    let bad = || field_error("cursor", "cursor.invalid", "ページ位置が正しくありません。");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let sk = String::from_utf8(raw).map_err(|_| bad())?;
    let ok = sk.len() == 15 + 1 + 36
        && sk[..15].bytes().all(|b| b.is_ascii_digit())
        && sk.as_bytes()[15] == b'#'
        && ApplicationId::parse(&sk[16..]).is_ok();
    if ok { Ok(sk) } else { Err(bad()) }
}

/// The forms the caller may act on with `action`, with their grants.
pub(crate) async fn permitted_forms(
    state: &StaffState,
    who: &Caller,
    only: Option<&str>,
    action: Action,
) -> Result<Vec<(String, String, FormGrants)>, ApiError> {
    let mut slugs = Vec::new();
    match only {
        Some(slug) => {
            let meta = state
                .items
                .get(&Key::new(form_pk(&who.tenant, slug), FORM_META_SK))
                .await
                .map_err(port_error)?
                .ok_or(DomainError::NotFound)?;
            let meta: FormMeta = serde_json::from_value(meta.data).map_err(|_| internal("form"))?;
            slugs.push((meta.slug, meta.definition.title));
        }
        None => {
            let items = query_all(
                state.items.as_ref(),
                QueryRequest::partition(forms_index_pk(&who.tenant))
                    .on(Index::Gsi1)
                    .limit(100),
                MAX_FORMS,
            )
            .await
            .map_err(port_error)?;
            for item in items {
                let meta: FormMeta =
                    serde_json::from_value(item.data).map_err(|_| internal("form"))?;
                slugs.push((meta.slug, meta.definition.title));
            }
        }
    }
    let mut out = Vec::new();
    for (slug, title) in slugs {
        let (grants, _) = load_grants(state.items.as_ref(), &who.tenant, &slug)
            .await
            .map_err(port_error)?;
        let resource = Resource::Form {
            tenant: &who.tenant,
            grants: &grants,
        };
        if only.is_some() {
            who.require(action, resource, false)?;
        } else if !who.allowed(action, resource) {
            continue;
        }
        out.push((slug, title, grants));
    }
    Ok(out)
}

/// Most forms of a tenant read at once (as the forms function's list).
pub(crate) const MAX_FORMS: usize = 2000;

/// Most items read from one form for one page, so a filter that matches nothing cannot make
/// a request scan a whole year; the cursor then continues where the scan stopped.
const SCAN_BUDGET: usize = 2_000;

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/applications",
    tag = "staff",
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one page, newest first", body = ListPage),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "no 閲覧 permission on the form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad filter or cursor", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<StaffState>,
    who: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(Action::ListForms, Resource::Tenant(&who.tenant), false)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(field_error(
            "limit",
            "limit.range",
            "件数は1〜100で指定してください。",
        ));
    }
    let status = match q.status.as_deref() {
        Some(s) => Some(ApplicationStatus::parse(s).ok_or_else(|| {
            field_error(
                "status",
                "status.unknown",
                "処理状況の指定が正しくありません。",
            )
        })?),
        None => None,
    };
    let from = q
        .from
        .as_deref()
        .map(|s| parse_day("from", s))
        .transpose()?;
    let to = q.to.as_deref().map(|s| parse_day("to", s)).transpose()?;
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let name = q.name.as_deref().map(fold).filter(|s| !s.is_empty());

    // A receipt number names at most one application.
    if let Some(receipt) = q.receipt.as_deref() {
        let mut items = Vec::new();
        if let Some(item) = state
            .items
            .get(&Key::new(
                receipt_pk(&who.tenant, receipt.trim()),
                SINGLE_SK,
            ))
            .await
            .map_err(port_error)?
            && let Some(id) = item.data.get("application").and_then(|v| v.as_str())
            && let Ok(id) = ApplicationId::parse(id)
            && let Ok(l) = load(&state, &who.tenant, &id).await
            && who.allowed(
                Action::ListApplications,
                Resource::Application {
                    tenant: &who.tenant,
                    grants: &l.grants,
                    owner: &l.record.owner,
                },
            )
            && q.form.as_deref().is_none_or(|f| f == l.record.slug)
        {
            items.push(row(&l.record));
        }
        audit_list(&state, &who, q.form.as_deref(), items.len()).await?;
        return Ok(Json(ListPage { items, next: None }).into_response());
    }

    let forms = permitted_forms(&state, &who, q.form.as_deref(), Action::ListApplications).await?;
    let desc = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            return Err(field_error(
                "order",
                "order.unknown",
                "並び順は asc か desc で指定してください。",
            ));
        }
    };
    // The cursor is the sort key of the last row handed out; the next page starts past it.
    let (mut lo, mut hi) = period_bounds(from, to);
    if let Some(c) = &cursor {
        if desc && c.as_str() < hi.as_str() {
            hi = c.clone();
        } else if !desc && c.as_str() > lo.as_str() {
            lo = c.clone();
        }
    }
    let filter = |record: &ApplicationRecord| {
        status.is_none_or(|s| s == record.status)
            && name.as_deref().is_none_or(|n| {
                record
                    .applicant_name
                    .as_deref()
                    .is_some_and(|a| fold(a).contains(n))
            })
    };
    // Per form, in order, up to limit + 1 matches past the cursor. A form that stopped early
    // (enough matches, or the scan budget) has only been seen down to (up to) where it
    // stopped: the page may not reach past the nearest such point, or rows would be skipped.
    let mut found: Vec<(String, ApplicationRecord)> = Vec::new();
    let mut frontier: Option<String> = None;
    for (slug, _, _) in &forms {
        let mut page_cursor = None;
        let mut matched = 0;
        let mut scanned = 0;
        let mut last_seen: Option<String> = None;
        let stopped = loop {
            let mut request = QueryRequest::partition(form_apps_pk(&who.tenant, slug))
                .on(Index::Gsi1)
                .sk(SortKeyCondition::Between(lo.clone(), hi.clone()))
                .limit(limit + 1)
                .after(page_cursor);
            if desc {
                request = request.descending();
            }
            let page = state.items.query(request).await.map_err(port_error)?;
            for item in page.items {
                let sk = item.gsi1.as_ref().map(|k| k.sk.clone()).unwrap_or_default();
                if cursor.as_deref() == Some(sk.as_str()) {
                    continue;
                }
                scanned += 1;
                let record: ApplicationRecord =
                    serde_json::from_value(item.data).map_err(|_| internal("application"))?;
                last_seen = Some(sk.clone());
                if filter(&record) {
                    found.push((sk, record));
                    matched += 1;
                }
                if matched > limit || scanned >= SCAN_BUDGET {
                    break;
                }
            }
            if matched > limit || scanned >= SCAN_BUDGET {
                break true;
            }
            page_cursor = page.next;
            if page_cursor.is_none() {
                break false;
            }
        };
        if stopped && let Some(at) = last_seen {
            frontier = Some(match frontier {
                None => at,
                Some(f) if desc => f.max(at),
                Some(f) => f.min(at),
            });
        }
    }
    if desc {
        found.sort_by(|a, b| b.0.cmp(&a.0));
    } else {
        found.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if let Some(f) = &frontier {
        found.retain(|(sk, _)| if desc { sk >= f } else { sk <= f });
    }
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|(sk, _)| encode_cursor(sk))
    } else {
        frontier.as_deref().map(encode_cursor)
    };
    let items: Vec<ListRow> = found.iter().map(|(_, r)| row(r)).collect();
    audit_list(&state, &who, q.form.as_deref(), items.len()).await?;
    Ok(Json(ListPage { items, next }).into_response())
}

/// A list shows applicant names: it is a look at personal data too.
async fn audit_list(
    state: &StaffState,
    who: &Caller,
    form: Option<&str>,
    rows: usize,
) -> Result<(), ApiError> {
    let mut event = AuditEvent::new(AuditAction::ApplicationList, who.who()).detail("rows", rows);
    if let Some(f) = form {
        event = event.form(f);
    }
    audit(state, &who.tenant, event).await
}

fn row(r: &ApplicationRecord) -> ListRow {
    ListRow {
        id: r.id.to_string(),
        receipt: r.receipt.clone(),
        form: r.slug.clone(),
        form_title: r.form_title.clone(),
        status: r.status.as_str().to_owned(),
        status_label: r.status.label_ja().to_owned(),
        submitted_at: r.submitted_at.clone(),
        applicant_name: r.applicant_name.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Detail

async fn signature_view(
    state: &StaffState,
    tenant: &TenantId,
    id: &ApplicationId,
    summary: Option<&madoguchi_applications::signing::SignatureSummary>,
) -> Result<Option<SignatureView>, ApiError> {
    let item = state
        .items
        .get(&Key::new(
            app_pk(tenant, id),
            madoguchi_applications::signing::SIGNATURE_SK,
        ))
        .await
        .map_err(port_error)?;
    let Some(item) = item else {
        return Ok(None);
    };
    let stored: madoguchi_applications::signing::StoredSignature =
        serde_json::from_value(item.data).map_err(|_| internal("stored signature"))?;
    let corrected_after_signing = summary.is_some_and(|s| s.corrected_after_signing);
    Ok(Some(SignatureView {
        corrected_after_signing,
        indication: stored
            .report
            .get("indication")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        signed_at: stored.signed_at,
        digest: stored.digest,
        locks_match: stored.locks.iter().all(|l| l.matches),
        locks: stored.locks,
        report: stored.report,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailRow {
    pub field: String,
    pub label: String,
    /// Sensitive values (個人番号) are masked; reveal one with `…/decrypt`.
    pub display: String,
    pub sensitive: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub id: String,
    pub field: Option<String>,
    pub file_name: String,
    pub size: u64,
    /// `accepted`, `refused`, `pending` (citizen files, as checked now); `staff` for staff files.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    /// Whether a download link can be issued (clean or not scanned, and accepted).
    pub downloadable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineView {
    pub from: String,
    pub to: String,
    pub at: String,
    pub by: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Permissions {
    pub process: bool,
    pub export: bool,
    pub decrypt: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Detail {
    pub id: String,
    pub receipt: String,
    pub form: String,
    pub form_title: String,
    pub form_version: u64,
    pub status: String,
    pub status_label: String,
    pub submitted_at: String,
    pub applicant_name: Option<String>,
    pub rows: Vec<DetailRow>,
    pub files: Vec<FileView>,
    pub staff_files: Vec<FileView>,
    pub timeline: Vec<TimelineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionView>,
    /// The e-signature (電子署名) and its verification report, when the application was signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureView>,
    /// Where the application went to core systems (後方連携), one entry per system.
    pub linkage: Vec<LinkageView>,
    /// The states this caller may move the application to now.
    pub allowed_moves: Vec<String>,
    pub permissions: Permissions,
    /// Same as the ETag: send it as If-Match with a change.
    pub version: u64,
}

/// The signature kept with an application, for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    /// `TOTAL-PASSED` at submission (an application is only accepted so).
    pub indication: String,
    pub signed_at: String,
    /// SHA-256 (hex) of the canonical payload signed (docs/esign.md).
    pub digest: String,
    /// Every locked field matched the certificate.
    pub locks_match: bool,
    /// The citizen corrected the answers after signing: the signature covers the answers as
    /// first submitted, not the ones shown.
    pub corrected_after_signing: bool,
    /// Each locked field with the certificate's value and the answer; a mismatch is for
    /// staff to look at.
    #[schema(value_type = Vec<Object>)]
    pub locks: Vec<madoguchi_domain::form::certificate::LockCheck>,
    /// The full verification report (ETSI EN 319 102-1 style: indication, the certificates
    /// of the chain, revocation, 基本4情報).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionView {
    pub fields: Vec<String>,
    pub message: String,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/applications/{id}",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the application, sensitive fields masked; ETag = version", body = Detail),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application for this caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn detail(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ReadApplication).await?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::ApplicationRead, who.who())
            .form(&loaded.record.slug)
            .application(loaded.record.id),
    )
    .await?;
    let view = detail_view(&state, &who, &loaded).await?;
    Ok(with_etag(StatusCode::OK, loaded.version, view))
}

pub(crate) async fn detail_view(
    state: &StaffState,
    who: &Caller,
    loaded: &Loaded,
) -> Result<Detail, ApiError> {
    let r = &loaded.record;
    let resource = Resource::Application {
        tenant: &who.tenant,
        grants: &loaded.grants,
        owner: &r.owner,
    };
    let process = who.allowed(Action::ProcessApplication, resource);
    let sensitive: Vec<String> = r
        .answers
        .iter()
        .filter(|(_, v)| v.get("sealed").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let rows = r
        .summary
        .iter()
        .filter_map(|row| {
            let is_sensitive = sensitive.contains(&row.field);
            // The summary holds the masked form of a sensitive value; the rule is the
            // domain's (`authz::shown`), the same for the list and the export.
            let display = match shown(View::Detail, is_sensitive, true) {
                Shown::Plain | Shown::Masked => row.display.clone(),
                Shown::Omitted => return None,
            };
            Some(DetailRow {
                field: row.field.clone(),
                label: row.label.clone(),
                display,
                sensitive: is_sensitive,
            })
        })
        .collect();
    // Attachments as they are now: a scan may have changed its verdict since submission.
    let current = citizen_files(state, &who.tenant, &r.id).await?;
    let files = r
        .attachments
        .iter()
        .map(|a| {
            let now = current.get(&a.id.to_string());
            let (status, scan) = match now {
                Some(rec) => (status_name(rec.status), rec.scan.clone()),
                None => ("missing".to_owned(), a.scan.clone()),
            };
            FileView {
                id: a.id.to_string(),
                field: Some(a.field.clone()),
                file_name: a.file_name.clone(),
                size: a.size,
                downloadable: now.is_some_and(downloadable),
                status,
                scan,
            }
        })
        .collect();
    let staff_files = staff_files(state, &who.tenant, &r.id)
        .await?
        .into_iter()
        .map(|s| FileView {
            id: s.id.to_string(),
            field: None,
            file_name: s.file_name,
            size: s.size,
            status: "staff".into(),
            scan: None,
            downloadable: true,
        })
        .collect();
    Ok(Detail {
        id: r.id.to_string(),
        receipt: r.receipt.clone(),
        form: r.slug.clone(),
        form_title: r.form_title.clone(),
        form_version: r.form_version,
        status: r.status.as_str().into(),
        status_label: r.status.label_ja().into(),
        submitted_at: r.submitted_at.clone(),
        applicant_name: r.applicant_name.clone(),
        rows,
        files,
        staff_files,
        timeline: r
            .timeline
            .iter()
            .map(|t| TimelineView {
                from: t.from.as_str().into(),
                to: t.to.as_str().into(),
                at: t.at.clone(),
                by: t.by.clone(),
                message: t.message.clone(),
            })
            .collect(),
        correction: r.correction.as_ref().map(|c| CorrectionView {
            fields: c.fields.clone(),
            message: c.message.clone(),
        }),
        signature: match &r.signature {
            Some(s) => signature_view(state, &who.tenant, &r.id, Some(s)).await?,
            None => None,
        },
        linkage: linkage_views(state, &who.tenant, &r.id).await?,
        allowed_moves: if process {
            r.status
                .staff_moves()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect()
        } else {
            Vec::new()
        },
        permissions: Permissions {
            process,
            export: who.allowed(Action::ExportApplications, resource),
            decrypt: who.allowed(Action::DecryptMyNumber, resource),
        },
        version: loaded.version,
    })
}

fn status_name(s: AttachmentStatus) -> String {
    match s {
        AttachmentStatus::Pending => "pending",
        AttachmentStatus::Accepted => "accepted",
        AttachmentStatus::Refused => "refused",
    }
    .to_owned()
}

fn downloadable(a: &AttachmentRecord) -> bool {
    a.status == AttachmentStatus::Accepted
        && matches!(
            a.scan.as_deref(),
            None | Some("clean") | Some("not_scanned")
        )
}

async fn citizen_files(
    state: &StaffState,
    tenant: &TenantId,
    id: &ApplicationId,
) -> Result<BTreeMap<String, AttachmentRecord>, ApiError> {
    let page = state
        .items
        .query(
            QueryRequest::partition(upload_pk(tenant, id))
                .sk(SortKeyCondition::BeginsWith(ATTACHMENT_PREFIX.into()))
                .limit(1000),
        )
        .await
        .map_err(port_error)?;
    let mut out = BTreeMap::new();
    for item in page.items {
        let a: AttachmentRecord =
            serde_json::from_value(item.data).map_err(|_| internal("attachment"))?;
        out.insert(a.id.to_string(), a);
    }
    Ok(out)
}

async fn staff_files(
    state: &StaffState,
    tenant: &TenantId,
    id: &ApplicationId,
) -> Result<Vec<StaffAttachmentRecord>, ApiError> {
    let page = state
        .items
        .query(
            QueryRequest::partition(app_pk(tenant, id))
                .sk(SortKeyCondition::BeginsWith(STAFF_ATTACHMENT_PREFIX.into()))
                .limit(1000),
        )
        .await
        .map_err(port_error)?;
    page.items
        .into_iter()
        .map(|i| serde_json::from_value(i.data).map_err(|_| internal("staff file")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Status

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// The state to move to.
    pub to: String,
    /// Shown to the citizen (required for 差戻 and 却下).
    #[serde(default)]
    pub message: Option<String>,
    /// For 差戻: the fields the citizen may change.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/status",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path), ("If-Match" = String, Header, description = "the version read")),
    request_body = StatusRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "moved; the new detail and ETag", body = Detail),
        (status = 404, description = "no such application for this caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "another change came first, or the move is not allowed (the allowed moves are listed)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad request fields", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn change_status(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StatusRequest>,
) -> Result<Response, ApiError> {
    let expected = required_if_match(&headers)?;
    let mut loaded = load_for(&state, &who, &id, Action::ProcessApplication).await?;
    let to = ApplicationStatus::parse(&body.to)
        .ok_or_else(|| field_error("to", "status.unknown", "処理状況の指定が正しくありません。"))?;
    if loaded.version != expected {
        return Err(port_error(madoguchi_ports::PortError::ConditionFailed {
            index: None,
        }));
    }
    let from = loaded.record.status;
    if let Err(refused) = check_move(from, to, Mover::Staff) {
        let allowed: Vec<&str> = refused.allowed.iter().map(|s| s.label_ja()).collect();
        let mut e = ApiError::kind(
            409,
            "invalid-transition",
            "この処理状況には変更できません。",
            &format!(
                "{}から{}へは変更できません。変更できる状況: {}",
                from.label_ja(),
                to.label_ja(),
                if allowed.is_empty() {
                    "なし".to_owned()
                } else {
                    allowed.join("、")
                }
            ),
        );
        e.problem.errors = refused
            .allowed
            .iter()
            .map(|s| FieldError::new("to", "allowed", s.as_str()))
            .collect();
        return Err(e);
    }
    let message = body.message.unwrap_or_default().trim().to_owned();
    if message.chars().count() > 1000 {
        return Err(field_error(
            "message",
            "too_long",
            "1000文字以内で入力してください。",
        ));
    }
    if matches!(
        to,
        ApplicationStatus::Returned | ApplicationStatus::Rejected
    ) && message.is_empty()
    {
        return Err(field_error(
            "message",
            "required",
            "申請者へ伝える理由を入力してください。",
        ));
    }
    let record = &mut loaded.record;
    record.correction = None;
    if to == ApplicationStatus::Returned {
        let fields = body.fields.unwrap_or_default();
        let form =
            published_version(&state, &who.tenant, &record.slug, record.form_version).await?;
        if fields.is_empty() {
            return Err(field_error(
                "fields",
                "required",
                "修正を求める項目を選んでください。",
            ));
        }
        let mut errors = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            match form.definition.field(f).map(|x| &x.kind) {
                Some(FieldKind::Attachment { .. }) => errors.push(FieldError::new(
                    format!("fields[{i}]"),
                    "not_correctable",
                    "添付ファイルの差し替えは差戻しでは求められません。窓口または新しい申請でお受けください。",
                )),
                Some(k) if k.is_input() => {}
                _ => errors.push(FieldError::new(
                    format!("fields[{i}]"),
                    "unknown",
                    "この申請様式にない項目です。",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        record.correction = Some(CorrectionRequest {
            fields,
            message: message.clone(),
        });
    }
    let now = state.clock.now().to_string();
    if to == ApplicationStatus::Completed {
        record.completed_at = Some(now.clone());
    }
    record.status = to;
    record.timeline.push(StatusChange {
        from,
        to,
        at: now,
        by: "staff".into(),
        message,
    });
    let mut app = application_item(&who.tenant, record);
    app.version = expected + 1;
    // The outbox entry goes with the change: the outbound function decides whether a core
    // system takes the application at this status (config/outbound.json).
    let pending = PendingExport {
        application: record.id,
        slug: record.slug.clone(),
        status: to,
        reexport: None,
        at: record
            .timeline
            .last()
            .map(|c| c.at.clone())
            .unwrap_or_default(),
        by: None,
    };
    state
        .items
        .transact(vec![
            TxOp::Put(app, Condition::VersionEquals(expected)),
            TxOp::Put(history_item(&who.tenant, record), Condition::None),
            TxOp::Put(
                pending_item(&who.tenant, &pending, &record.timeline.len().to_string()),
                Condition::None,
            ),
        ])
        .await
        .map_err(port_error)?;
    nudge_outbound(&state, &who.tenant).await;
    loaded.version = expected + 1;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::StatusChange, who.who())
            .form(&record.slug)
            .application(record.id)
            .detail("from", from.as_str())
            .detail("to", to.as_str()),
    )
    .await?;
    let event = notice_for(to);
    if record.notify.iter().any(|e| e == event) {
        let message = NotifyMessage {
            tenant: who.tenant.as_str().to_owned(),
            application: record.id,
            event: event.to_owned(),
            seq: Some(record.timeline.len() as u64),
        };
        let body = serde_json::to_string(&message).expect("serializable");
        if let Err(e) = state
            .notify
            .send_batch(vec![OutgoingMessage::new(body)])
            .await
        {
            // The change stands; the notice is lost only if this fails, which we log.
            tracing::error!(error = %e, application = %record.id, "status notice not queued");
        }
    }
    let view = detail_view(&state, &who, &loaded).await?;
    Ok(with_etag(StatusCode::OK, loaded.version, view))
}

// ---------------------------------------------------------------------------------------
// 個人番号 reveal

/// Why a 個人番号 is revealed: a fixed list, so the audit record holds a code, not free text
/// that could itself carry personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevealReason {
    /// 本人確認 at the counter.
    IdentityCheck,
    /// 基幹システムへの入力.
    CoreSystemEntry,
    /// 照会への回答 (a legal inquiry).
    Inquiry,
    /// 誤りの訂正.
    Correction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    pub field: String,
    pub reason: RevealReason,
    /// Case number or similar (ASCII, ≤ 64), kept in the audit record.
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revealed {
    pub field: String,
    pub value: String,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/decrypt",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path)),
    request_body = DecryptRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the plain value (not cached: Cache-Control no-store); audited", body = Revealed),
        (status = 404, description = "no such application, or no 個人番号 permission", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a sensitive field, or bad reference", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn decrypt(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DecryptRequest>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::DecryptMyNumber).await?;
    if let Some(r) = &body.reference
        && (r.len() > 64 || !r.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(field_error(
            "reference",
            "invalid",
            "整理番号は64文字以内の半角英数字記号で入力してください。",
        ));
    }
    let sealed = loaded
        .record
        .answers
        .get(&body.field)
        .and_then(|v| v.get("sealed"))
        .cloned()
        .ok_or_else(|| field_error("field", "not_sensitive", "暗号化された項目ではありません。"))?;
    let sealed: Sealed = serde_json::from_value(sealed).map_err(|_| internal("sealed value"))?;
    // Recorded before the value is revealed: no record, no reveal.
    let mut event = AuditEvent::new(AuditAction::MyNumberDecrypt, who.who())
        .form(&loaded.record.slug)
        .application(loaded.record.id)
        .detail("field", body.field.as_str())
        .detail(
            "reason",
            serde_json::to_value(body.reason).expect("serializable"),
        );
    if let Some(r) = &body.reference {
        event = event.detail("reference", r.as_str());
    }
    audit(&state, &who.tenant, event).await?;
    let record = loaded.record.id.to_string();
    let plain = state
        .cipher
        .open(
            &who.tenant,
            &Binding {
                record: &record,
                field: &body.field,
            },
            &sealed,
        )
        .await
        .map_err(port_error)?;
    let value = String::from_utf8(plain.to_vec()).map_err(|_| internal("sealed value"))?;
    let mut res = Json(Revealed {
        field: body.field,
        value,
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// Memos

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoRequest {
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoView {
    pub id: String,
    pub author: String,
    pub at: String,
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoList {
    pub items: Vec<MemoView>,
}

fn memo_view(m: MemoRecord) -> MemoView {
    MemoView {
        id: m.id,
        author: m.author,
        at: m.at,
        text: m.text,
    }
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/memos",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "internal notes, oldest first (never shown to citizens)", body = MemoList),
        (status = 404, description = "no such application for this caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list_memos(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ReadApplication).await?;
    let page = state
        .items
        .query(
            QueryRequest::partition(app_pk(&who.tenant, &loaded.record.id))
                .sk(SortKeyCondition::BeginsWith(MEMO_PREFIX.into()))
                .limit(1000),
        )
        .await
        .map_err(port_error)?;
    let items = page
        .items
        .into_iter()
        .map(|i| {
            serde_json::from_value::<MemoRecord>(i.data)
                .map(memo_view)
                .map_err(|_| internal("memo"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(MemoList { items }).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/memos",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path)),
    request_body = MemoRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the memo", body = MemoView),
        (status = 404, description = "no such application, or no 処理 permission", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "empty or too long", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn add_memo(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<MemoRequest>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ProcessApplication).await?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(field_error(
            "text",
            "length",
            "メモは1〜2000文字で入力してください。",
        ));
    }
    let now = state.clock.now();
    let memo = MemoRecord {
        id: state.ids.new_id().to_string(),
        application: loaded.record.id,
        author: who.who(),
        at: now.to_string(),
        text: text.to_owned(),
    };
    let item = Item::new(
        Key::new(
            app_pk(&who.tenant, &loaded.record.id),
            memo_sk(now.as_millisecond(), &memo.id),
        ),
        serde_json::to_value(&memo).expect("serializable"),
    );
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::Memo, who.who())
            .form(&loaded.record.slug)
            .application(loaded.record.id)
            .detail("memo", memo.id.as_str()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(memo_view(memo))).into_response())
}

// ---------------------------------------------------------------------------------------
// Files

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/staff-files",
    tag = "staff",
    params(
        ("tenant" = String, Path), ("id" = String, Path),
        ("x-file-name" = String, Header, description = "file name, percent-encoded UTF-8"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file (≤ 5 MB)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stored", body = FileView),
        (status = 404, description = "no such application, or no 処理 permission", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad name, type or content", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn add_staff_file(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ProcessApplication).await?;
    if body.len() > state.settings.max_attachment_bytes {
        return Err(ApiError::kind(
            413,
            "too-large",
            "ファイルが大きすぎます。",
            "5MB以下のファイルを添付してください。",
        ));
    }
    if body.is_empty() {
        return Err(field_error(
            "file",
            "empty",
            "空のファイルは添付できません。",
        ));
    }
    let raw_name = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| urlencoding::decode(v).ok())
        .map(|s| s.into_owned())
        .ok_or_else(|| field_error("x-file-name", "required", "ファイル名を指定してください。"))?;
    let file_name = madoguchi_domain::filetype::sanitize_file_name(&raw_name).map_err(|e| {
        ApiError::validation(vec![FieldError::new("x-file-name", e.code, e.message)])
    })?;
    let ext = madoguchi_domain::filetype::extension_of(&file_name).ok_or_else(|| {
        field_error(
            "x-file-name",
            "extension",
            "添付できない種類のファイルです。",
        )
    })?;
    let head = &body[..body.len().min(madoguchi_domain::filetype::SNIFF_BYTES)];
    if !madoguchi_domain::filetype::allowed_extensions().contains(&ext.as_str())
        || !madoguchi_domain::filetype::content_matches(&ext, head)
    {
        return Err(field_error(
            "file",
            "content",
            "ファイルの種類と中身が一致しないか、添付できない種類のファイルです。",
        ));
    }
    let att = AttachmentId::new(state.ids.new_id());
    let object_key = staff_attachment_key(&who.tenant, &loaded.record.id, &att);
    let content_type = content_type_of(&ext);
    let size = body.len() as u64;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    state
        .attachments
        .put(&object_key, body, Some(content_type))
        .await
        .map_err(port_error)?;
    let record = StaffAttachmentRecord {
        id: att,
        application: loaded.record.id,
        file_name: file_name.clone(),
        content_type: content_type.to_owned(),
        size,
        sha256,
        object_key,
        author: who.who(),
        at: state.clock.now().to_string(),
    };
    state
        .items
        .put(
            Item::new(
                Key::new(
                    app_pk(&who.tenant, &loaded.record.id),
                    staff_attachment_sk(&att),
                ),
                serde_json::to_value(&record).expect("serializable"),
            ),
            Condition::NotExists,
        )
        .await
        .map_err(port_error)?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::StaffAttachment, who.who())
            .form(&loaded.record.slug)
            .application(loaded.record.id)
            .detail("file", att.to_string())
            .detail("size", size),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(FileView {
            id: att.to_string(),
            field: None,
            file_name,
            size,
            status: "staff".into(),
            scan: None,
            downloadable: true,
        }),
    )
        .into_response())
}

fn content_type_of(ext: &str) -> &'static str {
    match ext {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "heic" => "image/heic",
        "gif" => "image/gif",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "txt" | "csv" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileLink {
    pub url: String,
    pub method: String,
    pub expires_in_seconds: u64,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/files/{file}",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path), ("file" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a short-lived download link; audited", body = FileLink),
        (status = 404, description = "no such file for this caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the file is not (or no longer) safe to download", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn file_link(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id, file)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ReadApplication).await?;
    let (store, key) = if loaded
        .record
        .attachments
        .iter()
        .any(|a| a.id.to_string() == file)
    {
        let current = citizen_files(&state, &who.tenant, &loaded.record.id).await?;
        let rec = current.get(&file).ok_or(DomainError::NotFound)?;
        if !downloadable(rec) {
            return Err(ApiError::kind(
                409,
                "file-not-safe",
                "このファイルはダウンロードできません。",
                "ウイルス検査で問題が見つかったか、検査が終わっていません。",
            ));
        }
        (state.attachments.clone(), rec.object_key.clone())
    } else {
        let staff = staff_files(&state, &who.tenant, &loaded.record.id).await?;
        let rec = staff
            .into_iter()
            .find(|s| s.id.to_string() == file)
            .ok_or(DomainError::NotFound)?;
        (state.attachments.clone(), rec.object_key)
    };
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::ApplicationRead, who.who())
            .form(&loaded.record.slug)
            .application(loaded.record.id)
            .detail("file", file.as_str()),
    )
    .await?;
    let link = store
        .presign(&key, PresignMethod::Get, state.settings.link_ttl)
        .await
        .map_err(port_error)?;
    Ok(Json(FileLink {
        url: link.url,
        method: "GET".into(),
        expires_in_seconds: state.settings.link_ttl.as_secs(),
    })
    .into_response())
}
