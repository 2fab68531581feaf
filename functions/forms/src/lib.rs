//! The `forms` function: staff build form definitions (様式) and publish them; citizens read
//! the published version.
//!
//! Lifecycle: create (draft) → edit the working copy → publish (an immutable version) →
//! close (no new drafts or submissions) → archive (hidden). Publishing again reopens a closed
//! form with a new version. Every change carries the version it read (`If-Match`); a lost race
//! answers 409. The definition format, the field types and the display conditions are the
//! domain crate's (`madoguchi_domain::form`, `docs/forms.md`).
//!
//! Storage (single table; keys in `madoguchi-applications::keys`):
//! - `{tenant}#FORM#{slug}` / `META`: working copy, state, latest published version; in GSI1
//!   under `{tenant}#FORMS` so staff can list the tenant's forms.
//! - `{tenant}#FORM#{slug}` / `V#nnnnnn`: each published version, immutable, so an application
//!   can always find the exact version it was made against.
//! - `{tenant}#FORM#{slug}` / `CURRENT`: the published version citizens see, with the state.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use madoguchi_applications::access::{
    StaffContext, load_grants, load_member, load_org, staff_context,
};
use madoguchi_applications::keys::{
    FORM_CURRENT_SK, FORM_GRANTS_SK, FORM_META_SK, form_pk, form_version_sk, forms_index_pk,
};
use madoguchi_applications::{FormMeta, FormState, PublishedForm};
use madoguchi_audit::{AuditAction, AuditEvent, AuditLog};
use madoguchi_domain::authz::{Action, Actor, Decision, FormGrants, Resource, authorize};
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_domain::form::{
    FormDefinition, is_valid_slug, parse_definition, validate_definition,
};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::Role;
use madoguchi_http::{
    ApiError, ApiJson, ApiPath, Authenticated, Authenticator, Principal, required_if_match,
    tenant_from_path, with_etag,
};
use madoguchi_ports::{
    Clock, Condition, Index, Item, ItemStore, Key, PortError, QueryRequest, TxOp, query_all,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// Ports the forms function needs.
#[derive(Clone)]
pub struct FormsState {
    pub items: Arc<dyn ItemStore>,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    /// Form creation, changes and publication are audited.
    pub audit: AuditLog,
}

impl FromRef<FormsState> for Arc<Authenticator> {
    fn from_ref(s: &FormsState) -> Self {
        s.auth.clone()
    }
}

pub fn router(state: FormsState) -> Router {
    Router::new()
        .route("/v1/tenants/{tenant}/forms/{slug}", get(get_published))
        .route(
            "/v1/tenants/{tenant}/manage/forms",
            get(list_forms).post(create_form),
        )
        .route(
            "/v1/tenants/{tenant}/manage/forms/{slug}",
            get(get_working).put(put_working),
        )
        .route(
            "/v1/tenants/{tenant}/manage/forms/{slug}/publish",
            post(publish),
        )
        .route(
            "/v1/tenants/{tenant}/manage/forms/{slug}/close",
            post(close),
        )
        .route(
            "/v1/tenants/{tenant}/manage/forms/{slug}/archive",
            post(archive),
        )
        .route(
            "/v1/tenants/{tenant}/manage/forms/{slug}/versions/{version}",
            get(get_version),
        )
        .route("/v1/me", get(me))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(get_published, list_forms, create_form, get_working, put_working, publish, close, archive, get_version, me),
    components(schemas(PublishedFormDoc, FormMetaDoc, FormSummary, FormList, CreateForm, FormStateDoc, Principal, Role)),
    tags((name = "forms", description = "Form definitions (様式): build, publish, read"))
)]
struct FormsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    FormsApi::openapi()
}

/// State of a form.
#[derive(ToSchema)]
#[schema(as = FormState)]
#[allow(dead_code)]
enum FormStateDoc {
    #[schema(rename = "draft")]
    Draft,
    #[schema(rename = "published")]
    Published,
    #[schema(rename = "closed")]
    Closed,
    #[schema(rename = "archived")]
    Archived,
}

