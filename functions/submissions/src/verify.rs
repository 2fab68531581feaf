//! Applying without an account: a one-time code (確認コード) mailed to the address.
//!
//! - The code is 6 digits, valid for `Settings::code_expiry`, stored only as a keyed hash
//!   (blind index), at most [`MAX_ATTEMPTS`] wrong tries, then it is gone.
//! - At most [`MAX_SENDS_PER_HOUR`] codes per address per hour (counted by the address's
//!   blind index), so the endpoint cannot be used to flood someone's mailbox.
//! - A correct code yields a random proof token (stored as its SHA-256) bound to that form and
//!   address, used in the `X-Email-Proof` header.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use madoguchi_applications::keys::{SINGLE_SK, mail_rate_pk, proof_pk, verification_pk};
use madoguchi_domain::error::FieldError;
use madoguchi_domain::form::AccessPolicy;
use madoguchi_http::{ApiError, ApiJson, tenant_from_path};
use madoguchi_ports::{Condition, Email, Item, Key, PortError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::citizen::{ProofRecord, proof_hash};
use crate::{ApiPath, SubmissionsState, expires_after, internal, open_form, port_error};

pub const MAX_ATTEMPTS: u32 = 5;
pub const MAX_SENDS_PER_HOUR: u32 = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVerification {
    /// The applicant's mail address.
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationStarted {
    /// Id to confirm the code against.
    pub verification_id: String,
    /// RFC 3339 instant after which the code no longer works.
    pub expires_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmCode {
    /// The 6-digit code from the mail.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Proof {
    /// Send as the `X-Email-Proof` header on the form's routes.
    pub proof: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct VerificationRecord {
    slug: String,
    email: String,
    email_index: String,
    code_mac: String,
    attempts: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct RateRecord {
    sent: u32,
    window_start: i64,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Mails a one-time code for applying to this form without an account.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/email-verifications",
    tag = "submissions",
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form")),
    request_body = StartVerification,
    responses(
        (status = 201, description = "code mailed", body = VerificationStarted),
        (status = 403, description = "this form needs an account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the form does not take applications now", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a mail address", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "too many codes for this address", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the mail could not be sent", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(state): State<SubmissionsState>,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<StartVerification>,
) -> Result<(StatusCode, Json<VerificationStarted>), ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let form = open_form(&state, &tenant, &slug).await?;
    if form.definition.access == AccessPolicy::Account {
        return Err(ApiError::kind(
            403,
            "access-method",
            "この方法では申請できません。",
            "この申請にはアカウントでのログインが必要です。",
        ));
    }
    let email = madoguchi_domain::form::normalize_email(&body.email).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "email",
            "invalid_format",
            "メールアドレスの形式が正しくありません。",
        )])
    })?;
    let email_index = state
        .cipher
        .blind_index(&tenant, "email", email.as_bytes())
        .await
        .map_err(port_error)?;
    // The hourly limit counts the mailbox, however the local part's case is typed: mail
    // systems deliver `Taro@` and `TARO@` to the same box.
    let folded = email.to_lowercase();
    let rate_index = if folded == email {
        email_index.clone()
    } else {
        state
            .cipher
            .blind_index(&tenant, "email", folded.as_bytes())
            .await
            .map_err(port_error)?
    };
    count_send(&state, &tenant, &rate_index).await?;

    let mut rng = rand::rngs::OsRng;
    let code = format!("{:06}", rng.next_u32() % 1_000_000);
    let id = state.ids.new_id().to_string();
    let code_mac = state
        .cipher
        .blind_index(&tenant, "otp", format!("{id}:{code}").as_bytes())
        .await
        .map_err(port_error)?;
    let record = VerificationRecord {
        slug: slug.clone(),
        email: email.clone(),
        email_index,
        code_mac,
        attempts: 0,
    };
    let key = Key::new(verification_pk(&tenant, &id), SINGLE_SK);
    let mut item = Item::new(
        key.clone(),
        serde_json::to_value(&record).expect("serializable"),
    );
    let expires_at = expires_after(&state, state.settings.code_expiry);
    item.expires_at = Some(expires_at);
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    let minutes = state.settings.code_expiry.as_secs() / 60;
    let mail = Email {
        from: state.settings.mail_from.clone(),
        to: vec![email],
        subject: format!("【確認コード】{}", one_line(&form.definition.title)),
        text_body: format!(
            "「{title}」のオンライン申請のための確認コードです。\n\n\
             確認コード: {code}\n\n\
             このコードは{minutes}分間有効です。申請画面に入力してください。\n\
             お心当たりのない場合は、このメールを破棄してください。\n\
             このメールは送信専用です。\n",
            title = form.definition.title,
        ),
    };
    if let Err(e) = state.mailer.send(&mail).await {
        tracing::warn!(error = %e, "one-time code mail not sent");
        let _ = state.items.delete(&key, Condition::None).await;
        return Err(ApiError::kind(
            503,
            "mail-unavailable",
            "確認コードのメールを送信できませんでした。",
            "しばらくしてからもう一度お試しください。",
        ));
    }
    tracing::info!("one-time code sent");
    Ok((
        StatusCode::CREATED,
        Json(VerificationStarted {
            verification_id: id,
            expires_at: jiff::Timestamp::from_second(expires_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }),
    ))
}

fn one_line(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Counts a send in the address's hourly window; refuses beyond the limit.
async fn count_send(
    state: &SubmissionsState,
    tenant: &madoguchi_domain::tenant::TenantId,
    email_index: &str,
) -> Result<(), ApiError> {
    let key = Key::new(mail_rate_pk(tenant, email_index), SINGLE_SK);
    let now = state.clock.now().as_second();
    for _ in 0..3 {
        let current = state.items.get(&key).await.map_err(port_error)?;
        let (record, condition, version) = match current {
            Some(item) => {
                let r: RateRecord =
                    serde_json::from_value(item.data).map_err(|_| internal("rate"))?;
                let r = if now - r.window_start >= 3600 {
                    RateRecord {
                        sent: 0,
                        window_start: now,
                    }
                } else {
                    r
                };
                (r, Condition::VersionEquals(item.version), item.version + 1)
            }
            None => (
                RateRecord {
                    sent: 0,
                    window_start: now,
                },
                Condition::NotExists,
                1,
            ),
        };
        if record.sent >= MAX_SENDS_PER_HOUR {
            return Err(ApiError::kind(
                429,
                "too-many-codes",
                "確認コードの送信回数が上限に達しました。",
                "1時間ほど待ってからもう一度お試しください。",
            ));
        }
        let next = RateRecord {
            sent: record.sent + 1,
            window_start: record.window_start,
        };
        let mut item = Item::new(
            key.clone(),
            serde_json::to_value(&next).expect("serializable"),
        );
        item.version = version;
        item.expires_at = Some(next.window_start + 3600);
        match state.items.put(item, condition).await {
            Ok(()) => return Ok(()),
            Err(PortError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(port_error(e)),
        }
    }
    Err(port_error(PortError::Unavailable(
        "rate counter contended".into(),
    )))
}

/// Checks a one-time code; a correct one yields a proof of address for this form.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/email-verifications/{id}/confirm",
    tag = "submissions",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form"),
        ("id" = String, Path, description = "verification id"),
    ),
    request_body = ConfirmCode,
    responses(
        (status = 201, description = "address proven", body = Proof),
        (status = 404, description = "no such code, or it expired", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "wrong code (field `code`)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "too many wrong codes; start again", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    State(state): State<SubmissionsState>,
    ApiPath((tenant, slug, id)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<ConfirmCode>,
) -> Result<(StatusCode, Json<Proof>), ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let gone = || {
        ApiError::kind(
            404,
            "code-expired",
            "確認コードが見つかりません。",
            "確認コードの有効期限が切れたか、すでに使われています。もう一度送信してください。",
        )
    };
    if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(gone());
    }
    let key = Key::new(verification_pk(&tenant, &id), SINGLE_SK);
    let item = state
        .items
        .get(&key)
        .await
        .map_err(port_error)?
        .ok_or_else(gone)?;
    let mut record: VerificationRecord =
        serde_json::from_value(item.data.clone()).map_err(|_| internal("verification"))?;
    if record.slug != slug {
        return Err(gone());
    }
    let code: String = body
        .code
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect();
    let presented = state
        .cipher
        .blind_index(&tenant, "otp", format!("{id}:{code}").as_bytes())
        .await
        .map_err(port_error)?;
    if code.len() != 6 || !constant_time_eq(presented.as_bytes(), record.code_mac.as_bytes()) {
        record.attempts += 1;
        if record.attempts >= MAX_ATTEMPTS {
            let _ = state
                .items
                .delete(&key, Condition::VersionEquals(item.version))
                .await;
            return Err(ApiError::kind(
                429,
                "too-many-attempts",
                "確認コードの入力回数が上限に達しました。",
                "もう一度、確認コードの送信からやり直してください。",
            ));
        }
        let mut next = Item::new(key, serde_json::to_value(&record).expect("serializable"));
        next.version = item.version + 1;
        next.expires_at = item.expires_at;
        state
            .items
            .put(next, Condition::VersionEquals(item.version))
            .await
            .map_err(port_error)?;
        let left = MAX_ATTEMPTS - record.attempts;
        return Err(ApiError::validation(vec![FieldError::new(
            "code",
            "wrong_code",
            format!("確認コードが正しくありません（あと{left}回入力できます）。"),
        )]));
    }
    // Single use: whoever deletes it first gets the proof.
    state
        .items
        .delete(&key, Condition::VersionEquals(item.version))
        .await
        .map_err(|e| match e {
            PortError::ConditionFailed { .. } => gone(),
            other => port_error(other),
        })?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let proof = ProofRecord {
        slug,
        email: record.email,
        email_index: record.email_index,
    };
    let mut item = Item::new(
        Key::new(proof_pk(&tenant, &proof_hash(&token)), SINGLE_SK),
        serde_json::to_value(&proof).expect("serializable"),
    );
    let expires_at = expires_after(&state, state.settings.proof_expiry);
    item.expires_at = Some(expires_at);
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    tracing::info!("address verified");
    Ok((
        StatusCode::CREATED,
        Json(Proof {
            proof: token,
            expires_at: jiff::Timestamp::from_second(expires_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }),
    ))
}
