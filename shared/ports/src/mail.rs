//! Mail: outgoing notices to citizens and staff (SES in AWS, `.eml` files in an outbox
//! folder embedded).
//!
//! # Contract
//! - `send` accepts one message for delivery and returns a message id. Acceptance is not
//!   delivery; bounces come back another way.
//! - Subjects and bodies are UTF-8 (Japanese text is normal); adapters encode them for the wire.

use async_trait::async_trait;

use crate::error::{PortError, PortResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text_body: String,
}

/// SES's limit on recipients per message; both adapters keep to it.
pub const MAX_RECIPIENTS: usize = 50;

fn check_address(addr: &str) -> PortResult<()> {
    if addr.trim().is_empty() || addr.chars().any(char::is_control) || !addr.contains('@') {
        return Err(PortError::Invalid("mail address not allowed".into()));
    }
    Ok(())
}

/// The checks every adapter makes before sending: 1 to [`MAX_RECIPIENTS`] recipients,
/// addresses without control characters (no header injection), a subject on one line.
pub fn check_email(email: &Email) -> PortResult<()> {
    check_address(&email.from)?;
    if email.to.is_empty() || email.to.len() > MAX_RECIPIENTS {
        return Err(PortError::Invalid(format!(
            "a message has 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    for to in &email.to {
        check_address(to)?;
    }
    if email.subject.chars().any(char::is_control) {
        return Err(PortError::Invalid(
            "mail subject holds control characters".into(),
        ));
    }
    Ok(())
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &Email) -> PortResult<String>;
}