/// A published version. `definition` follows docs/forms.md.
#[derive(ToSchema)]
#[schema(as = PublishedForm)]
#[allow(dead_code)]
struct PublishedFormDoc {
    #[schema(example = "272060")]
    tenant: String,
    slug: String,
    version: u64,
    /// RFC 3339 instant of publication.
    published_at: String,
    #[schema(inline)]
    state: FormStateDoc,
    /// The form definition (docs/forms.md).
    #[schema(value_type = Object)]
    definition: serde_json::Value,
}

/// The staff's working copy.
#[derive(ToSchema)]
#[schema(as = FormMeta)]
#[allow(dead_code)]
struct FormMetaDoc {
    slug: String,
    #[schema(inline)]
    state: FormStateDoc,
    /// The working definition (docs/forms.md).
    #[schema(value_type = Object)]
    definition: serde_json::Value,
    published_version: Option<u64>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormSummary {
    pub slug: String,
    pub title: String,
    #[schema(value_type = String)]
    pub state: FormState,
    pub published_version: Option<u64>,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormList {
    pub forms: Vec<FormSummary>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateForm {
    /// Public URL identifier: `[a-z0-9-]{3,64}`, stable for the life of the form.
    pub slug: String,
    /// The definition (docs/forms.md).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// 所管課: the owning department, one of the creator's own (an administrator may name
    /// any). It receives every permission on the form except revealing a 個人番号. Omitted:
    /// the creator's first department; an administrator without one creates an unowned form
    /// that only administrators manage until they grant it.
    #[serde(default)]
    pub department: Option<String>,
}

fn slug_or_404(slug: &str) -> Result<(), ApiError> {
    if is_valid_slug(slug) {
        Ok(())
    } else {
        Err(DomainError::NotFound.into())
    }
}

fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "ほかの人が先に更新しました。再読み込みしてからやり直してください。".to_owned(),
        }
        .into(),
        other => {
            tracing::error!(error = %other, "item store failed");
            ApiError::new(Problem::internal())
        }
    }
}

/// Asks the one authorization function (`madoguchi_domain::authz`) about a form, with the
/// caller's departments and the form's grants loaded from storage.
async fn require(
    state: &FormsState,
    principal: &Principal,
    tenant: &TenantId,
    action: Action,
    slug: Option<&str>,
) -> Result<(), ApiError> {
    let ctx = if principal.role == Role::Citizen || &principal.tenant != tenant {
        None
    } else {
        Some(
            staff_context(
                state.items.as_ref(),
                tenant,
                &principal.sub,
                principal.role == Role::Admin,
                &principal.depts,
            )
            .await
            .map_err(port_error)?,
        )
    };
    let actor = actor_of(principal, ctx.as_ref());
    let grants = match slug {
        Some(slug) => {
            load_grants(state.items.as_ref(), tenant, slug)
                .await
                .map_err(port_error)?
                .0
        }
        None => FormGrants::default(),
    };
    let resource = match slug {
        Some(_) => Resource::Form {
            tenant,
            grants: &grants,
        },
        None => Resource::Tenant(tenant),
    };
    match authorize(actor, action, resource) {
        Decision::Allow(_) => Ok(()),
        Decision::Deny(_) => Err(DomainError::Forbidden.into()),
    }
}

fn actor_of<'a>(principal: &'a Principal, ctx: Option<&'a StaffContext>) -> Actor<'a> {
    match ctx {
        Some(c) if c.active => Actor::Staff {
            tenant: &principal.tenant,
            depts: &c.effective,
            admin: c.admin,
        },
        Some(_) => Actor::Anonymous,
        None => Actor::Citizen {
            tenant: &principal.tenant,
            owner: "",
        },
    }
}

async fn record(
    state: &FormsState,
    tenant: &TenantId,
    principal: &Principal,
    action: AuditAction,
    slug: &str,
    version: Option<u64>,
) -> Result<(), ApiError> {
    let mut event = AuditEvent::new(action, principal.sub.clone()).form(slug);
    if let Some(v) = version {
        event = event.detail("version", v);
    }
    state.audit.append(tenant, event).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed");
        ApiError::new(Problem::internal())
    })?;
    Ok(())
}

