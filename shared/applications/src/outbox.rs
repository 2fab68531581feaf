//! The linkage outbox (後方連携の送信待ち): what staff actions leave for the
//! `linkage-outbound` function.
//!
//! A status change writes a [`PendingExport`] in the same transaction as the application,
//! so no change is lost between the two (a transactional outbox); the function reads the
//! pending entries, decides from `config/outbound.json` which systems take the application
//! at that status, and claims it for each at most once ([`ExportRecord`], conditional).
//! A re-export requested by staff is a pending entry naming its system.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | pending entry | `{tenant}#LINKAGE#OUT` | `PENDING#{application}#{discriminator}` |
//! | export record | `{tenant}#APP#{application}` | `EXPORT#{system}` |

use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::workflow::ApplicationStatus;
use madoguchi_ports::{Item, Key};
use serde::{Deserialize, Serialize};

use crate::keys;

/// The partition of the outbound function's own items.
pub fn outbound_pk(tenant: &TenantId) -> String {
    tenant.key(&["LINKAGE", "OUT"])
}
pub const PENDING_PREFIX: &str = "PENDING#";

/// An application waiting to be looked at by the outbound function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExport {
    pub application: ApplicationId,
    pub slug: String,
    /// The status it reached (what the outbound configuration matches on).
    pub status: ApplicationStatus,
    /// Set on a re-export requested by staff: only this system, even if exported before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reexport: Option<String>,
    pub at: String,
    /// Who asked (re-exports), for the audit record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The pending entry of a status change; `discriminator` keeps two changes of one
/// application apart (the timeline's length after the change).
pub fn pending_item(tenant: &TenantId, pending: &PendingExport, discriminator: &str) -> Item {
    Item::new(
        Key::new(
            outbound_pk(tenant),
            format!("{PENDING_PREFIX}{}#{discriminator}", pending.application),
        ),
        serde_json::to_value(pending).expect("serializable pending export"),
    )
}

pub fn export_sk(system: &str) -> String {
    format!("EXPORT#{system}")
}
pub const EXPORT_PREFIX: &str = "EXPORT#";

/// The key of an application's export record for one system.
pub fn export_key(tenant: &TenantId, application: &ApplicationId, system: &str) -> Key {
    Key::new(keys::app_pk(tenant, application), export_sk(system))
}

/// How an application went (or failed to go) to one system. `generation` counts the
/// exports (1 the first, +1 per re-export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub system: String,
    pub generation: u32,
    /// `claimed` into a batch, `written` when its file's manifest is out, `failed` when the
    /// application does not fit the layout (nothing sent; a re-export retries).
    pub state: ExportState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The data file, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub at: String,
    /// Why it failed (codes and column labels, never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ExportError>,
    /// The pending entry that made this claim, so that a rerun of the same entry (a crash
    /// after the claim, before the entry was deleted) does not claim twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Claimed,
    Written,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportError {
    pub column: String,
    pub code: String,
    pub message: String,
}
