//! The `payments` function: card payments of fees (手数料), docs/payments.md.
//!
//! - Citizens ([`citizen`]): see what an application costs and pay it (a new card
//!   tokenised by the SPA, or the account's saved card), keep, choose and remove saved cards.
//! - Staff ([`staff`]): see an application's payments, set or change its fee (a raise asks
//!   the citizen for the difference, a cut refunds it), the daily payment report per form.
//! - The gateway ([`webhook`]): signed webhooks are verified over the raw body, dropped when
//!   already handled, and queued for `payment-events`; the answer is immediate.
//!
//! The flows themselves are `madoguchi-payment-ledger`'s, shared with `payment-events`.

pub mod citizen;
pub mod staff;
pub mod view;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post, put};
use madoguchi_audit::AuditLog;
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_payment_gateway::GatewayAccounts;
use madoguchi_payment_ledger::{PayError, Payments};
use madoguchi_ports::{Clock, IdGen, ItemStore, Queue};
use utoipa::OpenApi;

#[derive(Clone)]
pub struct PaymentsState {
    pub items: Arc<dyn ItemStore>,
    pub payments: Payments,
    /// Each tenant's webhook secret (and API key, used by the gateway adapter).
    pub accounts: Arc<dyn GatewayAccounts>,
    /// The `payment-events` queue: verified webhook events.
    pub events: Arc<dyn Queue>,
    pub audit: AuditLog,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
}

impl FromRef<PaymentsState> for Arc<Authenticator> {
    fn from_ref(s: &PaymentsState) -> Self {
        s.auth.clone()
    }
}

impl madoguchi_citizenauth::CitizenScope for PaymentsState {
    fn items(&self) -> &Arc<dyn ItemStore> {
        &self.items
    }
}

impl madoguchi_staffauth::StaffScope for PaymentsState {
    fn items(&self) -> &Arc<dyn ItemStore> {
        &self.items
    }
    fn audit_log(&self) -> &AuditLog {
        &self.audit
    }
}

/// JSON bodies are small (ids and an amount); a webhook event is at most a few KB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(state: PaymentsState) -> Router {
    let t = "/v1/tenants/{tenant}";
    Router::new()
        .route(
            &format!("{t}/my/applications/{{id}}/payment"),
            get(citizen::show).post(citizen::pay),
        )
        .route(&format!("{t}/my/payment-methods"), get(citizen::cards))
        .route(
            &format!("{t}/my/payment-methods/setup"),
            post(citizen::setup),
        )
        .route(
            &format!("{t}/my/payment-methods/{{pm}}/default"),
            put(citizen::make_default),
        )
        .route(
            &format!("{t}/my/payment-methods/{{pm}}"),
            axum::routing::delete(citizen::remove),
        )
        .route(
            &format!("{t}/staff/applications/{{id}}/payment"),
            get(staff::show),
        )
        .route(
            &format!("{t}/staff/applications/{{id}}/fee"),
            put(staff::set_fee),
        )
        .route(
            &format!("{t}/staff/forms/{{slug}}/payments.csv"),
            get(staff::daily_csv),
        )
        .route(&format!("{t}/payments/webhook"), post(webhook::receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        citizen::show, citizen::pay, citizen::cards, citizen::setup, citizen::make_default,
        citizen::remove, staff::show, staff::set_fee, staff::daily_csv, webhook::receive,
    ),
    components(schemas(
        view::PaymentView, view::ChargeView, view::RefundView, view::HistoryView,
        view::FeeLineView, citizen::PayBody, citizen::PayAnswer, citizen::CardView,
        citizen::CardList, citizen::SetupAnswer, staff::FeeBody, webhook::Received,
    )),
    tags((name = "payments", description = "Card payments of fees: paying, saved cards, staff fee changes and reports, the gateway's webhooks"))
)]
struct PaymentsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    PaymentsApi::openapi()
}

