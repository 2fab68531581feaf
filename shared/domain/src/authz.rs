//! Who may do what: one pure function, [`authorize`], decides every request.
//!
//! - A tenant has a tree of departments (組織). A staff member belongs to departments; a
//!   grant to a department also covers the departments under it (a grant to 市民部 covers
//!   市民課 inside it), so a staff member's *effective* departments are their own and every
//!   ancestor ([`OrgTree::effective`]).
//! - Each form has an owning department (所管課) and grants: department → permissions
//!   ([`Permission`]).
//! - The tenant administrator (テナント管理者) manages departments, the staff directory and
//!   grants, and every form's definition; reading applications needs a grant like anyone
//!   else's (an administrator who grants themselves access leaves an audit record).
//! - Citizens reach only their own applications.
//!
//! Authentication (signature, expiry, audience, algorithm) is settled before this function:
//! a caller whose token failed any check is [`Actor::Anonymous`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::tenant::TenantId;

/// A permission a department holds on one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// 閲覧: list and read applications (sensitive fields masked).
    View,
    /// 処理: change the status, write memos, attach files.
    Process,
    /// 出力: CSV export.
    Export,
    /// 個人番号の復号: reveal a 個人番号, with a reason, audited.
    Decrypt,
    /// 様式管理: edit, publish, close the form.
    Manage,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Self::View,
        Self::Process,
        Self::Export,
        Self::Decrypt,
        Self::Manage,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Process => "process",
            Self::Export => "export",
            Self::Decrypt => "decrypt",
            Self::Manage => "manage",
        }
    }
}

/// `[a-z0-9][a-z0-9-]{0,31}`: department ids appear in keys and tokens.
pub fn is_valid_dept_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A department (部・課・係).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// 住民記録の照会: members (and members of departments below) may look up residents
    /// and their households at the counter. Off unless the administrator turns it on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resident_lookup: bool,
}

/// Why a department tree or a grant set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    #[error("department id {0:?} is not valid")]
    BadId(String),
    #[error("department {0:?} appears twice")]
    Duplicate(String),
    #[error("department {0:?} has no name")]
    NoName(String),
    #[error("department {0:?} names an unknown parent")]
    UnknownParent(String),
    #[error("department {0:?} is its own ancestor")]
    Cycle(String),
    #[error("grant names an unknown department {0:?}")]
    UnknownDepartment(String),
    #[error("department {0:?} still has forms or sub-departments")]
    InUse(String),
}

/// The tenant's departments (組織).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgTree {
    pub departments: Vec<Department>,
}

/// A tree deeper than this is refused (部・課・係・班 is 4; room to spare).
pub const MAX_DEPTH: usize = 8;

