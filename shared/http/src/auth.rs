//! Authentication: verifies a bearer JWT against the JWKS of a trusted issuer and turns its
//! claims into a [`Principal`].
//!
//! In AWS the issuers are the two Cognito user pools (citizens, staff); API Gateway's JWT
//! authorizer checks the token too, and we check again here so a function never trusts a
//! route's configuration alone. Locally the issuer is the development issuer
//! ([`crate::DevIssuer`]).
//!
//! What a token may claim depends on its issuer: a citizen pool can only ever produce
//! citizens, whatever groups or roles its token says, so a misconfigured custom attribute
//! cannot turn a citizen into staff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use madoguchi_domain::tenant::TenantId;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Citizen,
    Staff,
    /// Tenant administrator (テナント管理者): manages departments, roles and grants.
    Admin,
}

/// Who is calling, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Principal {
    /// The issuer's subject (Cognito `sub`).
    pub sub: String,
    #[schema(value_type = String, example = "272060")]
    pub tenant: TenantId,
    pub role: Role,
    /// Departments (組織) of a staff member; empty for citizens.
    pub depts: Vec<String>,
    /// Token expiry, epoch seconds.
    pub expires_at: i64,
    /// The verified mail address, when the token carries one (Cognito ID tokens do; an
    /// address the pool marks unverified is dropped). Receipt mail goes there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Which principals an issuer may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    /// Only citizens (the citizen user pool).
    Citizen,
    /// Staff and tenant administrators (the staff user pool).
    Staff,
    /// Anything the token says: only for the local development issuer.
    Development,
    /// Citizens who logged in with the My Number Card: tokens signed by the tenant's own
    /// card-login key, whose `kid` names the tenant (`card-<tenant>-…`); a token whose
    /// `tenant` claim is another tenant is refused.
    CardLogin,
}

/// Keys looked up by `kid` on demand (the card-login keys, one per tenant, kept in the
/// item store); an implementation caches as it sees fit.
#[async_trait::async_trait]
pub trait JwkProvider: Send + Sync + std::fmt::Debug {
    async fn find(&self, kid: &str) -> Result<Option<Jwk>, AuthError>;
}

#[derive(Debug)]
pub enum JwksSource {
    Static(JwkSet),
    /// Fetched over HTTPS and cached; refetched when a token names an unknown `kid`
    /// (key rotation), at most once a minute.
    Remote {
        url: String,
        cache: RwLock<Option<(JwkSet, Instant)>>,
    },
    Provider(Arc<dyn JwkProvider>),
}

#[derive(Debug)]
pub struct TrustedIssuer {
    /// Exact `iss` claim value.
    pub issuer: String,
    /// Accepted `aud` (ID tokens) or `client_id` (Cognito access tokens).
    pub audience: String,
    pub kind: IssuerKind,
    /// Tenant for tokens that carry none (a per-tenant citizen pool).
    pub default_tenant: Option<TenantId>,
    pub jwks: JwksSource,
}

impl TrustedIssuer {
    pub fn remote(issuer: &str, audience: &str, kind: IssuerKind, jwks_url: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kind,
            default_tenant: None,
            jwks: JwksSource::Remote {
                url: jwks_url.to_owned(),
                cache: RwLock::new(None),
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("signature or claims invalid: {0}")]
    Invalid(String),
    #[error("audience mismatch")]
    WrongAudience,
    #[error("claims missing or malformed: {0}")]
    Claims(&'static str),
    #[error("key set unavailable")]
    JwksUnavailable,
}

/// Asymmetric algorithms only: `none` and the HMAC family are refused, since an HMAC check
/// against a public key is the classic algorithm-confusion hole.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const JWKS_TTL: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<i64>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    client_id: Option<String>,
    #[serde(rename = "custom:tenant", default)]
    cognito_tenant: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(rename = "custom:depts", default)]
    cognito_depts: Option<String>,
    #[serde(default)]
    depts: Vec<String>,
    #[serde(default)]
    email: Option<String>,
    /// Cognito sends a boolean; some issuers send the string "true".
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

pub struct Authenticator {
    issuers: Vec<TrustedIssuer>,
    /// Only built when some issuer's keys are fetched over HTTPS.
    http: Option<reqwest::Client>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway: u64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Authenticator {
    pub fn new(issuers: Vec<TrustedIssuer>) -> Self {
        let remote = issuers
            .iter()
            .any(|i| matches!(i.jwks, JwksSource::Remote { .. }));
        let http = remote.then(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("static reqwest configuration")
        });
        Self {
            issuers,
            http,
            leeway: 30,
        }
    }

    pub fn shared(issuers: Vec<TrustedIssuer>) -> Arc<Self> {
        Arc::new(Self::new(issuers))
    }