/// The grants a new form starts with: its owning department gets everything except the
/// 個人番号 reveal. The department must exist in the tenant's tree.
async fn owner_grants(
    state: &FormsState,
    principal: &Principal,
    tenant: &TenantId,
    department: Option<&str>,
) -> Result<FormGrants, ApiError> {
    let (org, _) = load_org(state.items.as_ref(), tenant)
        .await
        .map_err(port_error)?;
    let own = match load_member(state.items.as_ref(), tenant, &principal.sub)
        .await
        .map_err(port_error)?
    {
        Some((m, _)) => m.depts,
        None => principal.depts.clone(),
    };
    let chosen = match department {
        Some(d) => Some(d.to_owned()),
        None => own.into_iter().find(|d| org.contains(d)),
    };
    match chosen {
        Some(d) if org.contains(&d) => Ok(FormGrants::for_new_form(&d)),
        Some(_) => Err(ApiError::validation(vec![FieldError::new(
            "department",
            "dept.unknown",
            "登録されていない部署です。",
        )])),
        None => Ok(FormGrants::default()),
    }
}

/// A definition from JSON, checked as a whole: every problem at once, paths under `definition`.
fn checked_definition(json: &serde_json::Value) -> Result<FormDefinition, ApiError> {
    let prefix = |mut errors: Vec<FieldError>| {
        for e in &mut errors {
            e.field = format!("definition.{}", e.field);
        }
        ApiError::validation(errors)
    };
    let def = parse_definition(json).map_err(prefix)?;
    let errors = validate_definition(&def);
    if !errors.is_empty() {
        return Err(prefix(errors));
    }
    Ok(def)
}

