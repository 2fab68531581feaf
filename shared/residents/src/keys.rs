//! Item-store keys of the resident store. Every partition key starts with the tenant
//! (`TenantId::key`); see the crate documentation for the table of items.

use madoguchi_domain::tenant::TenantId;

/// A resident's partition: `CURRENT` and the history entries `H#…`.
pub fn resident_pk(tenant: &TenantId, atena: &str) -> String {
    tenant.key(&["RES", atena])
}

/// Sort key of a resident's current state.
pub const CURRENT_SK: &str = "CURRENT";

/// Prefix of every history entry's sort key.
pub const HISTORY_PREFIX: &str = "H#";

/// Sort key of the history entry written for one row: `H#{system}#{seq:020}#{row:020}`, so a
/// row applied twice writes the same key, and entries of one system sort in file order.
pub fn history_sk(system: &str, seq: u64, row: u64) -> String {
    format!("{HISTORY_PREFIX}{system}#{seq:020}#{row:020}")
}

/// GSI1 partition of a household (世帯): its members' `CURRENT` items, sort key the 宛名番号.
pub fn household_index_pk(tenant: &TenantId, household: &str) -> String {
    tenant.key(&["HH", household])
}

/// Partition of the lookup entries of everyone born on one day; `birth_index` is the blind
/// index of the date (see [`crate::BIRTH_DATE_INDEX_PURPOSE`]), so no key holds the date.
/// Sort key: the 宛名番号.
pub fn find_pk(tenant: &TenantId, birth_index: &str) -> String {
    tenant.key(&["RESFIND", birth_index])
}

/// The inbound file registry's partition of a core system (shared with `linkage-inbound`).
pub fn linkage_inbound_pk(tenant: &TenantId, system: &str) -> String {
    tenant.key(&["LINKAGE", "IN", system])
}

/// Sort key of a file's ingest checkpoint, beside (not in) its `FILE#{key}#{version}`
/// registration record.
pub fn checkpoint_sk(key: &str, version: &str) -> String {
    format!("CKPT#{key}#{version}")
}

/// Whether `part` may be used inside a key: non-empty, at most 64 characters, no `#` (the
/// separator) and no control characters.
pub(crate) fn key_safe(part: &str) -> bool {
    !part.is_empty()
        && part.chars().count() <= 64
        && !part.chars().any(|c| c == '#' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_start_with_the_tenant_and_sort_in_file_order() {
        let t = TenantId::parse("131016").unwrap();
        assert_eq!(resident_pk(&t, "0001"), "131016#RES#0001");
        assert_eq!(household_index_pk(&t, "77"), "131016#HH#77");
        assert_eq!(linkage_inbound_pk(&t, "jumin"), "131016#LINKAGE#IN#jumin");
        assert!(history_sk("jumin", 2, 9) < history_sk("jumin", 2, 10));
        assert!(history_sk("jumin", 2, 999) < history_sk("jumin", 10, 1));
        assert!(key_safe("0001234"));
        assert!(!key_safe(""));
        assert!(!key_safe("12#3"));
        assert!(!key_safe("12\n3"));
        assert!(!key_safe(&"1".repeat(65)));
    }
}
