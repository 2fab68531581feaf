//! Mail: outgoing notices to citizens and staff (SES in AWS, `.eml` files in an outbox
//! folder embedded).
//!
//! # Contract
//! - `send` accepts one message for delivery and returns a message id. Acceptance is not
//!   delivery; bounces come back another way.
//! - Subjects and bodies are UTF-8 (Japanese text is normal); adapters encode them for the wire.

use async_trait::async_trait;

use crate::error::PortResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text_body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &Email) -> PortResult<String>;
}
