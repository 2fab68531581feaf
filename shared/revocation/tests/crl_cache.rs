//! The CRL cache against real parts: CRLs made by openssl, served by an axum server on
//! loopback, a real embedded blob store and real files.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{CrlServer, Reply, fixture};
use jiff::{SignedDuration, Timestamp};
use madoguchi_jpki::{CrlSet, Policy, RevocationStatus, SubIndication, TrustAnchors};
use madoguchi_ports::{BlobStore, SystemClock};
use madoguchi_revocation::{
    CrlCache, CrlCacheConfig, CrlLocation, FetchError, LocationStatus, RefreshOutcome,
};

fn anchors() -> Arc<TrustAnchors> {
    Arc::new(TrustAnchors::from_pem_bundle(&fixture().ca_pem).unwrap())
}

/// Some minutes after the fixture was made: every CRL is fresh, every certificate valid.
fn t0() -> Timestamp {
    fixture().made_at + SignedDuration::from_mins(10)
}

fn cache_with(locations: &[String], config: CrlCacheConfig) -> CrlCache {
    let locations = locations
        .iter()
        .map(|l| CrlLocation::parse(l).unwrap())
        .collect();
    CrlCache::new(locations, anchors(), Policy::default(), None, config).unwrap()
}

fn cache(server: &CrlServer) -> CrlCache {
    cache_with(&[server.location()], CrlCacheConfig::default())
}

/// The status of the only location.
fn only(outcome: &RefreshOutcome) -> &LocationStatus {
    assert_eq!(outcome.locations.len(), 1, "{outcome:?}");
    &outcome.locations[0].status
}

/// (accepted entry counts, rejected count) of a fetched location.
fn fetched(status: &LocationStatus) -> (Vec<usize>, usize) {
    match status {
        LocationStatus::Fetched { accepted, rejected } => {
            (accepted.iter().map(|c| c.entries).collect(), rejected.len())
        }
        other => panic!("expected fetched, got {other:?}"),
    }
}

fn verify_revoked_signer(set: &CrlSet, now: Timestamp) -> madoguchi_jpki::Report {
    let f = fixture();
    madoguchi_jpki::verify(
        &f.payload,
        &f.sig_revoked,
        &anchors(),
        set,
        &Policy::default(),
        now,
    )
}

#[tokio::test]
async fn first_call_fetches_and_later_calls_within_max_age_do_not() {
    let server = CrlServer::start(Reply::Body(fixture().crl_a_der.clone())).await;
    let cache = cache(&server);

    let first = cache.current(t0()).await;
    assert_eq!(server.hits(), 1);
    assert_eq!(first.len(), 1);

    for later in [1, 30, 59] {
        let again = cache.current(t0() + SignedDuration::from_mins(later)).await;
        assert!(Arc::ptr_eq(&first, &again), "no new set within max_age");
    }
    assert_eq!(server.hits(), 1, "no refetch within max_age (1 h)");

    let after = cache.current(t0() + SignedDuration::from_mins(61)).await;
    assert_eq!(server.hits(), 2, "max_age passed: refetched");
    assert_eq!(after.len(), 1);
    assert!(cache.last_outcome().unwrap().all_ok());
}