/// Payment data is about one person: no cache on the way keeps a copy.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The citizen's words for a decline code (the gateway's own text is English and may echo
/// input; it is never shown).
pub fn decline_message(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => {
            "カードの利用可能額が不足しているため、お支払いできませんでした。別のカードをお使いください。"
        }
        "expired_card" => "カードの有効期限が切れています。別のカードをお使いください。",
        "incorrect_cvc" | "invalid_cvc" => {
            "セキュリティコードが正しくありません。確認してもう一度お試しください。"
        }
        "authentication_failed" | "authentication_required" => {
            "本人認証（3-Dセキュア）が完了しませんでした。もう一度お試しください。"
        }
        _ => {
            "カードが承認されませんでした。別のカードをお使いいただくか、カード会社にお問い合わせください。"
        }
    }
}

/// A flow's failure as the API answers it.
pub(crate) fn pay_error(e: PayError) -> ApiError {
    match e {
        PayError::NotFound => DomainError::NotFound.into(),
        PayError::Cancelled => ApiError::kind(
            409,
            "payment-cancelled",
            "このお支払いは取り消されました。",
            "お支払いの期限が過ぎたため、申請は取り消されました。もう一度申請してください。",
        ),
        PayError::NothingDue => ApiError::kind(
            409,
            "nothing-due",
            "お支払いいただく金額はありません。",
            "手数料はお支払い済みか、まだ確定していません。",
        ),
        PayError::Declined { code } => {
            let mut err = ApiError::kind(
                402,
                "card-declined",
                "カードが承認されませんでした。",
                decline_message(&code),
            );
            err.problem.errors.push(FieldError::new(
                "payment_method",
                format!("card.{code}"),
                decline_message(&code),
            ));
            err
        }
        PayError::NoSavedCard => ApiError::validation(vec![FieldError::new(
            "use_saved_card",
            "no_saved_card",
            "保存されたカードがありません。カード情報を入力してください。",
        )]),
        PayError::Unavailable(kind) => {
            tracing::warn!(%kind, "gateway unavailable");
            ApiError::kind(
                503,
                "gateway-unavailable",
                "決済サービスに接続できませんでした。",
                "しばらくしてからもう一度お試しください。二重に請求されることはありません。",
            )
        }
        PayError::Gateway(g) => match g {
            madoguchi_payment_gateway::GatewayError::InvalidRequest { param, .. }
                if param.as_deref() == Some("payment_method") =>
            {
                ApiError::validation(vec![FieldError::new(
                    "payment_method",
                    "invalid",
                    "カード情報を確認できませんでした。もう一度入力してください。",
                )])
            }
            madoguchi_payment_gateway::GatewayError::AuthenticationRequired { .. } => {
                ApiError::kind(
                    402,
                    "authentication-required",
                    "本人認証（3-Dセキュア）が必要です。",
                    "カード情報を入力してお支払いください。",
                )
            }
            other => {
                tracing::error!(kind = other.kind(), code = ?other.code(), "gateway refused");
                ApiError::kind(
                    502,
                    "gateway-error",
                    "決済サービスでエラーが発生しました。",
                    "しばらくしてからもう一度お試しください。",
                )
            }
        },
        PayError::Port(p) => madoguchi_http::port_error(p),
        PayError::Busy => DomainError::Conflict {
            detail: "ほかの操作と重なりました。もう一度お試しください。".to_owned(),
        }
        .into(),
    }
}

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route is in the document (that every error is problem+json is checked on the
    /// merged document, `shared/host/tests/openapi.rs`).
    #[test]
    fn openapi_documents_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&openapi().to_json().unwrap()).unwrap();
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, 10);
    }

    #[test]
    fn decline_messages_are_japanese_and_never_empty() {
        for code in [
            "insufficient_funds",
            "generic_decline",
            "expired_card",
            "authentication_failed",
            "",
        ] {
            let m = decline_message(code);
            assert!(m.ends_with('。'), "{code}");
            assert!(!m.is_ascii());
        }
    }
}
