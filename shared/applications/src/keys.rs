//! Item-store keys. Every partition key starts with the tenant (`TenantId::key`).

use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use madoguchi_domain::tenant::TenantId;
use sha2::{Digest, Sha256};

/// Form partition: `META` (the working copy and state), `CURRENT` (the published version
/// citizens see) and `V#nnnnnn` (each published version, immutable).
pub fn form_pk(tenant: &TenantId, slug: &str) -> String {
    tenant.key(&["FORM", slug])
}
pub const FORM_META_SK: &str = "META";
pub const FORM_CURRENT_SK: &str = "CURRENT";
pub fn form_version_sk(version: u64) -> String {
    format!("V#{version:06}")
}
/// GSI1 partition listing a tenant's forms (sort key: slug).
pub fn forms_index_pk(tenant: &TenantId) -> String {
    tenant.key(&["FORMS"])
}

/// Whose draft or application this is. The key never holds an identifier as given: an account
/// subject is hashed (subjects are not ours to trust as key material), an email address is
/// represented by its blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A citizen account (Cognito `sub`, or the development issuer locally).
    Account(String),
    /// A citizen without an account, verified by a one-time code; holds the HMAC blind index
    /// of the normalised address.
    Email(String),
}

impl Owner {
    /// Stable, key-safe spelling: `a-<sha256(sub)[..32]>` or `m-<blind index>`.
    pub fn key_part(&self) -> String {
        match self {
            Owner::Account(sub) => {
                let digest = Sha256::digest(sub.as_bytes());
                format!("a-{}", &hex::encode(digest)[..32])
            }
            Owner::Email(index) => format!("m-{index}"),
        }
    }
}

/// Owner partition: `DRAFT#<slug>` (one draft per form) and `APP#<submitted_at>#<id>`
/// (the history, newest last in sort order).
pub fn owner_pk(tenant: &TenantId, owner: &Owner) -> String {
    tenant.key(&["OWNER", &owner.key_part()])
}
pub fn draft_sk(slug: &str) -> String {
    format!("DRAFT#{slug}")
}
pub const HISTORY_PREFIX: &str = "APP#";
pub fn history_sk(submitted_at_millis: i64, id: &ApplicationId) -> String {
    format!("{HISTORY_PREFIX}{submitted_at_millis:015}#{id}")
}

/// Application partition: `APP` (the record), `MAIL#<event>` (sent-mail markers).
pub fn app_pk(tenant: &TenantId, id: &ApplicationId) -> String {
    tenant.key(&["APP", &id.to_string()])
}
pub const APP_SK: &str = "APP";
pub fn mail_sk(event: &str) -> String {
    format!("MAIL#{event}")
}

/// Upload partition of a draft: `ATT#<id>` per attachment and the `TOTAL` byte counter. The
/// draft id becomes the application id, so attachments follow the draft into the application.
pub fn upload_pk(tenant: &TenantId, draft: &ApplicationId) -> String {
    tenant.key(&["UPLOAD", &draft.to_string()])
}
pub fn attachment_sk(id: &AttachmentId) -> String {
    format!("ATT#{id}")
}
pub const ATTACHMENT_PREFIX: &str = "ATT#";
pub const UPLOAD_TOTAL_SK: &str = "TOTAL";

/// Receipt numbers, unique per tenant by a conditional put.
pub fn receipt_pk(tenant: &TenantId, receipt: &str) -> String {
    tenant.key(&["RECEIPT", receipt])
}
/// Idempotency records of submissions, per owner and key (the key is hashed: clients choose it).
pub fn idempotency_pk(tenant: &TenantId, owner: &Owner, key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    tenant.key(&["IDEM", &owner.key_part(), &digest[..32]])
}
/// One-time-code verifications, proofs and the per-address send counter.
pub fn verification_pk(tenant: &TenantId, id: &str) -> String {
    tenant.key(&["EMAILV", id])
}
pub fn proof_pk(tenant: &TenantId, token_hash: &str) -> String {
    tenant.key(&["PROOF", token_hash])
}
pub fn mail_rate_pk(tenant: &TenantId, email_index: &str) -> String {
    tenant.key(&["MAILRATE", email_index])
}
pub const SINGLE_SK: &str = "_";

/// Object key of an uploaded attachment in the attachments bucket. Objects stay under
/// `quarantine/`; whether one was accepted is recorded in the item store.
pub fn quarantine_key(tenant: &TenantId, draft: &ApplicationId, id: &AttachmentId) -> String {
    format!("{QUARANTINE_PREFIX}{}/{draft}/{id}", tenant.as_str())
}
pub const QUARANTINE_PREFIX: &str = "quarantine/";

/// Reverse of [`quarantine_key`]; `None` for any other key.
pub fn parse_quarantine_key(key: &str) -> Option<(TenantId, ApplicationId, AttachmentId)> {
    let rest = key.strip_prefix(QUARANTINE_PREFIX)?;
    let mut parts = rest.split('/');
    let tenant = TenantId::parse(parts.next()?).ok()?;
    let draft = ApplicationId::parse(parts.next()?).ok()?;
    let id = AttachmentId::parse(parts.next()?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((tenant, draft, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_keys_round_trip_and_refuse_others() {
        let t = TenantId::parse("272060").unwrap();
        let d = ApplicationId::parse("01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e").unwrap();
        let a = AttachmentId::parse("01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6f").unwrap();
        let key = quarantine_key(&t, &d, &a);
        assert_eq!(parse_quarantine_key(&key), Some((t, d, a)));
        assert_eq!(parse_quarantine_key(&format!("{key}/x")), None);
        assert_eq!(parse_quarantine_key("inbound/jumin/a.csv"), None);
        assert_eq!(
            parse_quarantine_key("quarantine/999999/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e/x"),
            None
        );
    }

    #[test]
    fn owners_never_put_raw_subjects_in_keys() {
        let o = Owner::Account("evil#sk".into());
        assert!(!o.key_part().contains('#'));
        assert_ne!(o.key_part(), Owner::Account("evil#sk2".into()).key_part());
    }
}
