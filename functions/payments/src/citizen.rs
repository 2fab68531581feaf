//! The citizen's side: what an application costs, paying it, saved cards.
//!
//! Card numbers never come here: the SPA tokenises the card with the gateway's browser
//! library and sends the payment method id it got. Saved cards belong to citizen accounts
//! (an address proven by a one-time code is no lasting identity to keep a card for).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use madoguchi_citizenauth::Citizen;
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_http::{ApiError, ApiJson, ApiPath};
use madoguchi_payment_gateway::{IdempotencyKey, IntentStatus, NewSetupIntent};
use madoguchi_payment_ledger::{PayRequest, Payments};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::view::{PaymentView, view};
use crate::{PaymentsState, no_store, pay_error};

fn parse_id(id: &str) -> Result<ApplicationId, ApiError> {
    ApplicationId::parse(id).map_err(|_| DomainError::NotFound.into())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/my/applications/{id}/payment",
    tag = "payments",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path), ("id" = String, Path, description = "the application")),
    responses(
        (status = 200, description = "the fee, what is due and every payment", body = PaymentView),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no fee on this application, or not the caller's", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(state): State<PaymentsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (ledger, _) = state
        .payments
        .load(&citizen.tenant, &id)
        .await
        .map_err(madoguchi_http::port_error)?
        .ok_or(DomainError::NotFound)?;
    if ledger.owner != citizen.owner.key_part() {
        return Err(DomainError::NotFound.into());
    }
    let sandbox = state.payments.gateway.is_sandbox();
    Ok(no_store(
        Json(view(&ledger, sandbox, false)).into_response(),
    ))
}

/// How to pay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayBody {
    /// The payment method id the gateway's browser library returned for the card entered
    /// (never a card number), or a saved card's id. Omitted with `use_saved_card` false:
    /// the answer's `client_secret` lets the SPA confirm the payment itself.
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Pay with the account's default saved card, without entering it again.
    #[serde(default)]
    pub use_saved_card: bool,
    /// Keep the card for next time (citizen accounts only).
    #[serde(default)]
    pub save_card: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayAnswer {
    pub payment: PaymentView,
    /// The charge this request made or found (a double click finds the first one).
    pub charge_seq: u32,
    /// `succeeded`, `requires_action` (3-D Secure: go to `redirect_url`, or confirm with the
    /// `client_secret` in the browser library), `processing`, `failed`, `canceled`.
    pub charge_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    pub sandbox: bool,
}

fn account_only(field: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(
        field,
        "account_required",
        "カードの保存・保存したカードでのお支払いには、アカウントでのログインが必要です。",
    )])
}

