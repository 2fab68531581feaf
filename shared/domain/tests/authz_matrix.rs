//! `authorize` as a whole matrix: every action × every kind of actor × every kind of resource,
//! compared with the table in `authz_matrix.txt` (reviewed by hand; regenerate with
//! `MADOGUCHI_WRITE_MATRIX=1 cargo test -p madoguchi-domain --test authz_matrix` and read the
//! diff: every new `allow` is a new permission). The HTTP-level matrix over every route is
//! `shared/host/tests/authz_matrix.rs`.

use std::collections::BTreeSet;
use std::fmt::Write;

use madoguchi_domain::authz::{
    Action, Actor, Decision, Department, FormGrants, OrgTree, Permission, Resource, authorize,
};
use madoguchi_domain::tenant::TenantId;

const ACTIONS: [Action; 16] = [
    Action::ListForms,
    Action::CreateForm,
    Action::ReadOrganisation,
    Action::ManageOrganisation,
    Action::ReadAudit,
    Action::ManageForm,
    Action::ViewReports,
    Action::ListApplications,
    Action::ReadApplication,
    Action::ProcessApplication,
    Action::ExportApplications,
    Action::DecryptMyNumber,
    Action::LookUpResidents,
    Action::ReadOwnApplication,
    Action::WithdrawOwnApplication,
    Action::CorrectOwnApplication,
];

fn org() -> OrgTree {
    let d = |id: &str, parent: Option<&str>| Department {
        id: id.into(),
        name: id.into(),
        parent: parent.map(Into::into),
        // 市民課 works the counter: it (and 戸籍係 below it) may look up residents.
        resident_lookup: id == "shimin-ka",
    };
    OrgTree {
        departments: vec![
            d("shimin", None),
            d("shimin-ka", Some("shimin")),
            d("koseki-kakari", Some("shimin-ka")),
            d("fukushi", None),
            d("kaikei", None),
        ],
    }
}

