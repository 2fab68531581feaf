//! Item-store keys of payments. Every partition key starts with the tenant.

use madoguchi_applications::keys::app_pk;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::Key;

/// The ledger: in the application's partition.
pub const LEDGER_SK: &str = "PAYMENT";

pub fn ledger_key(tenant: &TenantId, application: &ApplicationId) -> Key {
    Key::new(app_pk(tenant, application), LEDGER_SK)
}

/// Ledgers the reconciliation job must look at (sort key: application id). Small: only
/// payments in progress, refunds under way and unpaid payments at submission are in it.
pub fn open_pk(tenant: &TenantId) -> String {
    tenant.key(&["PAYOPEN"])
}

pub fn open_key(tenant: &TenantId, application: &ApplicationId) -> Key {
    Key::new(open_pk(tenant), application.to_string())
}

/// A gateway event already handled (dropped duplicates), kept 30 days.
pub fn event_key(tenant: &TenantId, event_id: &str) -> Key {
    Key::new(tenant.key(&["PAYEVT", event_id]), "EVENT")
}

/// Money movements of one form on one day (Japan time), for the daily report; sort key
/// `<at>#<application>#<kind>#<seq>`.
pub fn journal_pk(tenant: &TenantId, slug: &str, day: &str) -> String {
    tenant.key(&["PAYJOURNAL", slug, day])
}

/// The gateway customer of a citizen account (saved cards): in the owner's partition.
pub fn customer_key(tenant: &TenantId, owner_key_part: &str) -> Key {
    Key::new(tenant.key(&["OWNER", owner_key_part]), "PAYCUSTOMER")
}
