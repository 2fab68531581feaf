//! The staff list on the embedded adapters: pages that stay correct while applications keep
//! arriving, both orders, filters, forms the caller may not view left out, bad cursors.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use madoguchi_applications::keys::{
    FORM_GRANTS_SK, FORM_META_SK, SINGLE_SK, form_pk, forms_index_pk, org_pk, receipt_pk,
};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, FormMeta, FormState, application_item,
};
use madoguchi_audit::AuditLog;
use madoguchi_domain::authz::{Department, FormGrants, OrgTree};
use madoguchi_domain::form::parse_definition;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_ports::{Clock, Condition, IdGen, Item, ItemStore, Key, SystemClock, UuidV7Gen};
use madoguchi_staff::{Settings, StaffState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const TENANT: &str = "272060";

struct Fixture {
    app: axum::Router,
    items: Arc<dyn ItemStore>,
    token: String,
    _dir: tempfile::TempDir,
}

async fn form(items: &Arc<dyn ItemStore>, slug: &str, owner: &str) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let now = SystemClock.now().to_string();
    let meta = FormMeta {
        slug: slug.into(),
        state: FormState::Published,
        definition: parse_definition(&json!({"title": slug, "items": [
            {"id": "applicant", "type": "name", "label": "氏名", "required": true}
        ]}))
        .unwrap(),
        published_version: Some(1),
        created_at: now.clone(),
        updated_at: now,
    };
    let mut item = Item::new(
        Key::new(form_pk(&tenant, slug), FORM_META_SK),
        serde_json::to_value(&meta).unwrap(),
    );
    item.gsi1 = Some(Key::new(forms_index_pk(&tenant), slug));
    items.put(item, Condition::None).await.unwrap();
    items
        .put(
            Item::new(
                Key::new(form_pk(&tenant, slug), FORM_GRANTS_SK),
                serde_json::to_value(FormGrants::for_new_form(owner)).unwrap(),
            ),
            Condition::None,
        )
        .await
        .unwrap();
}

/// An application submitted at `second` (epoch) with this name and status.
async fn apply(
    items: &Arc<dyn ItemStore>,
    slug: &str,
    second: i64,
    name: &str,
    status: ApplicationStatus,
) -> String {
    let tenant = TenantId::parse(TENANT).unwrap();
    let id = ApplicationId::new(UuidV7Gen.new_id());
    let record = ApplicationRecord {
        id,
        tenant: TENANT.into(),
        receipt: format!("R-{second}"),
        slug: slug.into(),
        form_title: slug.into(),
        form_version: 1,
        owner: "a-x".into(),
        status,
        submitted_at: jiff::Timestamp::from_second(second).unwrap().to_string(),
        answers: Default::default(),
        summary: vec![],
        attachments: vec![],
        email: None,
        blind_indexes: Default::default(),
        notify: vec![],
        applicant_name: Some(name.into()),
        correction: None,
        completed_at: None,
        timeline: vec![],
        signature: None,
    };
    items
        .put(application_item(&tenant, &record), Condition::NotExists)
        .await
        .unwrap();
    items
        .put(
            Item::new(
                Key::new(receipt_pk(&tenant, &record.receipt), SINGLE_SK),
                json!({"application": id}),
            ),
            Condition::NotExists,
        )
        .await
        .unwrap();
    id.to_string()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend =
        madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .unwrap();
    let items: Arc<dyn ItemStore> = backend.items();
    let tenant = TenantId::parse(TENANT).unwrap();
    let org = OrgTree {
        departments: vec![
            Department {
                id: "shimin-ka".into(),
                name: "市民課".into(),
                parent: None,
                resident_lookup: false,
            },
            Department {
                id: "fukushi".into(),
                name: "福祉課".into(),
                parent: None,
                resident_lookup: false,
            },
        ],
    };
    items
        .put(
            Item::new(
                Key::new(org_pk(&tenant), SINGLE_SK),
                serde_json::to_value(&org).unwrap(),
            ),
            Condition::None,
        )
        .await
        .unwrap();
    form(&items, "tenshutsu", "shimin-ka").await;
    form(&items, "tennyu", "shimin-ka").await;
    form(&items, "kaigo", "fukushi").await;
    let issuer = DevIssuer::ephemeral();
    let token = issuer.mint(&DevTokenRequest {
        sub: "clerk-1".into(),
        tenant,
        role: Role::Staff,
        depts: vec!["shimin-ka".into()],
        ttl_seconds: 3600,
        now: jiff::Timestamp::now().as_second(),
        email: None,
    });
    let state = StaffState {
        items: items.clone(),
        attachments: backend.blobs("attachments"),
        exports: backend.blobs("exports"),
        notify: backend.queue("notify", Default::default()),
        outbound: backend.queue("linkage-outbound", Default::default()),
        residents: madoguchi_residents::ResidentStore::new(
            items.clone(),
            FieldCipher::new(backend.keys(), clock.clone(), CachePolicy::default()),
        ),
        cipher: Arc::new(FieldCipher::new(
            backend.keys(),
            clock.clone(),
            CachePolicy::default(),
        )),
        audit: AuditLog::new(items.clone(), clock.clone()),
        audit_mirror: None,
        auth: Authenticator::shared(vec![issuer.trusted()]),
        clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(Settings::default()),
    };
    Fixture {
        app: router(state),
        items,
        token,
        _dir: dir,
    }
}

