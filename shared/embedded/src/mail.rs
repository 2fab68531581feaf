//! `Mailer` that writes RFC 5322 messages into an outbox folder instead of sending them.
//!
//! Each message is `DATA_DIR/outbox/<yyyymmddThhmmssZ>-<uuid v7>.eml`, written to a hidden
//! temp file, fsynced and renamed, so a watcher never sees half a message. The subject is
//! RFC 2047 encoded (`=?UTF-8?B?...?=`, folded), the body is base64 UTF-8 `text/plain`.
//! The returned id is the UUID, which is also the `Message-ID` local part.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use madoguchi_ports::{Clock, Email, Mailer, PortError, PortResult};

use crate::fsutil;

/// Writes mail to `DATA_DIR/outbox/`. Obtain it from [`crate::EmbeddedBackend::mailer`].
pub struct OutboxMailer {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for OutboxMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMailer")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl OutboxMailer {
    pub(crate) fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self { dir, clock }
    }

    /// The outbox folder.
    pub fn outbox_dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// RFC 2047 encoded-words for `text`, each at most 75 characters, joined by folding
/// whitespace (CRLF SP). Splits only at character boundaries.
pub(crate) fn encode_words(text: &str) -> String {
    // 75 - len("=?UTF-8?B?") - len("?=") = 63 base64 characters, i.e. at most 45 bytes.
    const MAX_CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > MAX_CHUNK {
            words.push(&text[start..end]);
            start = i;
        }
        end = i + c.len_utf8();
    }
    if start < text.len() {
        words.push(&text[start..]);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// An address for a header: `Name <a@b>` with a non-ASCII name gets its name encoded;
/// anything else is written as given (RFC 6532 allows UTF-8 addresses).
fn header_address(addr: &str) -> String {
    let addr = addr.trim();
    if addr.is_ascii() {
        return addr.to_owned();
    }
    if let Some(open) = addr.rfind('<')
        && addr.ends_with('>')
    {
        let name = addr[..open].trim().trim_matches('"');
        if !name.is_empty() {
            return format!("{} {}", encode_words(name), &addr[open..]);
        }
    }
    addr.to_owned()
}

fn address_domain(addr: &str) -> &str {
    let addr = addr.trim().trim_end_matches('>');
    addr.rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty() && d.is_ascii() && !d.contains(['<', '>', ' ']))
        .unwrap_or("madoguchi.local")
}

pub(crate) fn render(email: &Email, id: &str, date: jiff::Timestamp) -> PortResult<String> {
    let date = jiff::fmt::rfc2822::to_string(&date.to_zoned(jiff::tz::TimeZone::UTC))
        .map_err(|_| PortError::Backend("mail date out of range".into()))?;
    let to = email
        .to
        .iter()
        .map(|a| header_address(a))
        .collect::<Vec<_>>()
        .join(",\r\n ");
    let subject = if email.subject.is_empty() {
        String::new()
    } else {
        encode_words(&email.subject)
    };
    let mut out = String::with_capacity(512 + email.text_body.len() * 4 / 3);
    out.push_str(&format!("From: {}\r\n", header_address(&email.from)));
    out.push_str(&format!("To: {to}\r\n"));
    out.push_str(&format!("Subject: {subject}\r\n"));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!(
        "Message-ID: <{id}@{}>\r\n",
        address_domain(&email.from)
    ));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
    out.push_str("Content-Transfer-Encoding: base64\r\n");
    out.push_str("\r\n");
    let body = STANDARD.encode(email.text_body.as_bytes());
    for line in body.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    Ok(out)
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> PortResult<String> {
        madoguchi_ports::mail::check_email(email)?;
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        let text = render(email, &id, now)?;
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let path = self.dir.join(format!("{stamp}-{id}.eml"));
        let dir = self.dir.clone();
        let size = text.len();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)
                .and_then(|()| fsutil::write_atomic(&path, text.as_bytes(), 0o600))
        })
        .await
        .map_err(|e| PortError::Backend(format!("mail task failed: {e}")))?
        .map_err(|e| fsutil::io_err("write outbox mail", e))?;
        tracing::info!(recipients = email.to.len(), size, message_id = %id, "mail written to outbox");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_words(s: &str) -> String {
        let mut bytes = Vec::new();
        for w in s.split("\r\n ") {
            assert!(w.len() <= 75, "encoded word too long: {w}");
            let inner = w
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("encoded word");
            bytes.extend(STANDARD.decode(inner).unwrap());
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn subjects_are_rfc2047_words_split_on_char_boundaries() {
        let subject = "【申請受付】住民票の写しの交付申請を受け付けました（受付番号 2026-000123）";
        let enc = encode_words(subject);
        assert!(enc.is_ascii());
        assert!(enc.contains("\r\n "), "long subject should fold");
        assert_eq!(decode_words(&enc), subject);
        assert_eq!(decode_words(&encode_words("a")), "a");
    }

    #[test]
    fn rendered_message_has_headers_and_base64_body() {
        let email = Email {
            from: "窓口 <noreply@city.example.jp>".into(),
            to: vec!["taro@example.jp".into(), "hanako@example.jp".into()],
            subject: "受付完了".into(),
            text_body: "山田様\n申請を受け付けました。\n".repeat(20),
        };
        let ts: jiff::Timestamp = "2026-04-01T09:30:00Z".parse().unwrap();
        let text = render(&email, "0190-abc", ts).unwrap();
        assert!(text.is_ascii());
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("From: =?UTF-8?B?"));
        assert!(head.contains(" <noreply@city.example.jp>\r\n"));
        assert!(head.contains("To: taro@example.jp,\r\n hanako@example.jp\r\n"));
        assert!(head.contains("Date: Wed, 1 Apr 2026 09:30:00 +0000"));
        assert!(head.contains("Message-ID: <0190-abc@city.example.jp>"));
        assert!(head.contains("Content-Type: text/plain; charset=UTF-8"));
        assert!(head.contains("Content-Transfer-Encoding: base64"));
        let subject = head
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert_eq!(decode_words(subject), "受付完了");
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        let decoded = STANDARD.decode(body.replace("\r\n", "")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), email.text_body);
    }
}
