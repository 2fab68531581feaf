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

/// GSI1 partition of a form's applications (sort key [`form_apps_sk`]): the staff list, by
/// submission time, across the form's versions.
pub fn form_apps_pk(tenant: &TenantId, slug: &str) -> String {
    tenant.key(&["FORMAPPS", slug])
}
pub fn form_apps_sk(submitted_at_millis: i64, id: &ApplicationId) -> String {
    format!("{submitted_at_millis:015}#{id}")
}
/// Memos (`MEMO#<ts>#<id>`) and staff attachments (`SATT#<id>`) live in the application
/// partition next to the record.
pub fn memo_sk(at_millis: i64, id: &str) -> String {
    format!("{MEMO_PREFIX}{at_millis:015}#{id}")
}
pub const MEMO_PREFIX: &str = "MEMO#";
pub fn staff_attachment_sk(id: &AttachmentId) -> String {
    format!("{STAFF_ATTACHMENT_PREFIX}{id}")
}
pub const STAFF_ATTACHMENT_PREFIX: &str = "SATT#";
/// Object key of a file staff attached to an application (attachments bucket).
pub fn staff_attachment_key(tenant: &TenantId, app: &ApplicationId, id: &AttachmentId) -> String {
    format!("staff/{}/{app}/{id}", tenant.as_str())
}

/// Grants on a form (its owning department and department → permissions), in the form
/// partition; versioned on its own so grants change without a new form version.
pub const FORM_GRANTS_SK: &str = "GRANTS";
/// The tenant's department tree (one item: a few hundred departments at most).
pub fn org_pk(tenant: &TenantId) -> String {
    tenant.key(&["ORG"])
}
/// Staff directory: `{tenant}#STAFF#s-<sha256(sub)[..32]>`; listed through GSI1.
pub fn staff_pk(tenant: &TenantId, sub: &str) -> String {
    let digest = hex::encode(Sha256::digest(sub.as_bytes()));
    tenant.key(&["STAFF", &format!("s-{}", &digest[..32])])
}
pub fn staff_index_pk(tenant: &TenantId) -> String {
    tenant.key(&["STAFFDIR"])
}
/// Staff sign-ins already recorded in the audit log (one per token).
pub fn login_pk(tenant: &TenantId, sub: &str, issued: i64) -> String {
    let digest = hex::encode(Sha256::digest(format!("{sub}\n{issued}").as_bytes()));
    tenant.key(&["LOGIN", &digest[..32]])
}
/// Export jobs: `{tenant}#EXPORT#<id>`.
pub fn export_pk(tenant: &TenantId, id: &str) -> String {
    tenant.key(&["EXPORT", id])
}
/// Object key of a CSV export (exports bucket).
pub fn export_key(tenant: &TenantId, id: &str) -> String {
    format!("exports/{}/{id}.csv", tenant.as_str())
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