impl OrgTree {
    /// Checks ids, names, parents and cycles.
    pub fn validate(&self) -> Result<(), OrgError> {
        let mut seen = BTreeSet::new();
        for d in &self.departments {
            if !is_valid_dept_id(&d.id) {
                return Err(OrgError::BadId(d.id.clone()));
            }
            if d.name.trim().is_empty() || d.name.chars().count() > 100 {
                return Err(OrgError::NoName(d.id.clone()));
            }
            if !seen.insert(d.id.as_str()) {
                return Err(OrgError::Duplicate(d.id.clone()));
            }
        }
        for d in &self.departments {
            if let Some(p) = &d.parent
                && !seen.contains(p.as_str())
            {
                return Err(OrgError::UnknownParent(d.id.clone()));
            }
            // Walking up more than the tree's size means a loop.
            let mut at = d.parent.as_deref();
            let mut steps = 0;
            while let Some(p) = at {
                steps += 1;
                if p == d.id || steps > self.departments.len() || steps > MAX_DEPTH {
                    return Err(OrgError::Cycle(d.id.clone()));
                }
                at = self.get(p).and_then(|x| x.parent.as_deref());
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// The departments and all their ancestors: what grants are matched against. Unknown
    /// departments (a token naming a department the tenant deleted) count for nothing.
    pub fn effective(&self, depts: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for d in depts {
            let mut at = self.get(d);
            let mut steps = 0;
            while let Some(dept) = at {
                if !out.insert(dept.id.clone()) || steps > MAX_DEPTH {
                    break;
                }
                steps += 1;
                at = dept.parent.as_deref().and_then(|p| self.get(p));
            }
        }
        out
    }
}

/// Grants on one form: its owning department (所管課) and department → permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormGrants {
    pub owner: String,
    #[serde(default)]
    pub grants: BTreeMap<String, BTreeSet<Permission>>,
}

impl FormGrants {
    /// What a new form starts with: its owning department may do everything except reveal a
    /// 個人番号, which an administrator grants explicitly.
    pub fn for_new_form(owner: &str) -> Self {
        let all: BTreeSet<Permission> = [
            Permission::View,
            Permission::Process,
            Permission::Export,
            Permission::Manage,
        ]
        .into();
        Self {
            owner: owner.to_owned(),
            grants: BTreeMap::from([(owner.to_owned(), all)]),
        }
    }

    /// Working on, exporting or decrypting applications means reading them: those grants
    /// include 閲覧. Empty entries are dropped.
    pub fn normalised(mut self) -> Self {
        for perms in self.grants.values_mut() {
            if perms.iter().any(|p| {
                matches!(
                    p,
                    Permission::Process | Permission::Export | Permission::Decrypt
                )
            }) {
                perms.insert(Permission::View);
            }
        }
        self.grants.retain(|_, p| !p.is_empty());
        self
    }

    pub fn validate(&self, org: &OrgTree) -> Result<(), OrgError> {
        if !org.contains(&self.owner) {
            return Err(OrgError::UnknownDepartment(self.owner.clone()));
        }
        for d in self.grants.keys() {
            if !org.contains(d) {
                return Err(OrgError::UnknownDepartment(d.clone()));
            }
        }
        Ok(())
    }

    /// The department of `effective` that holds `permission`, if any.
    pub fn holder<'a>(
        &'a self,
        effective: &BTreeSet<String>,
        permission: Permission,
    ) -> Option<&'a str> {
        self.grants
            .iter()
            .find(|(d, p)| p.contains(&permission) && effective.contains(*d))
            .map(|(d, _)| d.as_str())
    }
}

/// Who is asking, after authentication.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// No valid credential: no token, or one that failed any check.
    Anonymous,
    /// A citizen, known by the owner key of their account or verified address.
    Citizen {
        tenant: &'a TenantId,
        owner: &'a str,
    },
    /// Staff; `depts` are the *effective* departments ([`OrgTree::effective`]).
    Staff {
        tenant: &'a TenantId,
        depts: &'a BTreeSet<String>,
        admin: bool,
    },
}

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    // Tenant-wide.
    /// The tenant's list of forms (titles and states, nothing personal).
    ListForms,
    /// Create a form owned by the resource's department.
    CreateForm,
    /// See the departments (names for the console).
    ReadOrganisation,
    /// Change departments, the staff directory or grants.
    ManageOrganisation,
    /// Read or verify the audit log.
    ReadAudit,
    // On a form.
    /// Read and edit the working copy, publish, close, archive.
    ManageForm,
    /// Counts and charts of a form's applications.
    ViewReports,
    ListApplications,
    ReadApplication,
    /// Status changes, memos, staff attachments.
    ProcessApplication,
    ExportApplications,
    DecryptMyNumber,
    /// Look up a resident (住民記録) and their household, to prefill at the counter.
    LookUpResidents,
    // A citizen on their own application.
    ReadOwnApplication,
    WithdrawOwnApplication,
    CorrectOwnApplication,
}

/// What it is asked about.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Tenant(&'a TenantId),
    Form {
        tenant: &'a TenantId,
        grants: &'a FormGrants,
    },
    Application {
        tenant: &'a TenantId,
        grants: &'a FormGrants,
        owner: &'a str,
    },
    /// The resident records (住民記録) of the tenant; who may read them is a flag on
    /// departments ([`Department::resident_lookup`]).
    Residents {
        tenant: &'a TenantId,
        org: &'a OrgTree,
    },
}

impl Resource<'_> {
    fn tenant(&self) -> &TenantId {
        match self {
            Resource::Tenant(t) => t,
            Resource::Form { tenant, .. }
            | Resource::Application { tenant, .. }
            | Resource::Residents { tenant, .. } => tenant,
        }
    }
    fn grants(&self) -> Option<&FormGrants> {
        match self {
            Resource::Tenant(_) | Resource::Residents { .. } => None,
            Resource::Form { grants, .. } | Resource::Application { grants, .. } => Some(grants),
        }
    }
}