#[tokio::test]
async fn next_update_passing_triggers_a_refetch_without_a_storm() {
    let server = CrlServer::start(Reply::Body(fixture().crl_a_der.clone())).await;
    let config = CrlCacheConfig {
        max_age: Duration::from_secs(365 * 24 * 3600),
        ..CrlCacheConfig::default()
    };
    let cache = cache_with(&[server.location()], config);

    let outcome = cache.refresh(t0()).await;
    let LocationStatus::Fetched { accepted, .. } = only(&outcome) else {
        panic!("{outcome:?}")
    };
    let next_update = accepted[0].next_update.expect("openssl sets nextUpdate");
    assert!(next_update > t0() + SignedDuration::from_hours(24 * 29));
    assert_eq!(server.hits(), 1);

    cache
        .current(next_update - SignedDuration::from_secs(1))
        .await;
    assert_eq!(server.hits(), 1, "still fresh, max_age far away");

    let past = next_update + SignedDuration::from_secs(1);
    let set = cache.current(past).await;
    assert_eq!(server.hits(), 2, "nextUpdate passed: refetched");
    // The server still serves the same (now stale) CRL: verification says TRY_LATER, and
    // the cache does not refetch on every call.
    let report = verify_revoked_signer(&set, past);
    assert_eq!(report.sub_indication, Some(SubIndication::TryLater));
    cache.current(past + SignedDuration::from_secs(5)).await;
    cache.current(past + SignedDuration::from_secs(29)).await;
    assert_eq!(
        server.hits(),
        2,
        "back-off after a refresh that left a stale CRL"
    );
    cache.current(past + SignedDuration::from_secs(31)).await;
    assert_eq!(server.hits(), 3, "retried after the back-off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_fetch() {
    let server = CrlServer::start(Reply::Body(fixture().crl_a_der.clone())).await;
    // The fetch takes a while, so the callers really overlap.
    server.set_delay(Duration::from_millis(300));
    let cache = Arc::new(cache(&server));
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache.current(t0()).await
            })
        })
        .collect();
    let mut sets = Vec::new();
    for task in tasks {
        sets.push(task.await.unwrap());
    }
    assert_eq!(server.hits(), 1, "one fetch for 8 concurrent callers");
    for set in &sets {
        assert_eq!(set.len(), 1);
        assert!(Arc::ptr_eq(set, &sets[0]));
    }
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_previous_set_and_backs_off() {
    let f = fixture();
    let server = CrlServer::start(Reply::Body(f.crl_a_der.clone())).await;
    let cache = cache(&server);
    let held = cache.current(t0()).await;
    assert_eq!(server.hits(), 1);

    server.set(Reply::Status(500));
    let t1 = t0() + SignedDuration::from_hours(2);
    let kept = cache.current(t1).await;
    assert_eq!(server.hits(), 2, "max_age passed: tried");
    assert!(Arc::ptr_eq(&held, &kept), "the previous CRLs are kept");
    let outcome = cache.last_outcome().unwrap();
    assert_eq!(
        only(&outcome),
        &LocationStatus::Failed {
            error: FetchError::Status(500)
        }
    );
    assert!(!outcome.all_ok());
    assert_eq!(outcome.issuers_held, 1);
    // The kept CRL still decides: the signer is not on CRL A.
    assert!(verify_revoked_signer(&kept, t1).passed());

    for secs in [1, 10, 29] {
        cache.current(t1 + SignedDuration::from_secs(secs)).await;
    }
    assert_eq!(server.hits(), 2, "no retry before the back-off (30 s)");
    cache.current(t1 + SignedDuration::from_secs(31)).await;
    assert_eq!(server.hits(), 3, "retried after the back-off, failed again");

    server.set(Reply::Body(f.crl_b_der.clone()));
    cache.current(t1 + SignedDuration::from_secs(45)).await;
    assert_eq!(server.hits(), 3, "the new back-off holds");
    let t2 = t1 + SignedDuration::from_secs(62);
    let fresh = cache.current(t2).await;
    assert_eq!(
        server.hits(),
        4,
        "a failed location is retried without waiting max_age"
    );
    assert!(!Arc::ptr_eq(&held, &fresh));
    let report = verify_revoked_signer(&fresh, t2);
    assert_eq!(report.sub_indication, Some(SubIndication::Revoked));
    assert_eq!(report.revocation.status, RevocationStatus::Revoked);
    assert!(cache.last_outcome().unwrap().all_ok());
    cache.current(t2 + SignedDuration::from_mins(10)).await;
    assert_eq!(server.hits(), 4, "all good again: max_age rules");
}

#[tokio::test]
async fn a_first_load_that_fails_answers_an_empty_set_and_backs_off() {
    let server = CrlServer::start(Reply::Status(503)).await;
    let cache = cache(&server);
    let set = cache.current(t0()).await;
    assert!(set.is_empty());
    assert_eq!(
        verify_revoked_signer(&set, t0()).sub_indication,
        Some(SubIndication::TryLater)
    );
    cache.current(t0() + SignedDuration::from_secs(10)).await;
    assert_eq!(server.hits(), 1);
    server.set(Reply::Body(fixture().crl_a_pem.clone()));
    let set = cache.current(t0() + SignedDuration::from_secs(30)).await;
    assert_eq!(server.hits(), 2);
    assert_eq!(set.len(), 1);
}

