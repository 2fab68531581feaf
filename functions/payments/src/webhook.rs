//! The gateway's webhooks. No token: the `Stripe-Signature` header (HMAC-SHA256 over the
//! timestamp and the raw body, with the tenant's webhook secret, within 5 minutes) is the
//! only credential, checked before the body is even parsed. A verified event is queued for
//! `payment-events` and answered at once; an event already handled is answered without
//! queueing it again. Processing takes the state from the gateway's object, so neither a
//! repeat nor the order of arrival matters (`madoguchi-payment-ledger`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use madoguchi_http::{ApiError, ApiPath};
use madoguchi_payment_gateway::webhook::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, construct_event};
use madoguchi_payment_ledger::EventMessage;
use madoguchi_ports::OutgoingMessage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::PaymentsState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Received {
    pub received: bool,
    /// The event was handled before (a redelivery); nothing was queued.
    pub duplicate: bool,
}

fn refused() -> ApiError {
    // One answer for every signature problem: a caller learns nothing about which check
    // failed (the log says).
    // 401: the signature is this route's only credential.
    ApiError::kind(
        401,
        "bad-signature",
        "Webhook signature verification failed.",
        "The Stripe-Signature header does not match the body for this endpoint.",
    )
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/payments/webhook",
    tag = "payments",
    params(
        ("tenant" = String, Path),
        ("Stripe-Signature" = String, Header, description = "t=<unix time>,v1=<HMAC-SHA256 hex>"),
    ),
    request_body(content = String, content_type = "application/json", description = "the gateway's event, verified byte for byte"),
    responses(
        (status = 200, description = "verified and queued (or a duplicate)", body = Received),
        (status = 401, description = "signature missing, wrong, or older than 5 minutes; or not an event", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no gateway account for this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "not queued: the gateway retries later", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(state): State<PaymentsState>,
    ApiPath(tenant): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = madoguchi_http::tenant_from_path(&tenant)?;
    let credentials = match state.accounts.credentials(&tenant).await {
        Ok(c) => c,
        Err(e) if e.is_retryable() => {
            tracing::warn!(kind = e.kind(), "webhook secret not readable");
            return Err(unavailable());
        }
        Err(e) => {
            tracing::warn!(
                kind = e.kind(),
                "webhook for a tenant without a gateway account"
            );
            return Err(madoguchi_domain::error::DomainError::NotFound.into());
        }
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let event = construct_event(
        credentials.webhook_secret.expose(),
        signature,
        &body,
        state.clock.now(),
        DEFAULT_TOLERANCE,
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "webhook refused");
        refused()
    })?;
    if state
        .payments
        .seen_event(&tenant, &event.id)
        .await
        .map_err(|_| unavailable())?
    {
        tracing::info!(event = %event.id, "duplicate webhook");
        return Ok(ok(true));
    }
    // The queued message is the verified body itself (ids, amounts and states only).
    let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|_| refused())?;
    let message = serde_json::to_string(&EventMessage {
        tenant: tenant.as_str().to_owned(),
        event: raw,
    })
    .expect("serializable");
    state
        .events
        .send_batch(vec![OutgoingMessage::new(message)])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "webhook not queued");
            unavailable()
        })?;
    tracing::info!(event = %event.id, kind = %event.event_type, "webhook queued");
    Ok(ok(false))
}

fn ok(duplicate: bool) -> Response {
    (
        StatusCode::OK,
        Json(Received {
            received: true,
            duplicate,
        }),
    )
        .into_response()
}

fn unavailable() -> ApiError {
    ApiError::kind(
        503,
        "unavailable",
        "Temporarily unavailable.",
        "The event was not accepted; retry later.",
    )
}
