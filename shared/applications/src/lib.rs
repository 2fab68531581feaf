//! The stored records of the application service and the keys they live under.
//!
//! Several functions read and write the same records: `forms` publishes form versions that
//! `submissions` reads; `submissions` writes drafts, attachments and applications that the
//! `attachments` consumer, `notify` and (later) `staff` read. Keeping the record types and key
//! builders in one crate keeps them from drifting apart. Access patterns: `docs/data-model.md`.

pub mod access;
pub mod keys;
pub mod outbox;
pub mod records;
pub mod signing;

pub use keys::Owner;
pub use records::*;

use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{Item, Key};

/// Milliseconds of an RFC 3339 timestamp as stored in records (0 if unreadable, which only a
/// hand-edited record could be).
pub fn millis(ts: &str) -> i64 {
    ts.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

/// The stored item of an application, with its GSI1 entry in the form's list. Every writer
/// of an application builds the item here, so no update drops it from the staff list.
pub fn application_item(tenant: &TenantId, record: &ApplicationRecord) -> Item {
    let mut item = Item::new(
        Key::new(keys::app_pk(tenant, &record.id), keys::APP_SK),
        serde_json::to_value(record).expect("serializable record"),
    );
    item.gsi1 = Some(Key::new(
        keys::form_apps_pk(tenant, &record.slug),
        keys::form_apps_sk(millis(&record.submitted_at), &record.id),
    ));
    item
}

/// The citizen's history entry of an application (status kept in step with the record).
pub fn history_item(tenant: &TenantId, record: &ApplicationRecord) -> Item {
    let owner_key = tenant.key(&["OWNER", &record.owner]);
    Item::new(
        Key::new(
            owner_key,
            keys::history_sk(millis(&record.submitted_at), &record.id),
        ),
        serde_json::to_value(HistoryEntry {
            id: record.id,
            receipt: record.receipt.clone(),
            slug: record.slug.clone(),
            form_title: record.form_title.clone(),
            status: record.status,
            submitted_at: record.submitted_at.clone(),
        })
        .expect("serializable entry"),
    )
}

/// 申請者氏名 from the confirmed rows: the first row labelled 氏名 or 名前 that is not a
/// reading (フリガナ). Forms without one list applications by receipt number only.
pub fn applicant_name(rows: &[DisplayRow]) -> Option<String> {
    rows.iter()
        .find(|r| {
            (r.label.contains("氏名") || r.label.contains("名前"))
                && !["フリガナ", "ふりがな", "カナ", "かな"]
                    .iter()
                    .any(|k| r.label.contains(k))
        })
        .map(|r| r.display.clone())
        .filter(|s| !s.is_empty())
}

/// The form citizens see (its `CURRENT` published version), whatever its window; `None` for
/// a malformed slug, a form never published, or an archived one. Every citizen-facing
/// function reads forms through this, so none serves an archived form.
pub async fn published_form(
    items: &dyn madoguchi_ports::ItemStore,
    tenant: &TenantId,
    slug: &str,
) -> madoguchi_ports::PortResult<Option<PublishedForm>> {
    if !madoguchi_domain::form::is_valid_slug(slug) {
        return Ok(None);
    }
    let Some(item) = items
        .get(&Key::new(
            keys::form_pk(tenant, slug),
            keys::FORM_CURRENT_SK,
        ))
        .await?
    else {
        return Ok(None);
    };
    let form: PublishedForm = serde_json::from_value(item.data)
        .map_err(|_| madoguchi_ports::PortError::Backend("published form does not parse".into()))?;
    Ok((form.state != FormState::Archived).then_some(form))
}
