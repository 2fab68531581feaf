//! The `forms` function: staff publish form definitions (様式), citizens read the published one.
//!
//! This is the thin first capability that proves the wiring through every layer (ports,
//! both adapter sets, auth, problem+json, OpenAPI, Lambda and the local host). The form
//! builder proper (field types, display conditions, settings) grows here.
//!
//! Storage (single table, every key starts with the tenant):
//! - `pk = {tenant}#FORM#{slug}`, `sk = CURRENT`: the latest published version (mutable,
//!   versioned; updates are conditional on the version the editor read).
//! - `pk = {tenant}#FORM#{slug}`, `sk = V#{version:06}`: each published version, immutable,
//!   written in the same transaction, so an application can always find the exact version it
//!   was made against.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::Role;
use madoguchi_http::{
    ApiError, ApiJson, Authenticated, Authenticator, Principal, tenant_from_path,
};
use madoguchi_ports::{Clock, Condition, Item, ItemStore, Key, PortError, TxOp};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// Ports the forms function needs.
#[derive(Clone)]
pub struct FormsState {
    pub items: Arc<dyn ItemStore>,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
}

impl FromRef<FormsState> for Arc<Authenticator> {
    fn from_ref(s: &FormsState) -> Self {
        s.auth.clone()
    }
}

pub fn router(state: FormsState) -> Router {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/forms/{slug}",
            get(get_form).put(put_form),
        )
        .route("/v1/me", get(me))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(get_form, put_form, me),
    components(schemas(PublishedForm, FormDefinition, FieldDefinition, FieldType, Principal, Role)),
    tags((name = "forms", description = "Form definitions"))
)]
struct FormsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    FormsApi::openapi()
}

/// Field kinds a form may hold. The validation of each kind's answers lives in the domain
/// crate as the form builder grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Radio,
    Select,
    Checkbox,
    Phone,
    Email,
    Date,
    Attachment,
    /// 個人番号 (My Number): stored encrypted, shown masked.
    MyNumber,
    Number,
    PostalCode,
    Name,
    Address,
    Heading,
    Explanation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDefinition {
    /// Stable id of the field inside the form: `[a-z][a-z0-9_]{0,63}`.
    pub id: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: String,
    #[serde(default)]
    pub required: bool,
    /// 補足説明 (help text shown under the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    pub title: String,
    /// 制度の概要 (overview of the procedure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<String>,
    pub fields: Vec<FieldDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublishedForm {
    #[schema(example = "272060")]
    pub tenant: String,
    pub slug: String,
    pub version: u64,
    /// RFC 3339 instant of publication.
    pub published_at: String,
    pub definition: FormDefinition,
}

const MAX_FIELDS: usize = 200;
const MAX_LABEL: usize = 200;

fn valid_slug(slug: &str) -> bool {
    (3..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

fn valid_field_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase())
        && id.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a definition as a whole and returns every problem at once, each naming its field.
pub fn validate_definition(def: &FormDefinition) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let title_len = def.title.trim().chars().count();
    if title_len == 0 {
        errors.push(FieldError::new(
            "title",
            "required",
            "様式の名称を入力してください。",
        ));
    } else if title_len > MAX_LABEL {
        errors.push(FieldError::new(
            "title",
            "too_long",
            "様式の名称は200文字以内で入力してください。",
        ));
    }
    if def.fields.is_empty() {
        errors.push(FieldError::new(
            "fields",
            "required",
            "項目を1つ以上追加してください。",
        ));
    }
    if def.fields.len() > MAX_FIELDS {
        errors.push(FieldError::new(
            "fields",
            "too_many",
            "項目は200個以内にしてください。",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, f) in def.fields.iter().enumerate() {
        if !valid_field_id(&f.id) {
            errors.push(FieldError::new(
                format!("fields[{i}].id"),
                "invalid_format",
                "項目IDは英小文字で始まり、英小文字・数字・_ の64文字以内にしてください。",
            ));
        } else if !seen.insert(f.id.as_str()) {
            errors.push(FieldError::new(
                format!("fields[{i}].id"),
                "duplicate",
                "項目IDが重複しています。",
            ));
        }
        let len = f.label.trim().chars().count();
        if len == 0 {
            errors.push(FieldError::new(
                format!("fields[{i}].label"),
                "required",
                "項目名を入力してください。",
            ));
        } else if len > MAX_LABEL {
            errors.push(FieldError::new(
                format!("fields[{i}].label"),
                "too_long",
                "項目名は200文字以内で入力してください。",
            ));
        }
    }
    errors
}

fn form_pk(tenant: &TenantId, slug: &str) -> String {
    tenant.key(&["FORM", slug])
}

fn version_sk(version: u64) -> String {
    format!("V#{version:06}")
}

fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "ほかの人が先に更新しました。再読み込みしてからやり直してください。".to_owned(),
        }
        .into(),
        other => {
            tracing::error!(error = %other, "item store failed");
            ApiError::new(madoguchi_domain::error::Problem::internal())
        }
    }
}

