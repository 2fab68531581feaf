//! The `notify` function: mails the applicant the notices their form asks for.
//!
//! Messages on the `notify` queue carry ids only (tenant, application, event), never personal
//! data; the address and the text come from the application record. Each (application, event)
//! is mailed once: a conditional marker is written before sending and removed again if the
//! mail service refuses, so a failed send is retried (with the queue's backoff) and a
//! redelivered message after a successful send changes nothing.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use madoguchi_applications::keys::{APP_SK, app_pk, mail_sk};
use madoguchi_applications::{ApplicationRecord, NotifyMessage};
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::wareki::format_wareki;
use madoguchi_events::batch_failures;
use madoguchi_ports::{
    Clock, Condition, Email, Item, ItemStore, Key, Mailer, PortError, PortResult,
};

#[derive(Clone)]
pub struct NotifyState {
    pub items: Arc<dyn ItemStore>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    /// Sender address (a verified SES identity in AWS).
    pub mail_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Mailed,
    AlreadySent,
    /// The form does not mail this event, or there is no address.
    NotWanted,
    /// The message is not ours (malformed, unknown tenant or application).
    Dropped(&'static str),
}

pub async fn handle(state: &NotifyState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        match notify(state, body).await {
            Ok(outcome) => tracing::info!(?outcome, "notice handled"),
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "notice failed; will retry");
                failures.push(id);
            }
        }
    }
    batch_failures(failures)
}

/// Handles one message body. Errors are transient.
pub async fn notify(state: &NotifyState, body: &str) -> PortResult<Sent> {
    let Ok(message) = serde_json::from_str::<NotifyMessage>(body) else {
        return Ok(Sent::Dropped("not a notify message"));
    };
    let Ok(tenant) = TenantId::parse(&message.tenant) else {
        return Ok(Sent::Dropped("bad tenant"));
    };
    let Some(item) = state
        .items
        .get(&Key::new(app_pk(&tenant, &message.application), APP_SK))
        .await?
    else {
        return Ok(Sent::Dropped("no such application"));
    };
    let app: ApplicationRecord = serde_json::from_value(item.data)
        .map_err(|_| PortError::Backend("application record does not parse".into()))?;
    let Some(to) = app.email.clone() else {
        return Ok(Sent::NotWanted);
    };
    // Payment notices are part of the payment itself: always sent.
    let mandatory = PAYMENT_EVENTS.contains(&message.event.as_str());
    if !mandatory && !app.notify.iter().any(|e| e == &message.event) {
        return Ok(Sent::NotWanted);
    }
    let money = if mandatory {
        match payment_lines(state, &tenant, &app, &message).await? {
            Some(lines) => lines,
            // A payment notice states amounts; without a ledger there is nothing to say.
            None => return Ok(Sent::Dropped("no payment ledger")),
        }
    } else {
        String::new()
    };
    let Some(email) = compose(state, &app, &message.event, to, &money) else {
        return Ok(Sent::Dropped("no template for the event"));
    };
    let marker_event = match message.seq {
        Some(n) => format!("{}#{n}", message.event),
        None => message.event.clone(),
    };
    let marker = Key::new(app_pk(&tenant, &app.id), mail_sk(&marker_event));
    let mut item = Item::new(
        marker.clone(),
        serde_json::json!({ "sent_at": state.clock.now().to_string() }),
    );
    item.version = 1;
    match state.items.put(item, Condition::NotExists).await {
        Ok(()) => {}
        Err(PortError::ConditionFailed { .. }) => return Ok(Sent::AlreadySent),
        Err(e) => return Err(e),
    }
    if let Err(e) = state.mailer.send(&email).await {
        // Let the retry send it: remove the marker (if this fails too, the notice is marked
        // sent without being sent; logged so the help desk can resend).
        if let Err(undo) = state.items.delete(&marker, Condition::None).await {
            tracing::error!(error = %undo, application = %app.id, event = %message.event, "mail failed and its marker stays");
        }
        return Err(e);
    }
    Ok(Sent::Mailed)
}