/// Why access was allowed (kept with audit records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// Any staff member of the tenant may.
    StaffOfTenant,
    TenantAdmin,
    /// A grant of `permission` to `department` on the form.
    Grant {
        department: String,
        permission: Permission,
    },
    /// The citizen's own application.
    Owner,
    /// A department allowed to look up residents.
    ResidentLookup {
        department: String,
    },
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    NotAuthenticated,
    /// The resource belongs to another tenant.
    OtherTenant,
    /// A staff action asked by a citizen.
    StaffOnly,
    /// A citizen action asked by staff.
    CitizensOnly,
    AdminOnly,
    /// No effective department holds this permission on the form.
    NoGrant(Permission),
    /// Another citizen's application.
    NotOwner,
    /// No effective department may look up residents.
    NoResidentLookup,
    /// The action does not apply to this kind of resource (a programming error upstream).
    WrongResource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Basis),
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The permission a form-level staff action needs.
pub fn permission_for(action: Action) -> Option<Permission> {
    Some(match action {
        Action::ManageForm => Permission::Manage,
        Action::ViewReports | Action::ListApplications | Action::ReadApplication => {
            Permission::View
        }
        Action::ProcessApplication => Permission::Process,
        Action::ExportApplications => Permission::Export,
        Action::DecryptMyNumber => Permission::Decrypt,
        _ => return None,
    })
}

/// Decides one request. Pure: same inputs, same answer.
pub fn authorize(actor: Actor<'_>, action: Action, resource: Resource<'_>) -> Decision {
    use Decision::{Allow, Deny};
    let (tenant, depts, admin) = match actor {
        Actor::Anonymous => return Deny(DenyReason::NotAuthenticated),
        Actor::Citizen { tenant, owner } => {
            if tenant != resource.tenant() {
                return Deny(DenyReason::OtherTenant);
            }
            return match (action, resource) {
                (
                    Action::ReadOwnApplication
                    | Action::WithdrawOwnApplication
                    | Action::CorrectOwnApplication,
                    Resource::Application { owner: o, .. },
                ) => {
                    if o == owner {
                        Allow(Basis::Owner)
                    } else {
                        Deny(DenyReason::NotOwner)
                    }
                }
                (
                    Action::ReadOwnApplication
                    | Action::WithdrawOwnApplication
                    | Action::CorrectOwnApplication,
                    _,
                ) => Deny(DenyReason::WrongResource),
                _ => Deny(DenyReason::StaffOnly),
            };
        }
        Actor::Staff {
            tenant,
            depts,
            admin,
        } => (tenant, depts, admin),
    };
    if tenant != resource.tenant() {
        return Deny(DenyReason::OtherTenant);
    }
    match action {
        Action::ReadOwnApplication
        | Action::WithdrawOwnApplication
        | Action::CorrectOwnApplication => Deny(DenyReason::CitizensOnly),
        Action::ListForms | Action::ReadOrganisation => Allow(Basis::StaffOfTenant),
        // Need to know: only departments flagged for it, the administrator included (being
        // administrator does not make one a counter clerk).
        Action::LookUpResidents => {
            let Resource::Residents { org, .. } = resource else {
                return Deny(DenyReason::WrongResource);
            };
            match depts
                .iter()
                .find(|d| org.get(d).is_some_and(|x| x.resident_lookup))
            {
                Some(d) => Allow(Basis::ResidentLookup {
                    department: d.clone(),
                }),
                None => Deny(DenyReason::NoResidentLookup),
            }
        }
        Action::ManageOrganisation | Action::ReadAudit => {
            if admin {
                Allow(Basis::TenantAdmin)
            } else {
                Deny(DenyReason::AdminOnly)
            }
        }
        Action::CreateForm => {
            // The new form's owning department must be the creator's own (or any, for an
            // administrator): nobody creates forms in someone else's name.
            let Some(grants) = resource.grants() else {
                return Deny(DenyReason::WrongResource);
            };
            if admin {
                Allow(Basis::TenantAdmin)
            } else if depts.contains(&grants.owner) {
                Allow(Basis::Grant {
                    department: grants.owner.clone(),
                    permission: Permission::Manage,
                })
            } else {
                Deny(DenyReason::NoGrant(Permission::Manage))
            }
        }
        _ => {
            let Some(permission) = permission_for(action) else {
                return Deny(DenyReason::WrongResource);
            };
            let Some(grants) = resource.grants() else {
                return Deny(DenyReason::WrongResource);
            };
            if action == Action::ManageForm && admin {
                return Allow(Basis::TenantAdmin);
            }
            match grants.holder(depts, permission) {
                Some(d) => Allow(Basis::Grant {
                    department: d.to_owned(),
                    permission,
                }),
                None => Deny(DenyReason::NoGrant(permission)),
            }
        }
    }
}

