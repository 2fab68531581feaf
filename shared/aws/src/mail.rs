//! [`Mailer`] over SES v2 `SendEmail` (simple content, UTF-8).
//!
//! The sender (`Email::from`) must be a verified SES identity in the region.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use madoguchi_ports::{Email, Mailer, PortResult};

use crate::error::{malformed, map_sdk};

const CHARSET: &str = "UTF-8";

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn utf8(text: &str) -> PortResult<Content> {
    Content::builder()
        .data(text)
        .charset(CHARSET)
        .build()
        .map_err(|_| malformed("mail content"))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> PortResult<String> {
        // The same checks as the embedded outbox, before anything reaches SES.
        madoguchi_ports::mail::check_email(email)?;
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text_body)?).build())
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| map_sdk("sesv2", "SendEmail", &e))?;
        let id = out
            .message_id()
            .map(str::to_owned)
            .ok_or_else(|| malformed("SendEmail response"))?;
        tracing::info!(recipients = email.to.len(), message_id = %id, "mail accepted");
        Ok(id)
    }
}