fn render() -> String {
    let tenant = TenantId::parse("272060").unwrap();
    let other = TenantId::parse("131016").unwrap();
    let org = org();
    // The form is owned by 市民課; 市民部 (its parent) may reveal 個人番号; 会計課 may export.
    let mut grants = FormGrants::for_new_form("shimin-ka");
    grants
        .grants
        .insert("shimin".into(), [Permission::Decrypt].into());
    grants
        .grants
        .insert("kaikei".into(), [Permission::Export].into());
    let grants = grants.normalised();
    let depts = |list: &[&str]| -> BTreeSet<String> {
        org.effective(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    let clerk = depts(&["shimin-ka"]);
    let sub_unit = depts(&["koseki-kakari"]);
    let parent = depts(&["shimin"]);
    let welfare = depts(&["fukushi"]);
    let accounts = depts(&["kaikei"]);
    let none = BTreeSet::new();
    let actors: Vec<(&str, Actor)> = vec![
        ("anonymous", Actor::Anonymous),
        (
            "citizen (owner)",
            Actor::Citizen {
                tenant: &tenant,
                owner: "a-owner",
            },
        ),
        (
            "citizen (other)",
            Actor::Citizen {
                tenant: &tenant,
                owner: "a-other",
            },
        ),
        (
            "citizen (other tenant)",
            Actor::Citizen {
                tenant: &other,
                owner: "a-owner",
            },
        ),
        (
            "staff 市民課 (owner)",
            Actor::Staff {
                tenant: &tenant,
                depts: &clerk,
                admin: false,
            },
        ),
        (
            "staff 戸籍係 (under owner)",
            Actor::Staff {
                tenant: &tenant,
                depts: &sub_unit,
                admin: false,
            },
        ),
        (
            "staff 市民部 (parent)",
            Actor::Staff {
                tenant: &tenant,
                depts: &parent,
                admin: false,
            },
        ),
        (
            "staff 会計課 (export only)",
            Actor::Staff {
                tenant: &tenant,
                depts: &accounts,
                admin: false,
            },
        ),
        (
            "staff 福祉課 (no grant)",
            Actor::Staff {
                tenant: &tenant,
                depts: &welfare,
                admin: false,
            },
        ),
        (
            "staff, no department",
            Actor::Staff {
                tenant: &tenant,
                depts: &none,
                admin: false,
            },
        ),
        (
            "staff 市民課, other tenant",
            Actor::Staff {
                tenant: &other,
                depts: &clerk,
                admin: false,
            },
        ),
        (
            "admin",
            Actor::Staff {
                tenant: &tenant,
                depts: &none,
                admin: true,
            },
        ),
        (
            "admin, other tenant",
            Actor::Staff {
                tenant: &other,
                depts: &none,
                admin: true,
            },
        ),
    ];
    let resources: Vec<(&str, Resource)> = vec![
        ("tenant", Resource::Tenant(&tenant)),
        (
            "form",
            Resource::Form {
                tenant: &tenant,
                grants: &grants,
            },
        ),
        (
            "application",
            Resource::Application {
                tenant: &tenant,
                grants: &grants,
                owner: "a-owner",
            },
        ),
        (
            "residents",
            Resource::Residents {
                tenant: &tenant,
                org: &org,
            },
        ),
    ];
    let mut out = String::new();
    for (rname, resource) in &resources {
        writeln!(out, "## {rname}").unwrap();
        for action in ACTIONS {
            let cells: Vec<String> = actors
                .iter()
                .map(|(aname, actor)| {
                    let d = authorize(*actor, action, *resource);
                    // Pure: asked twice, the same answer.
                    assert_eq!(d, authorize(*actor, action, *resource));
                    match d {
                        Decision::Allow(_) => format!("{aname}: allow"),
                        Decision::Deny(r) => format!("{aname}: deny {r:?}"),
                    }
                })
                .collect();
            writeln!(out, "{action:?}").unwrap();
            for c in cells {
                writeln!(out, "  {c}").unwrap();
            }
        }
    }
    out
}

#[test]
fn every_action_for_every_actor_on_every_resource() {
    let actual = render();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authz_matrix.txt");
    if std::env::var_os("MADOGUCHI_WRITE_MATRIX").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let unexpected: Vec<String> = actual
            .lines()
            .zip(expected.lines())
            .filter(|(a, e)| a != e)
            .map(|(a, e)| format!("expected `{}`, got `{}`", e.trim(), a.trim()))
            .collect();
        panic!(
            "authorize differs from tests/authz_matrix.txt:\n{}",
            unexpected.join("\n")
        );
    }
}

#[test]
fn no_one_outside_the_tenant_is_ever_allowed() {
    let table = render();
    let mut allowed_outside = Vec::new();
    let mut action = "";
    for line in table.lines() {
        if !line.starts_with(' ') {
            action = line;
            continue;
        }
        if line.contains("other tenant") && line.ends_with("allow") {
            allowed_outside.push(format!("{action}: {}", line.trim()));
        }
    }
    assert!(allowed_outside.is_empty(), "{allowed_outside:#?}");
}

#[test]
fn personal_data_needs_a_grant_even_for_the_administrator() {
    let tenant = TenantId::parse("272060").unwrap();
    let none = BTreeSet::new();
    let grants = FormGrants::for_new_form("shimin-ka");
    let admin = Actor::Staff {
        tenant: &tenant,
        depts: &none,
        admin: true,
    };
    let app = Resource::Application {
        tenant: &tenant,
        grants: &grants,
        owner: "a-x",
    };
    for action in [
        Action::ReadApplication,
        Action::ProcessApplication,
        Action::ExportApplications,
        Action::DecryptMyNumber,
    ] {
        assert!(!authorize(admin, action, app).is_allowed(), "{action:?}");
    }
    assert!(authorize(admin, Action::ManageForm, app).is_allowed());
}