#[tokio::test]
async fn a_crl_signed_by_another_ca_is_rejected_and_reported() {
    let f = fixture();
    // Alone: nothing is taken.
    let server = CrlServer::start(Reply::Body(f.other_crl_der.clone())).await;
    let cache = cache(&server);
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(only(&outcome)), (vec![], 1));
    let LocationStatus::Fetched { rejected, .. } = only(&outcome) else {
        unreachable!()
    };
    assert!(rejected[0].issuer.contains("Untrusted CA"), "{rejected:?}");
    assert!(rejected[0].reason.contains("CRL signature"), "{rejected:?}");
    assert!(!outcome.all_ok());
    assert!(cache.current(t0()).await.is_empty());

    // After a good one: the good one stays.
    server.set(Reply::Body(f.crl_b_der.clone()));
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(only(&outcome)), (vec![1], 0));
    server.set(Reply::Body(f.other_crl_pem.clone()));
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(only(&outcome)), (vec![], 1));
    assert_eq!(outcome.issuers_held, 1);
    let set = cache.current(t0()).await;
    assert_eq!(set.len(), 1);
    assert_eq!(
        verify_revoked_signer(&set, t0()).sub_indication,
        Some(SubIndication::Revoked)
    );
}

#[tokio::test]
async fn a_tampered_crl_is_rejected() {
    let f = fixture();
    let mut tampered = f.crl_b_der.clone();
    // The last byte is inside the signature value.
    *tampered.last_mut().unwrap() ^= 0x01;
    let server = CrlServer::start(Reply::Body(tampered)).await;
    let cache = cache(&server);
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(only(&outcome)), (vec![], 1));
    assert!(cache.current(t0()).await.is_empty());
}

#[tokio::test]
async fn unchanged_content_is_not_downloaded_again() {
    let f = fixture();
    let server = CrlServer::start(Reply::Body(f.crl_a_der.clone())).await;
    server.set_etag(Some("\"v1\""));
    let cache = cache(&server);
    let first = cache.current(t0()).await;
    let outcome = cache.refresh(t0() + SignedDuration::from_hours(2)).await;
    assert_eq!(only(&outcome), &LocationStatus::NotModified);
    assert!(outcome.all_ok());
    assert_eq!(server.hits(), 2);
    assert!(Arc::ptr_eq(&first, &cache.current(t0()).await));

    server.set(Reply::Body(f.crl_b_der.clone()));
    server.set_etag(Some("\"v2\""));
    let outcome = cache.refresh(t0() + SignedDuration::from_hours(3)).await;
    assert_eq!(fetched(only(&outcome)), (vec![1], 0));
}

