//! BlobStore contract: put/get/head/delete, listing, streamed reads, presigned URLs,
//! presigned POST upload forms, streaming (multipart) uploads.
//!
//! Streaming uploads on moto (server mode): moto implements CreateMultipartUpload,
//! UploadPart, CompleteMultipartUpload, AbortMultipartUpload and ListMultipartUploads, and
//! answers a completed upload's ETag in S3's multipart form (`<hex>-<parts>`), which is how
//! the AWS side checks that a large upload really went in several parts and a small one in
//! one `PutObject`.
//!
//! Presigned POST on moto (5.2.5, server mode): moto stores whatever a POST form sends and
//! answers 204 (S3's default `success_action_status`), with the form's `Content-Type`. It
//! does NOT check the policy at all (tried by hand and read in moto's
//! `s3/responses.py::_bucket_response_post`): no signature check (a garbage
//! `x-amz-signature` is accepted), no `expiration` (an expired policy is accepted), no
//! `content-length-range` (a file over the maximum is stored), and no `key` condition (a
//! form whose `key` was changed stores the other key). Real S3 refuses all four (403
//! `AccessDenied` / 400 `EntityTooLarge` / `EntityTooSmall`); `moto_does_not_check_post_policies`
//! is the canary that keeps this paragraph true. So the AWS side tests here
//! that a form uploads, and checks the signed policy's *content* (every field pinned, the
//! size range, the expiration); the signature itself is checked against AWS's documented
//! example in `madoguchi_aws::post_policy`'s unit tests. The embedded side's refusals go
//! through the host's route in `shared/host/tests/presigned_post.rs`.
//!
//! moto does deliver S3 bucket notifications to SQS, for POST (`ObjectCreated:Post`) and
//! PUT (`ObjectCreated:Put`) uploads alike: see `moto_notifies_sqs_of_post_and_put_uploads`.

use std::time::Duration;

use bytes::Bytes;
use madoguchi_ports::{
    BlobStore, BlobUpload, Clock, PortError, PresignMethod, PresignedPost, Queue, UploadPolicy,
};
use madoguchi_tests::{Env, Kind, contract_tests};
use tokio::io::AsyncReadExt;

contract_tests!(
    put_get_head_delete,
    listing_by_prefix,
    streamed_get_of_multi_mb_blob,
    presigned_upload_then_download,
    bad_keys_refused,
    presigned_post_form_is_signed_for_one_key_and_range,
    presigned_post_refuses_bad_policies,
    presigned_post_upload_stores_the_file,
    upload_in_parts_then_get_head_and_presign,
    small_upload_is_one_object,
    upload_is_invisible_until_finish,
    aborted_or_dropped_upload_leaves_nothing,
    empty_upload_stores_a_zero_byte_object,
    upload_refuses_bad_keys,
    versions_are_read_by_id,
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

/// `len` bytes of a pattern that catches reordered or repeated chunks.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

const MIB: usize = 1024 * 1024;

/// Writes `body` in chunks of these sizes (the last one takes what is left).
async fn write_chunks(upload: &mut dyn BlobUpload, body: &Bytes, sizes: &[usize]) {
    let mut at = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let end = if i + 1 == sizes.len() {
            body.len()
        } else {
            at + n
        };
        upload.write(body.slice(at..end)).await.expect("write");
        at = end;
    }
}

