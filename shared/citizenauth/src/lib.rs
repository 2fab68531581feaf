//! Who is applying: a citizen account (bearer JWT of the citizen pool) or an address proven
//! by a one-time code (`X-Email-Proof` header with the proof token the submissions function's
//! e-mail verification issued).
//!
//! A function's state implements [`CitizenScope`] (its item store) and gives the
//! [`Authenticator`] through `FromRef`; handlers then take a [`Citizen`] argument.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use madoguchi_applications::Owner;
use madoguchi_applications::keys::{SINGLE_SK, proof_pk};
use madoguchi_domain::error::{DomainError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::Role;
use madoguchi_http::{ApiError, Authenticated, Authenticator};
use madoguchi_ports::{ItemStore, Key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the extractor needs from a function's state.
pub trait CitizenScope: Send + Sync {
    fn items(&self) -> &Arc<dyn ItemStore>;
}

/// Header carrying a proof of address.
pub const PROOF_HEADER: &str = "x-email-proof";

/// A verified applicant.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub tenant: TenantId,
    pub owner: Owner,
    /// Where notices go: the proven address or the account's verified one.
    pub email: Option<String>,
    /// The form a proof of address was issued for (`None` for accounts).
    pub proof_form: Option<String>,
}

impl Citizen {
    pub fn is_account(&self) -> bool {
        matches!(self.owner, Owner::Account(_))
    }
}

/// The stored proof (key: SHA-256 of the token; the token itself is never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofRecord {
    pub slug: String,
    pub email: String,
    pub email_index: String,
}

pub fn proof_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl<S> FromRequestParts<S> for Citizen
where
    S: CitizenScope,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tenant_segment = parts
            .uri
            .path()
            .strip_prefix("/v1/tenants/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let tenant = madoguchi_http::tenant_from_path(&tenant_segment)?;
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
            // Staff act on applications through the staff function, never as applicants.
            if principal.role != Role::Citizen || principal.tenant != tenant {
                return Err(DomainError::Forbidden.into());
            }
            return Ok(Citizen {
                tenant,
                owner: Owner::Account(principal.sub),
                email: principal.email,
                proof_form: None,
            });
        }
        let Some(token) = parts.headers.get(PROOF_HEADER) else {
            return Err(ApiError::unauthenticated());
        };
        let token = token
            .to_str()
            .map_err(|_| ApiError::invalid_token())?
            .trim();
        if token.is_empty() || token.len() > 128 {
            return Err(ApiError::invalid_token());
        }
        let item = state
            .items()
            .get(&Key::new(proof_pk(&tenant, &proof_hash(token)), SINGLE_SK))
            .await
            .map_err(madoguchi_http::port_error)?
            .ok_or_else(ApiError::invalid_token)?;
        let proof: ProofRecord = serde_json::from_value(item.data).map_err(|_| {
            tracing::error!("stored proof of address does not parse");
            ApiError::new(Problem::internal())
        })?;
        Ok(Citizen {
            tenant,
            owner: Owner::Email(proof.email_index),
            email: Some(proof.email),
            proof_form: Some(proof.slug),
        })
    }
}

/// Checks that this citizen may act on `slug` with `access` policy of the form: an account
/// where accounts are allowed, a proof issued for this very form where mail verification is.
pub fn may_use_form(
    citizen: &Citizen,
    slug: &str,
    access: madoguchi_domain::form::AccessPolicy,
) -> Result<(), ApiError> {
    use madoguchi_domain::form::AccessPolicy;
    let ok = match (&citizen.owner, access) {
        (Owner::Account(_), AccessPolicy::Account | AccessPolicy::Either) => true,
        (Owner::Email(_), AccessPolicy::Email | AccessPolicy::Either) => {
            citizen.proof_form.as_deref() == Some(slug)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::kind(
            403,
            "access-method",
            "この方法では申請できません。",
            match access {
                AccessPolicy::Account => "この申請にはアカウントでのログインが必要です。",
                _ => "この申請のためのメールアドレスの確認をやり直してください。",
            },
        ))
    }
}