#[tokio::test]
async fn oversized_slow_and_unreachable_locations_fail() {
    let f = fixture();
    let server = CrlServer::start(Reply::Body(f.crl_a_der.clone())).await;

    let small = CrlCacheConfig {
        max_bytes: 100,
        ..CrlCacheConfig::default()
    };
    let outcome = cache_with(&[server.location()], small).refresh(t0()).await;
    assert_eq!(
        only(&outcome),
        &LocationStatus::Failed {
            error: FetchError::TooLarge { limit: 100 }
        }
    );

    server.set_delay(Duration::from_secs(3));
    let quick = CrlCacheConfig {
        fetch_timeout: Duration::from_millis(200),
        ..CrlCacheConfig::default()
    };
    let outcome = cache_with(&[server.location()], quick).refresh(t0()).await;
    assert_eq!(
        only(&outcome),
        &LocationStatus::Failed {
            error: FetchError::Timeout
        }
    );

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let outcome = cache_with(&[format!("http://{closed}/crl")], CrlCacheConfig::default())
        .refresh(t0())
        .await;
    assert!(
        matches!(
            only(&outcome),
            LocationStatus::Failed {
                error: FetchError::Transport(_)
            }
        ),
        "{outcome:?}"
    );

    // Not a CRL at all.
    server.set_delay(Duration::ZERO);
    server.set(Reply::Body(b"<html>maintenance</html>".to_vec()));
    let outcome = cache_with(&[server.location()], CrlCacheConfig::default())
        .refresh(t0())
        .await;
    assert!(
        matches!(
            only(&outcome),
            LocationStatus::Failed {
                error: FetchError::Decode(_)
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn blob_locations_read_through_the_embedded_blob_store() {
    let f = fixture();
    let data = tempfile::tempdir().unwrap();
    let backend = madoguchi_embedded::EmbeddedBackend::open(
        data.path(),
        "http://127.0.0.1:1",
        Arc::new(SystemClock),
    )
    .unwrap();
    let store = backend.blobs("jpki-crls");
    store
        .put("jlis/sign.pem", f.crl_b_pem.clone().into(), None)
        .await
        .unwrap();
    let blobs: Arc<dyn BlobStore> = store.clone();
    let cache = CrlCache::new(
        vec![
            CrlLocation::parse("blob:jlis/sign.pem").unwrap(),
            CrlLocation::parse("blob:jlis/missing.der").unwrap(),
        ],
        anchors(),
        Policy::default(),
        Some(blobs),
        CrlCacheConfig::default(),
    )
    .unwrap();

    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(&outcome.locations[0].status), (vec![1], 0));
    assert_eq!(
        outcome.locations[1].status,
        LocationStatus::Failed {
            error: FetchError::NotFound
        }
    );
    let set = cache.current(t0()).await;
    assert_eq!(
        verify_revoked_signer(&set, t0()).sub_indication,
        Some(SubIndication::Revoked)
    );

    // Same etag: not read again. New content (DER this time): read.
    let outcome = cache.refresh(t0()).await;
    assert_eq!(outcome.locations[0].status, LocationStatus::NotModified);
    store
        .put("jlis/sign.pem", f.crl_a_der.clone().into(), None)
        .await
        .unwrap();
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(&outcome.locations[0].status), (vec![0], 0));
}

#[tokio::test]
async fn file_locations_pem_der_and_bundles() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("a.der");
    let pem = dir.path().join("b.pem");
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&der, &f.crl_a_der).unwrap();
    std::fs::write(&pem, &f.crl_b_pem).unwrap();
    // A bundle with a text preamble, a CRL of an untrusted CA and a good one.
    let mut text = b"CRLs mirrored for tests\n".to_vec();
    text.extend_from_slice(&f.other_crl_pem);
    text.extend_from_slice(&f.crl_b_pem);
    std::fs::write(&bundle, &text).unwrap();

    let locations = [
        format!("file:{}", der.display()),
        format!("file://{}", pem.display()),
        format!("file:{}", bundle.display()),
        format!("file:{}", dir.path().join("absent.der").display()),
    ];
    let cache = cache_with(&locations, CrlCacheConfig::default());
    let outcome = cache.refresh(t0()).await;
    assert_eq!(fetched(&outcome.locations[0].status), (vec![0], 0));
    assert_eq!(fetched(&outcome.locations[1].status), (vec![1], 0));
    assert_eq!(fetched(&outcome.locations[2].status), (vec![1], 1));
    assert_eq!(
        outcome.locations[3].status,
        LocationStatus::Failed {
            error: FetchError::NotFound
        }
    );
    // One issuer: A and B are the same CA's; the newer (or, within the same second, the
    // later inserted) one is held.
    assert_eq!(outcome.issuers_held, 1);
    assert_eq!(cache.current(t0()).await.len(), 1);
}

#[tokio::test]
async fn the_outcome_serialises_for_an_ops_endpoint() {
    let f = fixture();
    let server = CrlServer::start(Reply::Body(f.crl_a_der.clone())).await;
    let cache = cache_with(
        &[
            server.location(),
            "http://user:secret@127.0.0.1:1/crl".into(),
        ],
        CrlCacheConfig::default(),
    );
    let outcome = cache.refresh(t0()).await;
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["locations"][0]["status"], "fetched");
    assert_eq!(json["locations"][0]["accepted"][0]["entries"], 0);
    assert!(
        json["locations"][0]["accepted"][0]["issuer"]
            .as_str()
            .unwrap()
            .contains("Test Signing CA")
    );
    assert_eq!(json["locations"][1]["status"], "failed");
    assert!(json["locations"][1]["error"].is_string());
    assert!(!json.to_string().contains("secret"));
    assert_eq!(json["issuers_held"], 1);
}
