//! What [`madoguchi_domain::authz::authorize`] needs from storage: the tenant's department
//! tree, a staff member's directory entry and a form's grants. The decision itself stays in
//! the domain crate; this module only loads its inputs, the same way for every function.

use std::collections::BTreeSet;

use madoguchi_domain::authz::{FormGrants, OrgTree};
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{ItemStore, Key, PortError};

use crate::keys::{FORM_GRANTS_SK, SINGLE_SK, form_pk, org_pk, staff_pk};
use crate::records::StaffMember;

/// A staff member as authorization sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffContext {
    /// Own departments and their ancestors.
    pub effective: BTreeSet<String>,
    pub admin: bool,
    /// False when the administrator switched the member off: they get nothing.
    pub active: bool,
    pub org: OrgTree,
}

/// The department tree and its stored version (0 when the tenant has none yet).
pub async fn load_org(
    items: &dyn ItemStore,
    tenant: &TenantId,
) -> Result<(OrgTree, u64), PortError> {
    match items.get(&Key::new(org_pk(tenant), SINGLE_SK)).await? {
        Some(item) => {
            let org = serde_json::from_value(item.data)
                .map_err(|_| PortError::Backend("stored department tree does not parse".into()))?;
            Ok((org, item.version))
        }
        None => Ok((OrgTree::default(), 0)),
    }
}

/// A form's grants and their version (0: none stored, which grants nothing).
pub async fn load_grants(
    items: &dyn ItemStore,
    tenant: &TenantId,
    slug: &str,
) -> Result<(FormGrants, u64), PortError> {
    match items
        .get(&Key::new(form_pk(tenant, slug), FORM_GRANTS_SK))
        .await?
    {
        Some(item) => {
            let grants = serde_json::from_value(item.data)
                .map_err(|_| PortError::Backend("stored grants do not parse".into()))?;
            Ok((grants, item.version))
        }
        None => Ok((FormGrants::default(), 0)),
    }
}

pub async fn load_member(
    items: &dyn ItemStore,
    tenant: &TenantId,
    sub: &str,
) -> Result<Option<(StaffMember, u64)>, PortError> {
    match items
        .get(&Key::new(staff_pk(tenant, sub), SINGLE_SK))
        .await?
    {
        Some(item) => {
            let m = serde_json::from_value(item.data)
                .map_err(|_| PortError::Backend("stored staff member does not parse".into()))?;
            Ok(Some((m, item.version)))
        }
        None => Ok(None),
    }
}

/// The staff member's effective departments: the directory entry's when the administrator
/// registered them (it overrides the token, so a move between departments takes effect at
/// once), otherwise the token's department claim.
pub async fn staff_context(
    items: &dyn ItemStore,
    tenant: &TenantId,
    sub: &str,
    admin: bool,
    token_depts: &[String],
) -> Result<StaffContext, PortError> {
    let (org, _) = load_org(items, tenant).await?;
    let member = load_member(items, tenant, sub).await?;
    let (depts, active) = match &member {
        Some((m, _)) => (m.depts.clone(), m.active),
        None => (token_depts.to_vec(), true),
    };
    let effective = if active {
        org.effective(&depts)
    } else {
        BTreeSet::new()
    };
    Ok(StaffContext {
        effective,
        admin: admin && active,
        active,
        org,
    })
}