    /// Verifies `token` and maps its claims. Never logs the token or its claims.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
        let (issuer, jwk) = self.find_key(kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Audience is checked below: Cognito access tokens carry `client_id` instead of `aud`.
        validation.validate_aud = false;
        validation.leeway = self.leeway;
        let data = decode::<RawClaims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))?;
        let claims = data.claims;
        let aud_ok = match &claims.aud {
            Some(serde_json::Value::String(a)) => a == &issuer.audience,
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(issuer.audience.as_str())),
            _ => claims.client_id.as_deref() == Some(issuer.audience.as_str()),
        };
        if !aud_ok {
            return Err(AuthError::WrongAudience);
        }
        if issuer.kind == IssuerKind::CardLogin {
            let tenant = claims
                .tenant
                .as_deref()
                .ok_or(AuthError::Claims("tenant"))?;
            if claims.cognito_tenant.is_some() || !kid.starts_with(&format!("card-{tenant}-")) {
                return Err(AuthError::Claims("tenant"));
            }
        }
        map_claims(issuer, claims)
    }

    async fn find_key(&self, kid: &str) -> Result<(&TrustedIssuer, Jwk), AuthError> {
        for force in [false, true] {
            for issuer in &self.issuers {
                let found = match &issuer.jwks {
                    JwksSource::Static(set) => set.find(kid).cloned(),
                    JwksSource::Remote { url, cache } => {
                        self.remote_key(url, cache, kid, force).await?
                    }
                    JwksSource::Provider(p) if !force => p.find(kid).await?,
                    JwksSource::Provider(_) => None,
                };
                if let Some(jwk) = found {
                    return Ok((issuer, jwk));
                }
            }
        }
        Err(AuthError::UnknownKey)
    }

    async fn remote_key(
        &self,
        url: &str,
        cache: &RwLock<Option<(JwkSet, Instant)>>,
        kid: &str,
        force: bool,
    ) -> Result<Option<Jwk>, AuthError> {
        {
            let guard = cache.read().await;
            if let Some((set, fetched)) = guard.as_ref() {
                let fresh = fetched.elapsed() < JWKS_TTL;
                let may_refresh = fetched.elapsed() >= JWKS_MIN_REFRESH;
                if let Some(k) = set.find(kid) {
                    if fresh {
                        return Ok(Some(k.clone()));
                    }
                } else if !force || !may_refresh {
                    return Ok(None);
                }
            }
        }
        let mut guard = cache.write().await;
        let http = self.http.as_ref().ok_or(AuthError::JwksUnavailable)?;
        let set: JwkSet = http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|_| AuthError::JwksUnavailable)?
            .json()
            .await
            .map_err(|_| AuthError::JwksUnavailable)?;
        let found = set.find(kid).cloned();
        *guard = Some((set, Instant::now()));
        Ok(found)
    }
}

fn map_claims(issuer: &TrustedIssuer, c: RawClaims) -> Result<Principal, AuthError> {
    let sub = c
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::Claims("sub"))?;
    let tenant = match c.cognito_tenant.or(c.tenant) {
        Some(t) => TenantId::parse(&t).map_err(|_| AuthError::Claims("tenant"))?,
        None => issuer.default_tenant.ok_or(AuthError::Claims("tenant"))?,
    };
    let claimed_role = if c.groups.iter().any(|g| g == "admin") {
        Some(Role::Admin)
    } else if c.groups.iter().any(|g| g == "staff") {
        Some(Role::Staff)
    } else {
        c.role
    };
    let role = match issuer.kind {
        IssuerKind::Citizen | IssuerKind::CardLogin => Role::Citizen,
        IssuerKind::Staff => match claimed_role {
            Some(Role::Admin) => Role::Admin,
            Some(Role::Staff) => Role::Staff,
            // A staff-pool user in no group has no business here.
            _ => return Err(AuthError::Claims("role")),
        },
        IssuerKind::Development => claimed_role.unwrap_or(Role::Citizen),
    };
    let mut depts = c.depts;
    if let Some(list) = c.cognito_depts {
        depts.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    if role == Role::Citizen {
        depts.clear();
    }
    let verified = match &c.email_verified {
        None => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        Some(_) => false,
    };
    let email = c.email.filter(|e| {
        verified && e.contains('@') && e.len() <= 254 && !e.chars().any(char::is_control)
    });
    Ok(Principal {
        sub,
        tenant,
        role,
        depts,
        expires_at: c.exp.ok_or(AuthError::Claims("exp"))?,
        email,
    })
}

/// The trusted issuers of a Lambda deployment, from the environment the CDK app sets:
/// `MADOGUCHI_CITIZEN_ISSUER` / `MADOGUCHI_CITIZEN_AUDIENCE` (the citizen user pool and app
/// client), `MADOGUCHI_STAFF_ISSUER` / `MADOGUCHI_STAFF_AUDIENCE` (the staff pool), and
/// `MADOGUCHI_TENANT` as the tenant of citizen tokens that carry none. The JWKS is the
/// issuer's `/.well-known/jwks.json`, as Cognito publishes it.
pub fn issuers_from_env() -> Result<Vec<TrustedIssuer>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let default_tenant = match var("MADOGUCHI_TENANT") {
        Some(t) => Some(
            TenantId::parse(&t)
                .map_err(|_| "MADOGUCHI_TENANT is not a valid 全国地方公共団体コード".to_owned())?,
        ),
        None => None,
    };
    let mut issuers = Vec::new();
    for (prefix, kind) in [
        ("CITIZEN", IssuerKind::Citizen),
        ("STAFF", IssuerKind::Staff),
    ] {
        let iss = var(&format!("MADOGUCHI_{prefix}_ISSUER"));
        let aud = var(&format!("MADOGUCHI_{prefix}_AUDIENCE"));
        match (iss, aud) {
            (Some(iss), Some(aud)) => {
                let jwks = format!("{}/.well-known/jwks.json", iss.trim_end_matches('/'));
                let mut issuer = TrustedIssuer::remote(&iss, &aud, kind, &jwks);
                issuer.default_tenant = default_tenant;
                issuers.push(issuer);
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "MADOGUCHI_{prefix}_ISSUER and MADOGUCHI_{prefix}_AUDIENCE go together"
                ));
            }
        }
    }
    Ok(issuers)
}
