//! `Stripe-Signature` verification against the documented scheme: `t=<unix>,v1=<hex>`, where
//! v1 = hex(HMAC-SHA256(secret, "<t>.<raw body>")).

use jiff::{SignedDuration, Timestamp};
use madoguchi_payment_gateway::webhook::{
    DEFAULT_TOLERANCE, WebhookError, construct_event, sign, signature, verify,
};
use madoguchi_payment_gateway::{EventObject, IntentStatus};

const SECRET: &str = "whsec_test_secret";
const T: i64 = 1_700_000_000;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn event_body() -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/stripe/event_payment_intent_succeeded.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

#[test]
fn known_answer_from_an_independent_hmac() {
    // Computed with Python's hmac module: hmac.new(secret, b"1700000000." + body, sha256).
    let body = br#"{"id":"evt_1","object":"event"}"#;
    assert_eq!(
        signature(SECRET, T, body),
        "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
    );
    let header =
        format!("t={T},v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd");
    assert_eq!(
        verify(SECRET, Some(&header), body, at(T), DEFAULT_TOLERANCE),
        Ok(T)
    );
}

#[test]
fn good_signature_gives_the_typed_event() {
    let body = event_body();
    let header = sign(SECRET, T, &body);
    let event =
        construct_event(SECRET, Some(&header), &body, at(T + 10), DEFAULT_TOLERANCE).unwrap();
    assert_eq!(event.id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    assert_eq!(event.event_type, "payment_intent.succeeded");
    match event.data.object {
        EventObject::PaymentIntent(pi) => {
            assert_eq!(pi.id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
            assert_eq!(pi.status, IntentStatus::Succeeded);
            assert_eq!(pi.amount_received, 1500);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tampered_body_is_refused() {
    let body = event_body();
    let header = sign(SECRET, T, &body);
    let mut tampered = body.clone();
    let pos = tampered.windows(4).position(|w| w == b"1500").unwrap();
    tampered[pos] = b'9';
    assert_eq!(
        verify(SECRET, Some(&header), &tampered, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
    // Re-serialising the JSON (same content, other bytes) also fails: the raw body counts.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body);
    assert_eq!(
        verify(
            SECRET,
            Some(&header),
            &reserialised,
            at(T),
            DEFAULT_TOLERANCE
        ),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let body = event_body();
    let header = sign(SECRET, T, &body);
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T + 300), DEFAULT_TOLERANCE),
        Ok(T)
    );
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T + 301), DEFAULT_TOLERANCE),
        Err(WebhookError::TimestampOutsideTolerance {
            timestamp: T,
            now: T + 301
        })
    );
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T - 301), DEFAULT_TOLERANCE),
        Err(WebhookError::TimestampOutsideTolerance {
            timestamp: T,
            now: T - 301
        })
    );
    // A wider tolerance is the caller's choice.
    assert_eq!(
        verify(
            SECRET,
            Some(&header),
            &body,
            at(T + 3600),
            SignedDuration::from_secs(3600)
        ),
        Ok(T)
    );
    // Changing t in the header breaks the signature, so a replay cannot be refreshed.
    let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1000));
    assert_eq!(
        verify(SECRET, Some(&moved), &body, at(T + 1000), DEFAULT_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn wrong_secret_is_refused() {
    let body = event_body();
    let header = sign("whsec_other_tenant", T, &body);
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn any_of_several_v1_values_may_match_and_other_schemes_are_ignored() {
    let body = event_body();
    let good = signature(SECRET, T, &body);
    let old = signature("whsec_rolled_away", T, &body);
    let header = format!("t={T},v1={old},v1={good},v0=deadbeef,v2=unknown");
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T), DEFAULT_TOLERANCE),
        Ok(T)
    );
    // Order does not matter.
    let header = format!("t={T},v1={good},v1={old}");
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T), DEFAULT_TOLERANCE),
        Ok(T)
    );
    // The right HMAC under another scheme name does not count.
    let header = format!("t={T},v0={good},v1={old}");
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
    // Upper-case hex is still hex.
    let header = format!("t={T},v1={}", good.to_uppercase());
    assert_eq!(
        verify(SECRET, Some(&header), &body, at(T), DEFAULT_TOLERANCE),
        Ok(T)
    );
}

#[test]
fn missing_and_malformed_headers() {
    let body = event_body();
    assert_eq!(
        verify(SECRET, None, &body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::MissingHeader)
    );
    assert!(matches!(
        verify(SECRET, Some(""), &body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        verify(SECRET, Some("v1=abc"), &body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::Malformed(_))
    ));
    assert_eq!(
        verify(
            SECRET,
            Some(&format!("t={T}")),
            &body,
            at(T),
            DEFAULT_TOLERANCE
        ),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn good_signature_on_a_non_event_is_a_payload_error() {
    let body = b"not json";
    let header = sign(SECRET, T, body);
    assert!(matches!(
        construct_event(SECRET, Some(&header), body, at(T), DEFAULT_TOLERANCE),
        Err(WebhookError::InvalidPayload(_))
    ));
}