/// `2026年11月23日 18:05` in Japan time, with the 和暦 date.
fn japan_time(rfc3339: &str) -> String {
    let Ok(ts) = rfc3339.parse::<jiff::Timestamp>() else {
        return rfc3339.to_owned();
    };
    let dt = jiff::tz::offset(9).to_datetime(ts);
    let wareki = format_wareki(dt.date())
        .map(|w| format!("（{w}）"))
        .unwrap_or_default();
    format!(
        "{}年{}月{}日{} {:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        wareki,
        dt.hour(),
        dt.minute()
    )
}

fn one_line(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Notices about the fee: sent whatever the form's notification settings say.
pub const PAYMENT_EVENTS: [&str; 3] = ["payment_requested", "payment_cancelled", "refunded"];

/// The amounts a payment notice states, read from the ledger when the mail is written.
async fn payment_lines(
    state: &NotifyState,
    tenant: &TenantId,
    app: &ApplicationRecord,
    message: &NotifyMessage,
) -> PortResult<Option<String>> {
    let Some(item) = state
        .items
        .get(&madoguchi_payment_ledger::keys::ledger_key(tenant, &app.id))
        .await?
    else {
        return Ok(None);
    };
    let ledger: madoguchi_payment_ledger::Ledger = serde_json::from_value(item.data)
        .map_err(|_| PortError::Backend("payment ledger does not parse".into()))?;
    Ok(Some(match message.event.as_str() {
        "payment_requested" => format!(
            "手数料: {}\nお支払い済み: {}\nお支払いいただく金額: {}\n\n\
             申請履歴の「お支払い」から、保存したカードまたは新しいカードでお支払いください。\n",
            ledger.fee,
            ledger.net(),
            ledger.due()
        ),
        "refunded" => {
            let amount = message
                .seq
                .and_then(|seq| ledger.refunds.iter().find(|r| u64::from(r.seq) == seq))
                .map(|r| r.amount.to_string())
                .unwrap_or_default();
            format!(
                "手数料が {} に変更されたため、{} をお支払いいただいたカードに返金します。\n\
                 カード会社の締め日により、ご利用明細への反映は翌月以降になることがあります。\n",
                ledger.fee, amount
            )
        }
        _ => String::new(),
    }))
}

/// The mail for an event, in Japanese; `money` is the payment notice's amounts.
fn compose(
    state: &NotifyState,
    app: &ApplicationRecord,
    event: &str,
    to: String,
    money: &str,
) -> Option<Email> {
    let title = one_line(&app.form_title);
    let (subject, lead) = match event {
        "received" => (
            format!("【受付完了】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請を受け付けました。"),
        ),
        "status_changed" => (
            format!("【状況更新】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請の状況が更新されました。"),
        ),
        "correction_requested" => (
            format!("【修正のお願い】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請について、内容の修正をお願いします。"),
        ),
        "completed" => (
            format!("【手続完了】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請の手続が完了しました。"),
        ),
        "payment_requested" => (
            format!("【お支払いのお願い】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請の手数料が確定しました。お支払いをお願いします。\n\n{money}"),
        ),
        "payment_cancelled" => (
            format!("【申請取消】{title}（受付番号 {}）", app.receipt),
            format!(
                "「{title}」の申請は、期限までにお支払いが完了しなかったため取り消しました。\n\
                 お手数ですが、もう一度申請してください。カードへの請求はありません。"
            ),
        ),
        "refunded" => (
            format!("【返金のお知らせ】{title}（受付番号 {}）", app.receipt),
            format!("「{title}」の申請の手数料について、返金の手続を行いました。\n\n{money}"),
        ),
        _ => return None,
    };
    let text_body = format!(
        "{lead}\n\n\
         受付番号: {receipt}\n\
         申請日時: {at}\n\n\
         申請の内容と状況は、申請履歴からご確認いただけます。\n\
         お問い合わせの際は受付番号をお伝えください。\n\n\
         このメールは送信専用です。返信いただいてもお答えできません。\n",
        receipt = app.receipt,
        at = japan_time(&app.submitted_at),
    );
    Some(Email {
        from: state.mail_from.clone(),
        to: vec![to],
        subject,
        text_body,
    })
}

#[cfg(test)]
mod tests {
    use super::japan_time;

    #[test]
    fn times_are_shown_in_japan_time_with_wareki() {
        assert_eq!(
            japan_time("2026-11-23T09:05:00Z"),
            "2026年11月23日（令和8年11月23日） 18:05"
        );
        assert_eq!(japan_time("garbage"), "garbage");
    }
}