fn check_payment_method(pm: &Option<String>) -> Result<(), ApiError> {
    if let Some(pm) = pm
        && (pm.is_empty() || pm.len() > 255 || !pm.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "payment_method",
            "invalid",
            "カード情報を確認できませんでした。もう一度入力してください。",
        )]));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/my/applications/{id}/payment",
    tag = "payments",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path), ("id" = String, Path, description = "the application")),
    request_body = PayBody,
    responses(
        (status = 200, description = "paid (also the answer to a retry after the payment went through)", body = PayAnswer),
        (status = 202, description = "waiting for 3-D Secure or the gateway; the status follows", body = PayAnswer),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 402, description = "the card was declined: `errors[0].code` is `card.<decline code>`, the message says what to do", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application of the caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "nothing due, or the payment was cancelled", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad payment method, no saved card, or saving without an account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 502, description = "the gateway refused the request", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the gateway did not answer; trying again never charges twice", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn pay(
    State(state): State<PaymentsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    check_payment_method(&body.payment_method)?;
    let owner = citizen.owner.key_part();
    let tenant = citizen.tenant;
    if !citizen.is_account() {
        if body.save_card {
            return Err(account_only("save_card"));
        }
        if body.use_saved_card {
            return Err(account_only("use_saved_card"));
        }
    }
    let payments = &state.payments;
    let customer = if body.save_card {
        Some(
            payments
                .ensure_customer(&tenant, &owner, citizen.email.as_deref())
                .await
                .map_err(pay_error)?,
        )
    } else if body.use_saved_card {
        payments
            .customer(&tenant, &owner)
            .await
            .map_err(madoguchi_http::port_error)?
    } else {
        None
    };
    let outcome = payments
        .pay(
            &tenant,
            &id,
            &owner,
            customer,
            PayRequest {
                payment_method: body.payment_method,
                use_saved_card: body.use_saved_card,
                save_card: body.save_card,
            },
        )
        .await
        .map_err(pay_error)?;
    let charge = outcome
        .ledger
        .charge(outcome.charge_seq)
        .cloned()
        .ok_or(DomainError::NotFound)?;
    let sandbox = payments.gateway.is_sandbox();
    let intent = outcome.intent.as_ref();
    let waiting = intent.is_some_and(|i| {
        matches!(
            i.status,
            IntentStatus::RequiresAction
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresPaymentMethod
                | IntentStatus::Processing
        ) && i.last_payment_error.is_none()
    });
    let answer = PayAnswer {
        payment: view(&outcome.ledger, sandbox, false),
        charge_seq: charge.seq,
        charge_status: charge.status.as_str().to_owned(),
        client_secret: intent
            .filter(|_| waiting)
            .and_then(|i| i.client_secret.clone()),
        redirect_url: intent.and_then(|i| i.redirect_url().map(str::to_owned)),
        sandbox,
    };
    if charge.status == madoguchi_payment_ledger::ChargeStatus::Failed {
        let code = charge.failure.unwrap_or_else(|| "generic_decline".into());
        return Err(pay_error(madoguchi_payment_ledger::PayError::Declined {
            code,
        }));
    }
    let status = if waiting {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(no_store((status, Json(answer)).into_response()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    pub id: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
    /// Used when paying with the saved card.
    pub default: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<CardView>,
    pub sandbox: bool,
}

async fn account_customer(
    payments: &Payments,
    citizen: &Citizen,
) -> Result<Option<String>, ApiError> {
    if !citizen.is_account() {
        return Err(ApiError::kind(
            403,
            "account-required",
            "アカウントでのログインが必要です。",
            "保存したカードは、アカウントにログインしてお使いください。",
        ));
    }
    payments
        .customer(&citizen.tenant, &citizen.owner.key_part())
        .await
        .map_err(madoguchi_http::port_error)
}

async fn card_list(payments: &Payments, citizen: &Citizen) -> Result<CardList, ApiError> {
    let sandbox = payments.gateway.is_sandbox();
    let Some(customer) = account_customer(payments, citizen).await? else {
        return Ok(CardList {
            cards: Vec::new(),
            sandbox,
        });
    };
    let tenant = &citizen.tenant;
    let default = payments
        .gateway
        .retrieve_customer(tenant, &customer)
        .await
        .map_err(|e| pay_error(e.into()))?
        .invoice_settings
        .default_payment_method;
    let mut cards: Vec<CardView> = payments
        .gateway
        .list_payment_methods(tenant, &customer)
        .await
        .map_err(|e| pay_error(e.into()))?
        .into_iter()
        .map(|p| CardView {
            default: default.as_deref() == Some(p.id.as_str()),
            id: p.id,
            brand: p.brand,
            last4: p.last4,
            exp_month: p.exp_month,
            exp_year: p.exp_year,
        })
        .collect();
    // With no default set, the newest card is the one used: say so.
    if !cards.iter().any(|c| c.default)
        && let Some(first) = cards.first_mut()
    {
        first.default = true;
    }
    Ok(CardList { cards, sandbox })
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/my/payment-methods",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "the account's saved cards (brand, last four digits, expiry)", body = CardList),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not a citizen account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn cards(
    State(state): State<PaymentsState>,
    citizen: Citizen,
) -> Result<Response, ApiError> {
    let list = card_list(&state.payments, &citizen).await?;
    Ok(no_store(Json(list).into_response()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SetupAnswer {
    pub setup_intent: String,
    /// For the gateway's browser library, which takes the card and confirms the setup.
    pub client_secret: Option<String>,
    pub sandbox: bool,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/my/payment-methods/setup",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses(
        (status = 201, description = "a setup intent: the SPA confirms it with the new card", body = SetupAnswer),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not a citizen account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the gateway did not answer", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn setup(
    State(state): State<PaymentsState>,
    citizen: Citizen,
) -> Result<Response, ApiError> {
    account_customer(&state.payments, &citizen).await?;
    let owner = citizen.owner.key_part();
    let customer = state
        .payments
        .ensure_customer(&citizen.tenant, &owner, citizen.email.as_deref())
        .await
        .map_err(pay_error)?;
    let mut metadata = madoguchi_payment_gateway::Metadata::new();
    metadata.insert("tenant".into(), citizen.tenant.as_str().to_owned());
    let key = IdempotencyKey::new(format!("seti-{owner}-{}", state.ids.new_id()))
        .map_err(|e| pay_error(e.into()))?;
    let seti = state
        .payments
        .gateway
        .create_setup_intent(
            &citizen.tenant,
            &NewSetupIntent { customer, metadata },
            &key,
        )
        .await
        .map_err(|e| pay_error(e.into()))?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(SetupAnswer {
                setup_intent: seti.id,
                client_secret: seti.client_secret,
                sandbox: state.payments.gateway.is_sandbox(),
            }),
        )
            .into_response(),
    ))
}

/// The saved card must be one of the caller's own.
async fn own_card(state: &PaymentsState, citizen: &Citizen, pm: &str) -> Result<String, ApiError> {
    let customer = account_customer(&state.payments, citizen)
        .await?
        .ok_or(DomainError::NotFound)?;
    let cards = state
        .payments
        .gateway
        .list_payment_methods(&citizen.tenant, &customer)
        .await
        .map_err(|e| pay_error(e.into()))?;
    if !cards.iter().any(|c| c.id == pm) {
        return Err(DomainError::NotFound.into());
    }
    Ok(customer)
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/my/payment-methods/{pm}/default",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path), ("pm" = String, Path, description = "a saved card")),
    responses(
        (status = 200, description = "the cards, this one the default", body = CardList),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not a citizen account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "not a card of the caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn make_default(
    State(state): State<PaymentsState>,
    citizen: Citizen,
    ApiPath((_tenant, pm)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let customer = own_card(&state, &citizen, &pm).await?;
    state
        .payments
        .gateway
        .set_default_payment_method(&citizen.tenant, &customer, &pm)
        .await
        .map_err(|e| pay_error(e.into()))?;
    let list = card_list(&state.payments, &citizen).await?;
    Ok(no_store(Json(list).into_response()))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/my/payment-methods/{pm}",
    tag = "payments",
    security(("bearer" = [])),
    params(("tenant" = String, Path), ("pm" = String, Path, description = "a saved card")),
    responses(
        (status = 204, description = "removed from the account"),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not a citizen account", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "not a card of the caller", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn remove(
    State(state): State<PaymentsState>,
    citizen: Citizen,
    ApiPath((_tenant, pm)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    own_card(&state, &citizen, &pm).await?;
    state
        .payments
        .gateway
        .detach_payment_method(&citizen.tenant, &pm)
        .await
        .map_err(|e| pay_error(e.into()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
