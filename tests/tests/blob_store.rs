//! BlobStore contract: put/get/head/delete, listing, streamed reads, presigned URLs.

use std::time::Duration;

use bytes::Bytes;
use madoguchi_ports::{BlobStore, PortError, PresignMethod};
use madoguchi_tests::{Env, Kind, contract_tests};
use tokio::io::AsyncReadExt;

contract_tests!(
    put_get_head_delete,
    listing_by_prefix,
    streamed_get_of_multi_mb_blob,
    presigned_upload_then_download,
    bad_keys_refused,
);

async fn read_all(store: &dyn BlobStore, key: &str) -> Vec<u8> {
    let (meta, mut body) = store.get(key).await.expect("get");
    let mut out = Vec::new();
    body.read_to_end(&mut out).await.expect("read body");
    assert_eq!(meta.size, out.len() as u64, "size matches the body");
    out
}

async fn put_get_head_delete(env: Env) {
    let (store, _) = env.blobs().await;
    let key = "131016/attachments/申請書.pdf";
    let first = store
        .put(
            key,
            Bytes::from_static(b"%PDF-1.7 one"),
            Some("application/pdf"),
        )
        .await
        .expect("put");
    assert_eq!((first.key.as_str(), first.size), (key, 12));
    assert!(!first.etag.is_empty());
    let head = store.head(key).await.unwrap().expect("head finds the blob");
    assert_eq!(head.size, 12);
    assert_eq!(head.etag, first.etag);
    assert_eq!(head.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(read_all(store.as_ref(), key).await, b"%PDF-1.7 one");

    let second = store
        .put(
            key,
            Bytes::from_static(b"%PDF-1.7 two!"),
            Some("application/pdf"),
        )
        .await
        .unwrap();
    assert_ne!(second.etag, first.etag, "etag changes with every write");
    assert_eq!(read_all(store.as_ref(), key).await, b"%PDF-1.7 two!");

    store.delete(key).await.expect("delete");
    assert!(store.head(key).await.unwrap().is_none());
    assert!(matches!(
        store.get(key).await.map(|_| ()),
        Err(PortError::NotFound)
    ));
    store
        .delete(key)
        .await
        .expect("deleting a missing blob succeeds");
}

async fn listing_by_prefix(env: Env) {
    let (store, _) = env.blobs().await;
    for key in [
        "in/b.csv",
        "in/a.csv",
        "in/c/d.csv",
        "out/a.csv",
        "inbox.txt",
    ] {
        store
            .put(key, Bytes::from(key.as_bytes().to_vec()), Some("text/csv"))
            .await
            .unwrap();
    }
    let keys = |metas: Vec<madoguchi_ports::BlobMeta>| -> Vec<String> {
        metas.into_iter().map(|m| m.key).collect()
    };
    let all = store.list("in/", None, 100).await.unwrap();
    assert_eq!(all[0].size, "in/a.csv".len() as u64);
    assert_eq!(keys(all), ["in/a.csv", "in/b.csv", "in/c/d.csv"]);
    assert_eq!(
        keys(store.list("in/", Some("in/a.csv"), 100).await.unwrap()),
        ["in/b.csv", "in/c/d.csv"]
    );
    assert_eq!(
        keys(store.list("in/", None, 2).await.unwrap()),
        ["in/a.csv", "in/b.csv"]
    );
    assert_eq!(
        keys(store.list("in", None, 100).await.unwrap()),
        ["in/a.csv", "in/b.csv", "in/c/d.csv", "inbox.txt"],
        "a prefix is a string prefix, not a folder"
    );
    assert_eq!(store.list("", None, 100).await.unwrap().len(), 5);
    assert!(store.list("nothing/", None, 100).await.unwrap().is_empty());
}

async fn streamed_get_of_multi_mb_blob(env: Env) {
    let (store, _) = env.blobs().await;
    // 6 MiB of a pattern that catches reordered or repeated chunks.
    let body: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let key = "131016/inbound/jumin.csv";
    let meta = store
        .put(key, Bytes::from(body.clone()), Some("text/csv"))
        .await
        .unwrap();
    assert_eq!(meta.size, body.len() as u64);
    let (meta, mut stream) = store.get(key).await.unwrap();
    assert_eq!(meta.size, body.len() as u64);
    // Read in small pieces, as a streaming parser would.
    let mut got = Vec::with_capacity(body.len());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await.expect("read chunk");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got == body,
        "streamed body differs ({} bytes read)",
        got.len()
    );
}