/// Where a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A row in the applications list.
    List,
    /// The application detail.
    Detail,
    /// A CSV export.
    Export,
}

/// How a field's value appears in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Plain,
    /// Masked (`****-****-1234`); the plain value only through an explicit, audited decrypt.
    Masked,
    /// Not part of this view at all.
    Omitted,
}

/// Role-based masking, decided here for every view: sensitive fields (個人番号) are never
/// plain in a list, a detail or an export; a list shows only the columns it is made of.
pub fn shown(view: View, sensitive: bool, list_column: bool) -> Shown {
    match (view, sensitive) {
        (View::List, _) if !list_column => Shown::Omitted,
        (View::List, true) => Shown::Omitted,
        (_, true) => Shown::Masked,
        _ => Shown::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgTree {
        OrgTree {
            departments: vec![
                Department {
                    id: "shimin".into(),
                    name: "市民部".into(),
                    parent: None,
                    resident_lookup: false,
                },
                Department {
                    id: "shimin-ka".into(),
                    name: "市民課".into(),
                    parent: Some("shimin".into()),
                    resident_lookup: false,
                },
                Department {
                    id: "fukushi".into(),
                    name: "福祉課".into(),
                    parent: None,
                    resident_lookup: false,
                },
            ],
        }
    }

    #[test]
    fn trees_with_loops_or_unknown_parents_are_refused() {
        assert_eq!(org().validate(), Ok(()));
        let mut t = org();
        t.departments[0].parent = Some("shimin-ka".into());
        assert!(matches!(t.validate(), Err(OrgError::Cycle(_))));
        let mut t = org();
        t.departments[2].parent = Some("nowhere".into());
        assert_eq!(t.validate(), Err(OrgError::UnknownParent("fukushi".into())));
        let mut t = org();
        t.departments[2].id = "shimin".into();
        assert_eq!(t.validate(), Err(OrgError::Duplicate("shimin".into())));
        let mut t = org();
        t.departments[2].id = "Bad Id".into();
        assert!(matches!(t.validate(), Err(OrgError::BadId(_))));
    }

    #[test]
    fn a_grant_to_a_parent_covers_its_children() {
        let t = TenantId::parse("272060").unwrap();
        let mut grants = FormGrants::for_new_form("fukushi");
        grants
            .grants
            .insert("shimin".into(), [Permission::View].into());
        let eff = org().effective(&["shimin-ka".into()]);
        assert!(eff.contains("shimin"));
        let actor = Actor::Staff {
            tenant: &t,
            depts: &eff,
            admin: false,
        };
        let form = Resource::Form {
            tenant: &t,
            grants: &grants,
        };
        assert!(authorize(actor, Action::ListApplications, form).is_allowed());
        assert_eq!(
            authorize(actor, Action::ProcessApplication, form),
            Decision::Deny(DenyReason::NoGrant(Permission::Process))
        );
    }

    #[test]
    fn unknown_departments_in_a_token_count_for_nothing() {
        assert!(org().effective(&["gone".into()]).is_empty());
    }

    #[test]
    fn processing_implies_viewing() {
        let mut g = FormGrants::for_new_form("fukushi");
        g.grants
            .insert("shimin".into(), [Permission::Export].into());
        g.grants.insert("shimin-ka".into(), BTreeSet::new());
        let g = g.normalised();
        assert!(g.grants["shimin"].contains(&Permission::View));
        assert!(!g.grants.contains_key("shimin-ka"));
    }

    #[test]
    fn masking_never_shows_a_sensitive_value() {
        for view in [View::List, View::Detail, View::Export] {
            for col in [true, false] {
                assert_ne!(shown(view, true, col), Shown::Plain);
            }
        }
        assert_eq!(shown(View::Detail, false, false), Shown::Plain);
        assert_eq!(shown(View::List, false, false), Shown::Omitted);
    }
}