fn slug_or_404(slug: &str) -> Result<(), ApiError> {
    if valid_slug(slug) {
        Ok(())
    } else {
        Err(DomainError::NotFound.into())
    }
}

/// Reads the published definition of a form. Public: citizens need it before signing in.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/forms/{slug}",
    tag = "forms",
    params(("tenant" = String, Path, description = "全国地方公共団体コード (6 digits)"), ("slug" = String, Path, description = "the form's public slug")),
    responses(
        (status = 200, description = "the published definition", body = PublishedForm,
         headers(("etag" = String, description = "the version, for If-Match"))),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_form(
    State(state): State<FormsState>,
    Path((tenant, slug)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    slug_or_404(&slug)?;
    let item = state
        .items
        .get(&Key::new(form_pk(&tenant, &slug), "CURRENT"))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let form: PublishedForm = serde_json::from_value(item.data).map_err(|_| {
        tracing::error!("stored form does not parse");
        ApiError::new(madoguchi_domain::error::Problem::internal())
    })?;
    Ok(with_etag(StatusCode::OK, item.version, form))
}

/// Publishes a new version of a form. Creating needs no `If-Match`; replacing needs
/// `If-Match` with the version the editor read, so two editors never overwrite each other.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/forms/{slug}",
    tag = "forms",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "`[a-z0-9-]{3,64}`"),
        ("if-match" = Option<String>, Header, description = "version being replaced; omit to create"),
    ),
    request_body = FormDefinition,
    responses(
        (status = 201, description = "created (version 1)", body = PublishedForm),
        (status = 200, description = "new version published", body = PublishedForm),
        (status = 401, description = "no valid token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "exists already, or the version changed", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "invalid definition; every problem listed per field", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_form(
    State(state): State<FormsState>,
    Authenticated(principal): Authenticated,
    Path((tenant, slug)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(definition): ApiJson<FormDefinition>,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    // Interim rule until the authorization matrix lands: staff or admin of the same tenant.
    if principal.tenant != tenant || principal.role == Role::Citizen {
        return Err(DomainError::Forbidden.into());
    }
    if !valid_slug(&slug) {
        return Err(ApiError::validation(vec![FieldError::new(
            "slug",
            "invalid_format",
            "URLの識別子は英小文字・数字・ハイフンの3〜64文字にしてください。",
        )]));
    }
    let errors = validate_definition(&definition);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let expected = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::validation(vec![FieldError::new(
                        "if-match",
                        "invalid_format",
                        "If-Match には版番号を指定してください。",
                    )])
                })?,
        ),
    };
    let version = expected.map_or(1, |v| v + 1);
    let published = PublishedForm {
        tenant: tenant.as_str().to_owned(),
        slug: slug.clone(),
        version,
        published_at: state.clock.now().to_string(),
        definition,
    };
    let data = serde_json::to_value(&published).expect("serializable");
    let pk = form_pk(&tenant, &slug);
    let mut current = Item::new(Key::new(pk.clone(), "CURRENT"), data.clone());
    current.version = version;
    let mut snapshot = Item::new(Key::new(pk, version_sk(version)), data);
    snapshot.version = version;
    let condition = expected.map_or(Condition::NotExists, Condition::VersionEquals);
    state
        .items
        .transact(vec![
            TxOp::Put(current, condition),
            TxOp::Put(snapshot, Condition::NotExists),
        ])
        .await
        .map_err(port_error)?;
    tracing::info!(version, "form published");
    let status = if version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(status, version, published))
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

fn with_etag(status: StatusCode, version: u64, body: PublishedForm) -> Response {
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(valid_slug("juminhyo-request"));
        assert!(!valid_slug("ab"));
        assert!(!valid_slug("-abc"));
        assert!(!valid_slug("Abc"));
        assert!(!valid_slug("a/b/c"));
    }

    #[test]
    fn definition_errors_name_each_field() {
        let def = FormDefinition {
            title: " ".into(),
            overview: None,
            fields: vec![
                FieldDefinition {
                    id: "name".into(),
                    field_type: FieldType::Name,
                    label: "氏名".into(),
                    required: true,
                    help: None,
                },
                FieldDefinition {
                    id: "name".into(),
                    field_type: FieldType::Text,
                    label: "".into(),
                    required: false,
                    help: None,
                },
                FieldDefinition {
                    id: "9x".into(),
                    field_type: FieldType::Text,
                    label: "x".into(),
                    required: false,
                    help: None,
                },
            ],
        };
        let fields: Vec<_> = validate_definition(&def)
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("title".to_owned(), "required".to_owned()),
                ("fields[1].id".to_owned(), "duplicate".to_owned()),
                ("fields[1].label".to_owned(), "required".to_owned()),
                ("fields[2].id".to_owned(), "invalid_format".to_owned()),
            ]
        );
    }
}