async fn presigned_upload_then_download(env: Env) {
    let (store, bucket) = env.blobs().await;
    let key = "131016/uploads/写真 1.jpg";
    let put = store
        .presign(key, PresignMethod::Put, Duration::from_secs(300))
        .await
        .expect("presign put");
    let get = store
        .presign(key, PresignMethod::Get, Duration::from_secs(300))
        .await
        .expect("presign get");
    assert_eq!(
        (put.method, get.method),
        (PresignMethod::Put, PresignMethod::Get)
    );
    assert!(
        store
            .presign(key, PresignMethod::Get, Duration::from_secs(8 * 24 * 3600))
            .await
            .is_err(),
        "presigned URLs live at most 7 days"
    );
    match env.kind {
        Kind::Aws => {
            // A client without credentials uploads and downloads over plain HTTP.
            let http = reqwest::Client::new();
            let mut req = http.put(&put.url).body(b"JPEG bytes".to_vec());
            for (k, v) in &put.headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.expect("PUT presigned");
            assert!(resp.status().is_success(), "PUT answered {}", resp.status());
            assert_eq!(read_all(store.as_ref(), key).await, b"JPEG bytes");

            let mut req = http.get(&get.url);
            for (k, v) in &get.headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.expect("GET presigned");
            assert!(resp.status().is_success(), "GET answered {}", resp.status());
            assert_eq!(resp.bytes().await.unwrap().as_ref(), b"JPEG bytes");

            // moto does not check presigned signatures (S3 does), so refusals cannot be
            // tested here; check that the URLs are SigV4 presigned for this lifetime.
            for p in [&put, &get] {
                let url = url::Url::parse(&p.url).expect("absolute URL");
                let q: std::collections::HashMap<_, _> = url.query_pairs().collect();
                // A checksum signed into a PUT URL would pin the body (S3 would refuse the
                // upload); the SDK must not add one.
                assert!(
                    !q.keys()
                        .any(|k| k.to_ascii_lowercase().contains("checksum")),
                    "{:?}",
                    q.keys().collect::<Vec<_>>()
                );
                assert_eq!(
                    q.get("X-Amz-Algorithm").map(|v| v.as_ref()),
                    Some("AWS4-HMAC-SHA256")
                );
                assert_eq!(q.get("X-Amz-Expires").map(|v| v.as_ref()), Some("300"));
                assert!(q.contains_key("X-Amz-Signature") && q.contains_key("X-Amz-Credential"));
                assert!(
                    url.path()
                        .ends_with("/131016/uploads/%E5%86%99%E7%9C%9F%201.jpg"),
                    "{}",
                    url.path()
                );
            }
        }
        Kind::Embedded => {
            // The local host serves these URLs (its own tests do the HTTP round trip); here
            // the signature is checked as the host will check it.
            let verifier = env.embedded_backend().unwrap().presign_verifier();
            let now = madoguchi_ports::Clock::now(env.clock.as_ref());
            for p in [&put, &get] {
                let url = url::Url::parse(&p.url).expect("absolute URL");
                let query = url.query().expect("signed query");
                verifier
                    .verify(&bucket, key, p.method, query, now)
                    .expect("fresh URL verifies");
                assert!(
                    verifier
                        .verify(&bucket, "131016/uploads/other.jpg", p.method, query, now)
                        .is_err(),
                    "another key is refused"
                );
                assert!(
                    verifier
                        .verify("other-bucket", key, p.method, query, now)
                        .is_err(),
                    "another bucket is refused"
                );
                let tampered = query.replace("X-Expires=", "X-Expires=9");
                assert!(
                    verifier
                        .verify(&bucket, key, p.method, &tampered, now)
                        .is_err()
                );
                let later = now
                    .checked_add(jiff::SignedDuration::from_secs(301))
                    .unwrap();
                assert!(
                    verifier
                        .verify(&bucket, key, p.method, query, later)
                        .is_err(),
                    "expired URL is refused"
                );
            }
            let put_query = url::Url::parse(&put.url)
                .unwrap()
                .query()
                .unwrap()
                .to_owned();
            assert!(
                verifier
                    .verify(&bucket, key, PresignMethod::Get, &put_query, now)
                    .is_err(),
                "a PUT URL does not allow GET"
            );
        }
    }
}

async fn bad_keys_refused(env: Env) {
    let (store, _) = env.blobs().await;
    for bad in ["", "/abs", "a/../b", "a//b", "a/"] {
        let err = store
            .put(bad, Bytes::from_static(b"x"), None)
            .await
            .expect_err("bad key must be refused");
        assert!(matches!(err, PortError::Invalid(_)), "{bad:?}: {err:?}");
        assert!(matches!(
            store.get(bad).await.map(|_| ()),
            Err(PortError::Invalid(_))
        ));
    }
}