async fn load_meta(
    state: &FormsState,
    tenant: &TenantId,
    slug: &str,
) -> Result<(FormMeta, u64), ApiError> {
    let item = state
        .items
        .get(&Key::new(form_pk(tenant, slug), FORM_META_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let meta: FormMeta = serde_json::from_value(item.data).map_err(|_| internal("form meta"))?;
    Ok((meta, item.version))
}

fn meta_item(tenant: &TenantId, meta: &FormMeta, version: u64) -> Item {
    let mut item = Item::new(
        Key::new(form_pk(tenant, &meta.slug), FORM_META_SK),
        serde_json::to_value(meta).expect("serializable"),
    );
    item.version = version;
    item.gsi1 = Some(Key::new(forms_index_pk(tenant), meta.slug.clone()));
    item
}

/// Reads the published version of a form. Public: citizens read it before signing in. A
/// closed form is still shown (with `state: closed`) so citizens learn it no longer takes
/// applications; an archived one is 404.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/forms/{slug}",
    tag = "forms",
    params(("tenant" = String, Path, description = "全国地方公共団体コード (6 digits)"), ("slug" = String, Path, description = "the form's public slug")),
    responses(
        (status = 200, description = "the published definition", body = PublishedFormDoc,
         headers(("etag" = String, description = "the published version"))),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_published(
    State(state): State<FormsState>,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    let item = state
        .items
        .get(&Key::new(form_pk(&tenant, &slug), FORM_CURRENT_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let form: PublishedForm =
        serde_json::from_value(item.data).map_err(|_| internal("published form"))?;
    if form.state == FormState::Archived {
        return Err(DomainError::NotFound.into());
    }
    let version = form.version;
    Ok(with_etag(StatusCode::OK, version, form))
}

/// Lists the tenant's forms (staff).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/manage/forms",
    tag = "forms",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    responses(
        (status = 200, description = "the forms, by slug", body = FormList),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_forms(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<FormList>, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    require(&state, &principal, &tenant, Action::ListForms, None).await?;
    // A tenant has tens of forms, not thousands: read them all (bounded for safety).
    let items = query_all(
        state.items.as_ref(),
        QueryRequest::partition(forms_index_pk(&tenant))
            .on(Index::Gsi1)
            .limit(100),
        MAX_FORMS,
    )
    .await
    .map_err(port_error)?;
    let mut forms = Vec::with_capacity(items.len());
    for item in items {
        let meta: FormMeta =
            serde_json::from_value(item.data).map_err(|_| internal("form meta"))?;
        forms.push(FormSummary {
            title: meta.definition.title.clone(),
            slug: meta.slug,
            state: meta.state,
            published_version: meta.published_version,
            updated_at: meta.updated_at,
        });
    }
    Ok(Json(FormList { forms }))
}

/// Most forms one tenant's list reads.
pub const MAX_FORMS: usize = 2000;

/// Creates a form (state `draft`, working version 1).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/manage/forms",
    tag = "forms",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body = CreateForm,
    responses(
        (status = 201, description = "created", body = FormMetaDoc, headers(("etag" = String, description = "working version"))),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the slug is taken", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "invalid slug or definition; every problem per field", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_form(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<CreateForm>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    require(&state, &principal, &tenant, Action::ListForms, None).await?;
    let slug_error = (!is_valid_slug(&body.slug)).then(|| {
        FieldError::new(
            "slug",
            "invalid_format",
            "URLの識別子は英小文字・数字・ハイフンの3〜64文字にしてください。",
        )
    });
    let definition = match (checked_definition(&body.definition), slug_error) {
        (Ok(d), None) => d,
        (Ok(_), Some(e)) => return Err(ApiError::validation(vec![e])),
        (Err(mut err), slug_error) => {
            if let Some(e) = slug_error {
                err.problem.errors.insert(0, e);
            }
            return Err(err);
        }
    };
    let grants = owner_grants(&state, &principal, &tenant, body.department.as_deref()).await?;
    if !grants.owner.is_empty() {
        // The creator must be allowed to create a form for that department.
        let ctx = staff_context(
            state.items.as_ref(),
            &tenant,
            &principal.sub,
            principal.role == Role::Admin,
            &principal.depts,
        )
        .await
        .map_err(port_error)?;
        let resource = Resource::Form {
            tenant: &tenant,
            grants: &grants,
        };
        if !authorize(
            actor_of(&principal, Some(&ctx)),
            Action::CreateForm,
            resource,
        )
        .is_allowed()
        {
            return Err(ApiError::new(
                DomainError::Forbidden
                    .to_problem()
                    .with_detail("所属していない部署の様式は作成できません。"),
            ));
        }
    } else if principal.role != Role::Admin {
        return Err(ApiError::validation(vec![FieldError::new(
            "department",
            "required",
            "所管課を指定してください。",
        )]));
    }
    let now = state.clock.now().to_string();
    let meta = FormMeta {
        slug: body.slug,
        state: FormState::Draft,
        definition,
        published_version: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let mut ops = vec![TxOp::Put(
        meta_item(&tenant, &meta, 1),
        Condition::NotExists,
    )];
    if !grants.owner.is_empty() {
        let item = Item::new(
            Key::new(form_pk(&tenant, &meta.slug), FORM_GRANTS_SK),
            serde_json::to_value(&grants).expect("serializable"),
        );
        ops.push(TxOp::Put(item, Condition::NotExists));
    }
    state.items.transact(ops).await.map_err(|e| match e {
        PortError::ConditionFailed { .. } => ApiError::from(DomainError::Conflict {
            detail: "このURLの識別子はすでに使われています。".to_owned(),
        }),
        other => port_error(other),
    })?;
    tracing::info!("form created");
    record(
        &state,
        &tenant,
        &principal,
        AuditAction::FormCreate,
        &meta.slug,
        None,
    )
    .await?;
    Ok(with_etag(StatusCode::CREATED, 1, meta))
}

/// Reads the working copy (staff).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}",
    tag = "forms",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form's slug")),
    responses(
        (status = 200, description = "the working copy", body = FormMetaDoc, headers(("etag" = String, description = "working version, for If-Match"))),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_working(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let (meta, version) = load_meta(&state, &tenant, &slug).await?;
    Ok(with_etag(StatusCode::OK, version, meta))
}

/// Replaces the working copy's definition. Needs `If-Match` with the working version read.
/// Citizens see nothing of it until it is published.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form's slug"),
        ("if-match" = String, Header, description = "working version being replaced"),
    ),
    request_body(content = Object, description = "the definition (docs/forms.md)"),
    responses(
        (status = 200, description = "saved", body = FormMetaDoc, headers(("etag" = String, description = "new working version"))),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "someone saved first, or the form is archived", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "invalid definition; every problem per field", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_working(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let expected = required_if_match(&headers)?;
    let definition = checked_definition(&body)?;
    let (mut meta, version) = load_meta(&state, &tenant, &slug).await?;
    if version != expected {
        return Err(port_error(PortError::ConditionFailed { index: None }));
    }
    if meta.state == FormState::Archived {
        return Err(archived());
    }
    meta.definition = definition;
    meta.updated_at = state.clock.now().to_string();
    state
        .items
        .put(
            meta_item(&tenant, &meta, version + 1),
            Condition::VersionEquals(version),
        )
        .await
        .map_err(port_error)?;
    record(
        &state,
        &tenant,
        &principal,
        AuditAction::FormUpdate,
        &slug,
        Some(version + 1),
    )
    .await?;
    Ok(with_etag(StatusCode::OK, version + 1, meta))
}

fn archived() -> ApiError {
    DomainError::Conflict {
        detail: "この様式は保管済みです。変更できません。".to_owned(),
    }
    .into()
}

/// Publishes the working copy as a new immutable version; the form takes applications (within
/// its publish window). Applications in progress against the previous version must reload.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}/publish",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form's slug"),
        ("if-match" = String, Header, description = "working version being published"),
    ),
    responses(
        (status = 200, description = "published", body = PublishedFormDoc, headers(("etag" = String, description = "the published version"))),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "someone changed it first, or it is archived", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "the working copy is not valid", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn publish(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let expected = required_if_match(&headers)?;
    let (mut meta, version) = load_meta(&state, &tenant, &slug).await?;
    if version != expected {
        return Err(port_error(PortError::ConditionFailed { index: None }));
    }
    if meta.state == FormState::Archived {
        return Err(archived());
    }
    // Rules may have tightened since the copy was saved: check again at publication.
    let errors = validate_definition(&meta.definition);
    if !errors.is_empty() {
        return Err(ApiError::validation(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("definition.{}", e.field);
                    e
                })
                .collect(),
        ));
    }
    let published_version = meta.published_version.map_or(1, |v| v + 1);
    let now = state.clock.now().to_string();
    let published = PublishedForm {
        tenant: tenant.as_str().to_owned(),
        slug: slug.clone(),
        version: published_version,
        published_at: now.clone(),
        state: FormState::Published,
        definition: meta.definition.clone(),
    };
    meta.state = FormState::Published;
    meta.published_version = Some(published_version);
    meta.updated_at = now;
    let pk = form_pk(&tenant, &slug);
    let data = serde_json::to_value(&published).expect("serializable");
    let mut snapshot = Item::new(
        Key::new(pk.clone(), form_version_sk(published_version)),
        data.clone(),
    );
    snapshot.version = published_version;
    let mut current = Item::new(Key::new(pk, FORM_CURRENT_SK), data);
    current.version = published_version;
    state
        .items
        .transact(vec![
            TxOp::Put(
                meta_item(&tenant, &meta, version + 1),
                Condition::VersionEquals(version),
            ),
            TxOp::Put(snapshot, Condition::NotExists),
            TxOp::Put(current, Condition::None),
        ])
        .await
        .map_err(port_error)?;
    tracing::info!(version = published_version, "form published");
    record(
        &state,
        &tenant,
        &principal,
        AuditAction::FormPublish,
        &slug,
        Some(published_version),
    )
    .await?;
    Ok(with_etag(StatusCode::OK, published_version, published))
}

async fn set_state(
    state: &FormsState,
    tenant: &TenantId,
    slug: &str,
    expected: u64,
    to: FormState,
) -> Result<Response, ApiError> {
    let (mut meta, version) = load_meta(state, tenant, slug).await?;
    if version != expected {
        return Err(port_error(PortError::ConditionFailed { index: None }));
    }
    let allowed = match to {
        FormState::Closed => meta.state == FormState::Published,
        FormState::Archived => matches!(meta.state, FormState::Closed | FormState::Draft),
        _ => false,
    };
    if !allowed {
        let detail = match to {
            FormState::Closed => "公開中の様式だけを受付終了にできます。",
            _ => "受付を終了した様式（または未公開の様式）だけを保管できます。",
        };
        return Err(DomainError::Conflict {
            detail: detail.to_owned(),
        }
        .into());
    }
    meta.state = to;
    meta.updated_at = state.clock.now().to_string();
    let pk = form_pk(tenant, slug);
    let mut ops = vec![TxOp::Put(
        meta_item(tenant, &meta, version + 1),
        Condition::VersionEquals(version),
    )];
    if let Some(current) = state
        .items
        .get(&Key::new(pk.clone(), FORM_CURRENT_SK))
        .await
        .map_err(port_error)?
    {
        let mut published: PublishedForm =
            serde_json::from_value(current.data).map_err(|_| internal("published form"))?;
        published.state = to;
        let mut item = Item::new(
            Key::new(pk, FORM_CURRENT_SK),
            serde_json::to_value(&published).expect("serializable"),
        );
        item.version = current.version;
        ops.push(TxOp::Put(item, Condition::VersionEquals(current.version)));
    }
    state.items.transact(ops).await.map_err(port_error)?;
    tracing::info!(state = ?to, "form state changed");
    Ok(with_etag(StatusCode::OK, version + 1, meta))
}

/// Stops taking applications: new drafts and submissions are refused with a clear message.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}/close",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form's slug"),
        ("if-match" = String, Header, description = "working version read"),
    ),
    responses(
        (status = 200, description = "closed", body = FormMetaDoc),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "not published, or changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn close(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let expected = required_if_match(&headers)?;
    let res = set_state(&state, &tenant, &slug, expected, FormState::Closed).await?;
    record(
        &state,
        &tenant,
        &principal,
        AuditAction::FormClose,
        &slug,
        None,
    )
    .await?;
    Ok(res)
}

/// Hides a closed (or never published) form from citizens; its versions stay for the
/// applications made against them.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}/archive",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form's slug"),
        ("if-match" = String, Header, description = "working version read"),
    ),
    responses(
        (status = 200, description = "archived", body = FormMetaDoc),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "still open, or changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn archive(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let expected = required_if_match(&headers)?;
    let res = set_state(&state, &tenant, &slug, expected, FormState::Archived).await?;
    record(
        &state,
        &tenant,
        &principal,
        AuditAction::FormArchive,
        &slug,
        None,
    )
    .await?;
    Ok(res)
}

/// Reads one published version (staff; applications name the version they were made against).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/manage/forms/{slug}/versions/{version}",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form's slug"),
        ("version" = u64, Path, description = "published version"),
    ),
    responses(
        (status = 200, description = "that version", body = PublishedFormDoc),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form or version", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_version(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    ApiPath((tenant, slug, version)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    require(&state, &principal, &tenant, Action::ManageForm, Some(&slug)).await?;
    let version: u64 = version
        .parse()
        .ok()
        .filter(|v| (1..=999_999).contains(v))
        .ok_or(DomainError::NotFound)?;
    let item = state
        .items
        .get(&Key::new(form_pk(&tenant, &slug), form_version_sk(version)))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let form: PublishedForm =
        serde_json::from_value(item.data).map_err(|_| internal("form version"))?;
    Ok(with_etag(StatusCode::OK, version, form))
}

/// Who the bearer token says the caller is (handy for trying tokens out).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "forms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the verified principal", body = Principal),
        (status = 401, description = "missing, expired or tampered token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn me(Authenticated(principal): Authenticated) -> Json<Principal> {
    Json(principal)
}