impl Fixture {
    async fn get(&self, query: &str) -> (u16, Value) {
        let res = self
            .app
            .clone()
            .oneshot(
                Request::get(format!("/v1/tenants/{TENANT}/staff/applications?{query}"))
                    .header("authorization", format!("Bearer {}", self.token))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// Every page of a listing; `between` runs after the first page.
    async fn all(&self, query: &str, between: impl AsyncFnOnce()) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let mut between = Some(between);
        for _ in 0..50 {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let (status, page) = self.get(&q).await;
            assert_eq!(status, 200, "{page}");
            for row in page["items"].as_array().unwrap() {
                ids.push(row["id"].as_str().unwrap().to_owned());
            }
            if let Some(f) = between.take() {
                f().await;
            }
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return ids,
            }
        }
        panic!("more than 50 pages");
    }
}

const T0: i64 = 1_793_500_000;

#[tokio::test]
async fn pages_stay_correct_while_applications_arrive() {
    let f = fixture().await;
    // Interleaved across two forms the clerk may view, plus one they may not.
    let mut expected = Vec::new();
    for i in 0..7 {
        let slug = if i % 2 == 0 { "tenshutsu" } else { "tennyu" };
        expected.push(
            apply(
                &f.items,
                slug,
                T0 + i * 60,
                "山田 花子",
                ApplicationStatus::Received,
            )
            .await,
        );
        apply(
            &f.items,
            "kaigo",
            T0 + i * 60 + 1,
            "福祉 太郎",
            ApplicationStatus::Received,
        )
        .await;
    }
    expected.reverse();
    let items = f.items.clone();
    let got = f
        .all("limit=3", async move || {
            // Two newer applications arrive after the first page.
            apply(
                &items,
                "tenshutsu",
                T0 + 10_000,
                "新着 一郎",
                ApplicationStatus::Received,
            )
            .await;
            apply(
                &items,
                "tennyu",
                T0 + 10_001,
                "新着 二郎",
                ApplicationStatus::Received,
            )
            .await;
        })
        .await;
    assert_eq!(
        got, expected,
        "every application once, newest first, none of 福祉課's"
    );

    // Oldest first sees the two newcomers at the end.
    let asc = f.all("limit=4&order=asc", async || {}).await;
    assert_eq!(asc.len(), 9);
    assert_eq!(
        asc[..7],
        expected.iter().rev().cloned().collect::<Vec<_>>()[..]
    );
    let unique: BTreeSet<_> = asc.iter().collect();
    assert_eq!(unique.len(), 9);
}

#[tokio::test]
async fn filters_narrow_the_list_and_pages_still_join_up() {
    let f = fixture().await;
    let mut returned = Vec::new();
    for i in 0..12 {
        let status = if i % 3 == 0 {
            ApplicationStatus::Returned
        } else {
            ApplicationStatus::Received
        };
        let name = if i % 4 == 0 {
            "窓口　花子"
        } else {
            "山田 一郎"
        };
        let id = apply(&f.items, "tenshutsu", T0 + i * 3600, name, status).await;
        if status == ApplicationStatus::Returned {
            returned.push(id);
        }
    }
    returned.reverse();
    let got = f.all("status=returned&limit=2", async || {}).await;
    assert_eq!(got, returned);
    // Width and spaces do not matter to the name filter.
    let by_name = f
        .all("name=%EF%BD%BB%E5%8F%A3%20%E8%8A%B1", async || {})
        .await; // "ｻ口 花" does not match
    assert!(by_name.is_empty());
    let by_name = f
        .all("name=%E7%AA%93%E5%8F%A3%20%E8%8A%B1%E5%AD%90", async || {})
        .await; // "窓口 花子"
    assert_eq!(by_name.len(), 3);
    // A period in Japan days.
    let (status, page) = f.get("from=2026-11-01&to=2026-11-01").await;
    assert_eq!(status, 200);
    assert!(!page["items"].as_array().unwrap().is_empty());
    let day: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["submitted_at"].as_str().unwrap())
        .collect();
    for at in day {
        let local = jiff::tz::offset(9).to_datetime(at.parse::<jiff::Timestamp>().unwrap());
        assert_eq!(local.date().to_string(), "2026-11-01");
    }
    // By receipt number: exactly that one.
    let (_, page) = f.get(&format!("receipt=R-{}", T0 + 3600)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_parameters_are_field_errors() {
    let f = fixture().await;
    for (q, field) in [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=MTIzNDU2Nzg5MDEyMzQ1I3g", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("status=done", "status"),
        ("from=2026-13-01", "from"),
        ("order=sideways", "order"),
    ] {
        let (status, body) = f.get(q).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{q}");
    }
    let (status, _) = f.get("form=kaigo").await;
    assert_eq!(status, 403, "a form of another department");
}