/// Multipart uploads still open in the env's bucket (AWS); temp files left in the bucket's
/// directory (embedded).
async fn leftover_parts(env: &Env, bucket: &str) -> Vec<String> {
    match env.kind {
        Kind::Aws => {
            let out = env
                .aws_backend()
                .unwrap()
                .s3_client()
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .expect("ListMultipartUploads");
            out.uploads()
                .iter()
                .map(|u| u.key().unwrap_or_default().to_owned())
                .collect()
        }
        Kind::Embedded => {
            fn walk(d: &std::path::Path, out: &mut Vec<String>) {
                for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.contains("madoguchi-tmp") {
                        out.push(name);
                    } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
            let fs = env.embedded_backend().unwrap().blobs(bucket);
            let mut out = Vec::new();
            walk(fs.root(), &mut out);
            out
        }
    }
}

async fn upload_in_parts_then_get_head_and_presign(env: Env) {
    let (store, bucket) = env.blobs().await;
    let key = "131016/exports/申請一覧 2026-11.csv";
    // ~17.8 MiB: a first chunk larger than a part (8 MiB on AWS), chunks that cross part
    // boundaries mid-chunk, odd sizes.
    let body = Bytes::from(pattern(17 * MIB + 800_001));
    let sizes = [9 * MIB, 1, 700_001, 3 * MIB, 123_457, 4 * MIB, 0];
    let mut upload = store
        .upload(key, Some("text/csv; charset=utf-8"))
        .await
        .expect("upload");
    write_chunks(upload.as_mut(), &body.slice(..9 * MIB), &[9 * MIB]).await;
    assert!(
        store.head(key).await.unwrap().is_none(),
        "nothing visible while writing (a part is already sent on AWS)"
    );
    assert!(
        store
            .list("131016/exports/", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    write_chunks(upload.as_mut(), &body.slice(9 * MIB..), &sizes[1..]).await;
    assert!(store.head(key).await.unwrap().is_none());
    let meta = upload.finish().await.expect("finish");
    assert_eq!(meta.key, key);
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(
        meta.content_type.as_deref(),
        Some("text/csv; charset=utf-8")
    );

    let head = store
        .head(key)
        .await
        .unwrap()
        .expect("visible after finish");
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.etag, meta.etag);
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let got = read_all(store.as_ref(), key).await;
    assert!(
        got == body,
        "uploaded body differs ({} bytes read)",
        got.len()
    );
    let listed = store.list("131016/exports/", None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, body.len() as u64);
    assert!(leftover_parts(&env, &bucket).await.is_empty());

    // Downloadable with a presigned GET, as an export is.
    let get = store
        .presign(key, PresignMethod::Get, Duration::from_secs(300))
        .await
        .expect("presign get");
    match env.kind {
        Kind::Aws => {
            assert!(
                meta.etag.ends_with("-3"),
                "three parts of 8 MiB at most: {}",
                meta.etag
            );
            let mut req = reqwest::Client::new().get(&get.url);
            for (k, v) in &get.headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.expect("GET presigned");
            assert!(resp.status().is_success(), "GET answered {}", resp.status());
            assert!(
                resp.bytes().await.unwrap() == body,
                "presigned GET body differs"
            );
        }
        Kind::Embedded => {
            let put = store
                .put("131016/exports/copy.csv", body.clone(), None)
                .await
                .unwrap();
            assert_eq!(meta.etag, put.etag, "embedded etags are the body's SHA-256");
            let verifier = env.embedded_backend().unwrap().presign_verifier();
            let query = url::Url::parse(&get.url)
                .unwrap()
                .query()
                .unwrap()
                .to_owned();
            verifier
                .verify(&bucket, key, PresignMethod::Get, &query, env.clock.now())
                .expect("presigned GET of the uploaded object verifies");
        }
    }
}

async fn small_upload_is_one_object(env: Env) {
    let (store, _) = env.blobs().await;
    let key = "131016/exports/small.csv";
    let mut upload = store.upload(key, Some("text/csv")).await.unwrap();
    for chunk in ["id,name\r\n", "1,山田\r\n", "", "2,佐藤\r\n"] {
        upload.write(Bytes::from(chunk)).await.unwrap();
    }
    let meta = upload.finish().await.unwrap();
    let expected = "id,name\r\n1,山田\r\n2,佐藤\r\n".as_bytes();
    assert_eq!(meta.size, expected.len() as u64);
    assert_eq!(read_all(store.as_ref(), key).await, expected);
    let head = store.head(key).await.unwrap().unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/csv"));
    assert_eq!(head.etag, meta.etag);
    // Smaller than a part: stored as one object (AWS: one PutObject, a plain MD5 etag), so
    // its etag is that of a put of the same bytes on both adapters.
    let put = store
        .put("131016/exports/put.csv", Bytes::from(expected), None)
        .await
        .unwrap();
    assert_eq!(meta.etag, put.etag);
}

async fn upload_is_invisible_until_finish(env: Env) {
    let (store, _) = env.blobs().await;
    let key = "131016/exports/latest.csv";
    let old = store
        .put(key, Bytes::from_static(b"old export"), Some("text/plain"))
        .await
        .unwrap();
    let body = Bytes::from(pattern(8 * MIB + 3));
    let mut upload = store.upload(key, Some("text/csv")).await.unwrap();
    write_chunks(upload.as_mut(), &body, &[MIB; 9]).await;
    // A part is sent (AWS) and the whole body is on disk (embedded): the old object stays.
    assert_eq!(store.head(key).await.unwrap().unwrap(), old);
    assert_eq!(read_all(store.as_ref(), key).await, b"old export");
    assert_eq!(store.list("131016/", None, 10).await.unwrap().len(), 1);
    let meta = upload.finish().await.unwrap();
    assert_ne!(meta.etag, old.etag);
    let head = store.head(key).await.unwrap().unwrap();
    assert_eq!(
        (head.size, head.content_type.as_deref()),
        (body.len() as u64, Some("text/csv"))
    );
    assert!(read_all(store.as_ref(), key).await == body);
}

async fn aborted_or_dropped_upload_leaves_nothing(env: Env) {
    let (store, bucket) = env.blobs().await;
    let kept = "131016/exports/kept.csv";
    store
        .put(kept, Bytes::from_static(b"kept"), Some("text/csv"))
        .await
        .unwrap();
    let body = Bytes::from(pattern(9 * MIB));
    // Aborted after a part was sent, over an existing object and under a new key.
    for key in [kept, "131016/exports/new/aborted.csv"] {
        let mut upload = store.upload(key, Some("text/csv")).await.unwrap();
        write_chunks(upload.as_mut(), &body, &[4 * MIB, 5 * MIB]).await;
        upload.abort().await.expect("abort");
    }
    // Aborted before any byte; aborted small.
    store
        .upload("131016/exports/none.csv", None)
        .await
        .unwrap()
        .abort()
        .await
        .unwrap();
    let mut small = store
        .upload("131016/exports/small.csv", None)
        .await
        .unwrap();
    small.write(Bytes::from_static(b"a,b\n")).await.unwrap();
    small.abort().await.unwrap();
    // Dropped without finish, after a part was sent.
    {
        let mut upload = store
            .upload("131016/exports/dropped.csv", None)
            .await
            .unwrap();
        write_chunks(upload.as_mut(), &body, &[9 * MIB]).await;
    }

    assert_eq!(read_all(store.as_ref(), kept).await, b"kept");
    let listed: Vec<String> = store
        .list("", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, [kept]);
    for key in [
        "131016/exports/new/aborted.csv",
        "131016/exports/none.csv",
        "131016/exports/small.csv",
        "131016/exports/dropped.csv",
    ] {
        assert!(store.head(key).await.unwrap().is_none(), "{key}");
    }
    // No parts left: AWS aborts a dropped upload in the background, so wait a little.
    let mut left = leftover_parts(&env, &bucket).await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = leftover_parts(&env, &bucket).await;
    }
    assert!(left.is_empty(), "parts left behind: {left:?}");
}

async fn empty_upload_stores_a_zero_byte_object(env: Env) {
    let (store, _) = env.blobs().await;
    let meta = store
        .upload("131016/exports/empty.csv", Some("text/csv"))
        .await
        .unwrap()
        .finish()
        .await
        .expect("an empty upload is allowed");
    assert_eq!(meta.size, 0);
    let mut upload = store
        .upload("131016/exports/empty2.csv", None)
        .await
        .unwrap();
    upload.write(Bytes::new()).await.unwrap();
    assert_eq!(upload.finish().await.unwrap().size, 0);
    let head = store
        .head("131016/exports/empty.csv")
        .await
        .unwrap()
        .expect("0-byte object exists");
    assert_eq!(
        (head.size, head.content_type.as_deref()),
        (0, Some("text/csv"))
    );
    assert!(
        read_all(store.as_ref(), "131016/exports/empty.csv")
            .await
            .is_empty()
    );
    assert!(
        read_all(store.as_ref(), "131016/exports/empty2.csv")
            .await
            .is_empty()
    );
}

async fn upload_refuses_bad_keys(env: Env) {
    let (store, _) = env.blobs().await;
    for bad in ["", "/abs", "a/../b", "a//b", "a/", "a/./b"] {
        match store.upload(bad, Some("text/csv")).await {
            Err(PortError::Invalid(_)) => {}
            Err(other) => panic!("{bad:?}: {other:?}"),
            Ok(_) => panic!("{bad:?}: bad key accepted"),
        }
    }
    assert!(store.list("", None, 10).await.unwrap().is_empty());
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

/// A `multipart/form-data` body as a browser sends it: the fields in order, then `file`.
fn multipart(fields: &[(String, String)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----madoguchiFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(post: &PresignedPost, fields: &[(String, String)], file: &[u8]) -> u16 {
    let (content_type, body) = multipart(fields, file);
    reqwest::Client::new()
        .post(&post.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST form")
        .status()
        .as_u16()
}

const POST_KEY: &str = "131016/uploads/申請書 1.pdf";

fn pdf_policy() -> UploadPolicy {
    UploadPolicy::new(POST_KEY, 1, 1024, Duration::from_secs(300))
        .with_content_type("application/pdf")
}

async fn presigned_post_form_is_signed_for_one_key_and_range(env: Env) {
    let (store, bucket) = env.blobs().await;
    let now = env.clock.now();
    let policy = pdf_policy();
    let post = store.presign_post(&policy).await.expect("presign_post");
    assert_eq!(post.expires_at, policy.expires_at(now));
    assert_eq!(post.expires_at.as_second() - now.as_second(), 300);
    assert_eq!(post.field("key"), Some(POST_KEY));
    assert_eq!(post.field("content-type"), Some("application/pdf"));
    assert_eq!(post.field("file"), None, "the file part is the client's");
    let mut names: Vec<String> = post.fields.iter().map(|(k, _)| k.to_lowercase()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), post.fields.len(), "no field twice");
    let plain = store
        .presign_post(&UploadPolicy::new(POST_KEY, 0, 10, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        plain.field("Content-Type"),
        None,
        "no content type unless fixed"
    );

    match env.kind {
        Kind::Aws => {
            assert_eq!(
                post.url,
                format!("{}/{bucket}", madoguchi_tests::aws_endpoint())
            );
            assert_eq!(post.field("x-amz-algorithm"), Some("AWS4-HMAC-SHA256"));
            let date = now.strftime("%Y%m%d").to_string();
            assert_eq!(
                post.field("x-amz-credential").unwrap(),
                format!("madoguchi-local/{date}/ap-northeast-1/s3/aws4_request")
            );
            assert_eq!(
                post.field("x-amz-date").unwrap(),
                now.strftime("%Y%m%dT%H%M%SZ").to_string()
            );
            assert_eq!(
                post.field("x-amz-security-token"),
                None,
                "fixed credentials"
            );
            assert_eq!(post.field("x-amz-signature").map(str::len), Some(64));
            // moto does not check the policy (see the top of this file): check what S3 will.
            let doc = madoguchi_aws::post_policy::decode_policy(post.field("policy").unwrap())
                .expect("policy is base64 JSON");
            assert_eq!(
                doc["expiration"],
                post.expires_at
                    .strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    .to_string()
            );
            let conditions = doc["conditions"].as_array().unwrap();
            assert!(conditions.contains(&serde_json::json!({ "bucket": bucket })));
            assert!(conditions.contains(&serde_json::json!(["content-length-range", 1, 1024])));
            for (name, value) in &post.fields {
                if name != "policy" && name != "x-amz-signature" {
                    assert!(
                        conditions.contains(&serde_json::json!({ name.as_str(): value })),
                        "{name} is not pinned by the policy"
                    );
                }
            }
        }
        Kind::Embedded => {
            assert_eq!(post.url, format!("http://127.0.0.1:9/_blobs/{bucket}"));
            // The host checks forms with this verifier (its HTTP tests post them).
            let verifier = env.embedded_backend().unwrap().presign_verifier();
            let grant = verifier
                .verify_post_form(&bucket, &post.fields, now)
                .expect("fresh form verifies");
            assert_eq!(
                (grant.key.as_str(), grant.min_bytes, grant.max_bytes),
                (POST_KEY, 1, 1024)
            );
            assert_eq!(grant.content_type.as_deref(), Some("application/pdf"));
            assert_eq!(grant.expires_at, post.expires_at);
            let moved: Vec<(String, String)> = post
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = if k == "key" {
                        "131016/uploads/other.pdf"
                    } else {
                        v
                    };
                    (k.clone(), v.to_owned())
                })
                .collect();
            assert!(
                verifier.verify_post_form(&bucket, &moved, now).is_err(),
                "the key cannot be changed"
            );
            assert!(
                verifier
                    .verify_post_form("other-bucket", &post.fields, now)
                    .is_err()
            );
            assert!(
                verifier
                    .verify_post_form(&bucket, &post.fields, post.expires_at)
                    .is_ok()
            );
            let late = post
                .expires_at
                .checked_add(jiff::SignedDuration::from_secs(1))
                .unwrap();
            assert!(
                verifier
                    .verify_post_form(&bucket, &post.fields, late)
                    .is_err(),
                "refused after expires_at"
            );
        }
    }
}

async fn presigned_post_refuses_bad_policies(env: Env) {
    let (store, _) = env.blobs().await;
    let day = Duration::from_secs(24 * 3600);
    for bad in [
        UploadPolicy::new("a/../b", 0, 10, Duration::from_secs(60)),
        UploadPolicy::new("", 0, 10, Duration::from_secs(60)),
        UploadPolicy::new("a", 11, 10, Duration::from_secs(60)),
        UploadPolicy::new("a", 0, 10, Duration::ZERO),
        UploadPolicy::new("a", 0, 10, 8 * day),
        UploadPolicy::new("a", 0, 10, Duration::from_secs(60)).with_content_type("a\nb"),
    ] {
        let err = store.presign_post(&bad).await.expect_err("bad policy");
        assert!(matches!(err, PortError::Invalid(_)), "{bad:?}: {err:?}");
    }
    assert!(
        store
            .presign_post(&UploadPolicy::new("a", 0, 10, 7 * day))
            .await
            .is_ok(),
        "7 days is the longest lifetime"
    );
}

async fn presigned_post_upload_stores_the_file(env: Env) {
    let (store, bucket) = env.blobs().await;
    let post = store.presign_post(&pdf_policy()).await.unwrap();
    match env.kind {
        Kind::Aws => {
            // A browser without credentials posts the form; S3 answers 204.
            assert_eq!(post_form(&post, &post.fields, b"%PDF-1.7 form").await, 204);
        }
        Kind::Embedded => {
            // What the host's POST route does with a form (its HTTP round trip is tested in
            // shared/host/tests/presigned_post.rs): verify, then stream within the range.
            let backend = env.embedded_backend().unwrap();
            let grant = backend
                .presign_verifier()
                .verify_post_form(&bucket, &post.fields, env.clock.now())
                .unwrap();
            let fs = backend.blobs(&bucket);
            fs.put_stream(
                &grant.key,
                &b"%PDF-1.7 form"[..],
                grant.content_type.as_deref(),
                grant.min_bytes..=grant.max_bytes,
            )
            .await
            .unwrap();
            assert!(
                fs.put_stream(&grant.key, &[0u8; 1025][..], None, 1..=1024)
                    .await
                    .is_err(),
                "over max_bytes stores nothing"
            );
        }
    }
    assert_eq!(read_all(store.as_ref(), POST_KEY).await, b"%PDF-1.7 form");
    let head = store.head(POST_KEY).await.unwrap().unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/pdf"));
}

/// AWS only: whether moto's S3 delivers bucket notifications (NotificationConfiguration →
/// SQS queue) for POST and PUT uploads, which the attachments pipeline relies on. It does,
/// as S3 does, with event names `ObjectCreated:Post` and `ObjectCreated:Put`. Unlike S3,
/// moto's record has no `sequencer`, no `userIdentity`, and encodes `/` in keys as `%2F`
/// (S3 keeps `/`); URL-decoding the key, as consumers must anyway, gives the key either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_notifies_sqs_of_post_and_put_uploads() {
    madoguchi_tests::with_time_limit(async {
        let env = Env::aws().await;
        let backend = env.aws_backend().unwrap();
        let (store, bucket) = env.blobs().await;
        let (queue_url, _) = madoguchi_aws::provision::ensure_queue(
            backend.sqs_client(),
            &format!("{}-events", env.prefix),
            Duration::from_secs(30),
            5,
        )
        .await
        .unwrap();
        let attrs = backend
            .sqs_client()
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names("QueueArn".into())
            .send()
            .await
            .unwrap();
        let arn = attrs
            .attributes()
            .and_then(|a| a.iter().find(|(k, _)| k.as_str() == "QueueArn"))
            .map(|(_, v)| v.clone())
            .expect("queue arn");
        // PutBucketNotificationConfiguration, sent as plain HTTP (the tests crate does not
        // link the S3 SDK's model types). moto checks no signature; the header only names the
        // service for moto's dispatcher.
        let config = format!(
            "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <QueueConfiguration><Id>uploads</Id><Queue>{arn}</Queue>\
             <Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>"
        );
        let res = reqwest::Client::new()
            .put(format!(
                "{}/{bucket}?notification",
                madoguchi_tests::aws_endpoint()
            ))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=madoguchi-local/20260101/ap-northeast-1/s3/\
                 aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(config)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        let queue = backend.queue(&queue_url);

        let post = store.presign_post(&pdf_policy()).await.unwrap();
        assert_eq!(post_form(&post, &post.fields, b"%PDF-1.7 form").await, 204);
        store
            .put("131016/uploads/put.txt", Bytes::from_static(b"put"), None)
            .await
            .unwrap();

        let mut events = Vec::new();
        for _ in 0..10 {
            for m in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
                let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
                if body["Event"] == "s3:TestEvent" {
                    continue; // moto, like S3, sends one when the configuration is set
                }
                let r = &body["Records"][0];
                let encoded = r["s3"]["object"]["key"].as_str().unwrap().to_owned();
                let key = url::form_urlencoded::parse(format!("k={encoded}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned();
                events.push((
                    r["eventName"].as_str().unwrap().to_owned(),
                    key,
                    r["s3"]["object"]["size"].as_u64().unwrap(),
                    r["s3"]["bucket"]["name"].as_str().unwrap().to_owned(),
                ));
            }
            if events.len() >= 2 {
                break;
            }
        }
        events.sort();
        assert_eq!(
            events,
            [
                (
                    "ObjectCreated:Post".to_owned(),
                    POST_KEY.to_owned(),
                    13,
                    bucket.clone()
                ),
                (
                    "ObjectCreated:Put".to_owned(),
                    "131016/uploads/put.txt".to_owned(),
                    3,
                    bucket.clone()
                ),
            ]
        );
    })
    .await;
}

/// AWS only, a canary for the comment at the top of this file: moto 5.2.5 checks nothing of
/// a POST policy, so these forms, each of which real S3 refuses, are all stored. When a moto
/// upgrade makes this fail, moto has started to enforce policies: move the refusals into
/// the contract tests above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_does_not_check_post_policies() {
    madoguchi_tests::with_time_limit(async {
        let env = Env::aws().await;
        let (store, _) = env.blobs().await;
        let policy = UploadPolicy::new("131016/canary/a.bin", 1, 4, Duration::from_secs(60));
        let post = store.presign_post(&policy).await.unwrap();
        let edit = |name: &str, value: &str| -> Vec<(String, String)> {
            post.fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if k == name {
                            value.to_owned()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect()
        };
        // Larger than content-length-range allows.
        assert_eq!(post_form(&post, &post.fields, b"0123456789").await, 204);
        assert_eq!(
            store
                .head("131016/canary/a.bin")
                .await
                .unwrap()
                .unwrap()
                .size,
            10
        );
        // A key other than the signed one.
        let moved = edit("key", "131016/canary/elsewhere.bin");
        assert_eq!(post_form(&post, &moved, b"12").await, 204);
        assert!(
            store
                .head("131016/canary/elsewhere.bin")
                .await
                .unwrap()
                .is_some()
        );
        // A signature that signs nothing.
        let forged = edit("x-amz-signature", &"0".repeat(64));
        assert_eq!(post_form(&post, &forged, b"12").await, 204);
        // A policy that expired a day ago.
        env.clock.advance(jiff::SignedDuration::from_hours(-24));
        let expired = store.presign_post(&policy).await.unwrap();
        assert!(expired.expires_at < jiff::Timestamp::now());
        assert_eq!(post_form(&expired, &expired.fields, b"12").await, 204);
    })
    .await;
}

/// A version id names what was written then (S3 versioned buckets, as the linkage bucket is);
/// the embedded store keeps one version and says so.
async fn versions_are_read_by_id(env: Env) {
    let (store, bucket) = env.blobs().await;
    let key = "inbound/jumin/same-name.csv";
    if !env.enable_versioning(&bucket).await {
        store
            .put(key, Bytes::from_static(b"one"), None)
            .await
            .unwrap();
        let err = store.get_version(key, "v1").await.err().unwrap();
        assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
        return;
    }
    store
        .put(key, Bytes::from_static(b"first"), None)
        .await
        .unwrap();
    store
        .put(key, Bytes::from_static(b"second"), None)
        .await
        .unwrap();
    let ids = env.version_ids(&bucket, key).await;
    assert_eq!(ids.len(), 2);
    let (old, new) = (&ids[0], &ids[1]);
    for (id, want) in [(old, b"first".as_slice()), (new, b"second".as_slice())] {
        let (meta, mut body) = store.get_version(key, id).await.unwrap();
        let mut got = Vec::new();
        body.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, want);
        assert_eq!(meta.size, want.len() as u64);
    }
    assert_eq!(read_all(store.as_ref(), key).await, b"second");
    let err = store
        .get_version("inbound/jumin/other.csv", old)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, PortError::NotFound | PortError::Invalid(_)),
        "{err:?}"
    );
}
