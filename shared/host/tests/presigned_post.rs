//! Embedded presigned POST end to end: forms made by `FsBlobStore::presign_post`, posted as
//! a browser would (`multipart/form-data`) to the host's `POST /_blobs/{bucket}` route, and
//! the S3-format object-created events the route hands to its notifier.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use madoguchi_embedded::{EmbeddedBackend, QueueSettings};
use madoguchi_host::blobs_http::{self, ObjectCreated, QueueNotifier, UploadNotifier};
use madoguchi_ports::{
    BlobStore, FixedClock, PortError, PortResult, PresignMethod, PresignedPost, Queue, UploadPolicy,
};
use tokio::io::AsyncReadExt;

const BUCKET: &str = "attachments";
const KEY: &str = "131016/applications/a1/住民票 写し.pdf";

/// Records every event it is handed; fails when told to.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<ObjectCreated>>,
    fail: bool,
}

#[async_trait]
impl UploadNotifier for Recorder {
    async fn object_created(&self, event: &ObjectCreated) -> PortResult<()> {
        if self.fail {
            return Err(PortError::Unavailable("queue down".into()));
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

struct Host {
    base: String,
    backend: EmbeddedBackend,
    clock: Arc<FixedClock>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Host {
    /// The blob routes alone, in process, on a free port, over a fresh data directory.
    async fn start(
        notifier: impl FnOnce(&EmbeddedBackend) -> Option<Arc<dyn UploadNotifier>>,
    ) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let clock = Arc::new(FixedClock::new(jiff::Timestamp::now()));
        let backend = EmbeddedBackend::open(dir.path(), &base, clock.clone()).unwrap();
        let app = blobs_http::routes_with_notifier(backend.clone(), notifier(&backend));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Host {
            base,
            backend,
            clock,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn store(&self) -> Arc<madoguchi_embedded::FsBlobStore> {
        self.backend.blobs(BUCKET)
    }

    async fn presign(&self, policy: &UploadPolicy) -> PresignedPost {
        self.store()
            .presign_post(policy)
            .await
            .expect("presign_post")
    }

    async fn post(&self, url: &str, fields: &[(String, String)], file: &[u8]) -> reqwest::Response {
        let (content_type, body) = multipart(fields, file);
        self.http
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        let (_, mut body) = match self.store().get(key).await {
            Ok(found) => found,
            Err(PortError::NotFound) => return None,
            Err(e) => panic!("get: {e}"),
        };
        let mut out = Vec::new();
        body.read_to_end(&mut out).await.unwrap();
        Some(out)
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
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["status"], status);
    doc
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
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
}

fn policy(min: u64, max: u64) -> UploadPolicy {
    UploadPolicy::new(KEY, min, max, Duration::from_secs(300)).with_content_type("application/pdf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_upload_is_stored_answers_204_and_is_notified() {
    let recorder = Arc::new(Recorder::default());
    let r = recorder.clone();
    let host = Host::start(move |_| Some(r as Arc<dyn UploadNotifier>)).await;
    let post = host.presign(&policy(1, 5 * 1024 * 1024)).await;
    assert_eq!(post.url, format!("{}/_blobs/{BUCKET}", host.base));
    // Several MiB in many chunks, to stream through the counting writer.
    let body: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let res = host.post(&post.url, &post.fields, &body).await;
    assert_eq!(res.status().as_u16(), 204, "{:?}", res.text().await);
    let etag = res.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_owned();

    assert!(host.read(KEY).await.unwrap() == body, "stored body differs");
    let meta = host.store().head(KEY).await.unwrap().unwrap();
    assert_eq!(meta.etag, etag);
    assert_eq!(meta.content_type.as_deref(), Some("application/pdf"));

    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.bucket.as_str(),
            e.key.as_str(),
            e.size,
            e.etag.as_str(),
            e.event_name
        ),
        (
            BUCKET,
            KEY,
            body.len() as u64,
            etag.as_str(),
            "ObjectCreated:Post"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_size_range_store_nothing() {
    let recorder = Arc::new(Recorder::default());
    let r = recorder.clone();
    let host = Host::start(move |_| Some(r as Arc<dyn UploadNotifier>)).await;
    host.store()
        .put(KEY, bytes::Bytes::from_static(b"previous"), None)
        .await
        .unwrap();
    let post = host.presign(&policy(4, 10)).await;

    let doc = problem(
        host.post(&post.url, &post.fields, b"12345678901").await,
        413,
    )
    .await;
    assert_eq!(doc["type"], blobs_http::PROBLEM_UPLOAD_TOO_LARGE);
    // A file far over the limit is cut off without being read to its end. The server
    // answers 413 and closes the connection while the client may still be sending, so the
    // client can see the reset instead of the answer; either way nothing is stored.
    let big = vec![0u8; 4 * 1024 * 1024];
    let (content_type, body) = multipart(&post.fields, &big);
    match host
        .http
        .post(&post.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
    {
        Ok(res) => drop(problem(res, 413).await),
        Err(e) => assert!(!e.is_status(), "{e}"),
    }
    let doc = problem(host.post(&post.url, &post.fields, b"123").await, 400).await;
    assert_eq!(doc["type"], blobs_http::PROBLEM_UPLOAD_TOO_SMALL);
    assert_eq!(
        host.read(KEY).await.unwrap(),
        b"previous",
        "nothing replaced it"
    );
    assert!(
        recorder.events.lock().unwrap().is_empty(),
        "nothing notified"
    );

    // Both bounds are inclusive.
    for ok in [&b"1234"[..], &b"1234567890"[..]] {
        let res = host.post(&post.url, &post.fields, ok).await;
        assert_eq!(res.status().as_u16(), 204);
        assert_eq!(host.read(KEY).await.unwrap(), ok);
    }
    let empty_ok = host.presign(&policy(0, 10)).await;
    let res = host.post(&empty_ok.url, &empty_ok.fields, b"").await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(host.read(KEY).await.unwrap(), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_forms_other_buckets_and_late_uploads_are_refused() {
    let host = Host::start(|_| None).await;
    let post = host.presign(&policy(1, 100)).await;
    let other_key = "131016/applications/a1/other.pdf";
    let refused = [
        ("other key", with(&post.fields, "key", other_key)),
        (
            "other content type",
            with(&post.fields, "Content-Type", "text/html"),
        ),
        (
            "bad signature",
            with(&post.fields, "x-madoguchi-signature", &"0".repeat(64)),
        ),
        (
            "no policy",
            post.fields
                .iter()
                .filter(|(k, _)| k != "policy")
                .cloned()
                .collect(),
        ),
        ("extra field", {
            let mut f = post.fields.clone();
            f.push(("acl".into(), "public-read".into()));
            f
        }),
    ];
    for (why, fields) in &refused {
        let res = host.post(&post.url, fields, b"%PDF-1.7").await;
        assert_eq!(res.status().as_u16(), 403, "{why}");
        problem(res, 403).await;
    }
    let other_bucket = format!("{}/_blobs/other-bucket", host.base);
    problem(
        host.post(&other_bucket, &post.fields, b"%PDF-1.7").await,
        403,
    )
    .await;
    assert!(host.read(KEY).await.is_none());
    assert!(host.read(other_key).await.is_none());
    assert!(
        host.backend
            .blobs("other-bucket")
            .head(KEY)
            .await
            .unwrap()
            .is_none()
    );

    // At expires_at the form still works; one second later it is refused.
    host.clock.set(post.expires_at);
    let res = host.post(&post.url, &post.fields, b"%PDF-1.7").await;
    assert_eq!(res.status().as_u16(), 204);
    host.store().delete(KEY).await.unwrap();
    host.clock.set(
        post.expires_at
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap(),
    );
    problem(host.post(&post.url, &post.fields, b"%PDF-1.7").await, 403).await;
    assert!(host.read(KEY).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_forms_are_400() {
    let host = Host::start(|_| None).await;
    let post = host.presign(&policy(1, 100)).await;
    let res = host
        .http
        .post(&post.url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    // Fields but no file part.
    let boundary = "b0undary";
    let mut body = String::new();
    for (k, v) in &post.fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let res = host
        .http
        .post(&post.url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    // A field longer than any form needs.
    let long = with(&post.fields, "key", &"k".repeat(20_000));
    problem(host.post(&post.url, &long, b"x").await, 400).await;
    assert!(host.read(KEY).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_notifier_sends_s3_events_to_the_buckets_queue() {
    let queue_slot: Arc<Mutex<Option<Arc<dyn Queue>>>> = Arc::default();
    let slot = queue_slot.clone();
    let host = Host::start(move |backend| {
        let queue: Arc<dyn Queue> = backend.queue("attachments-events", QueueSettings::default());
        *slot.lock().unwrap() = Some(queue.clone());
        // Only the attachments bucket notifies, like a bucket notification configuration.
        Some(Arc::new(QueueNotifier::new().bucket(BUCKET, queue)) as Arc<dyn UploadNotifier>)
    })
    .await;
    let queue = queue_slot.lock().unwrap().clone().unwrap();

    let post = host.presign(&policy(1, 100)).await;
    let res = host.post(&post.url, &post.fields, b"%PDF-1.7 x").await;
    assert_eq!(res.status().as_u16(), 204);
    // A presigned PUT is an object creation too (`ObjectCreated:Put`).
    let put_key = "131016/applications/a1/photo 2.jpg";
    let put = host
        .store()
        .presign(put_key, PresignMethod::Put, Duration::from_secs(60))
        .await
        .unwrap();
    let res = host.http.put(&put.url).body("JPEG").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Another bucket has no queue: stored, not notified.
    let other = host
        .backend
        .blobs("scratch")
        .presign_post(&UploadPolicy::new("x.txt", 0, 10, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        host.post(&other.url, &other.fields, b"x")
            .await
            .status()
            .as_u16(),
        204
    );

    let messages = queue.receive(10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(messages.len(), 2);
    let mut seen = Vec::new();
    for m in &messages {
        // Exactly what S3 sends to SQS, as the Lambda consumers parse it.
        let event: aws_lambda_events::event::s3::S3Event =
            serde_json::from_str(&m.body).expect("S3 event");
        assert_eq!(event.records.len(), 1);
        let r = &event.records[0];
        assert_eq!(r.event_source.as_deref(), Some("aws:s3"));
        assert_eq!(r.s3.bucket.name.as_deref(), Some(BUCKET));
        let key =
            madoguchi_linkage_inbound::decode_s3_key(r.s3.object.key.as_deref().unwrap()).unwrap();
        let meta = host
            .store()
            .head(&key)
            .await
            .unwrap()
            .expect("notified object exists");
        assert_eq!(r.s3.object.size, Some(meta.size as i64));
        assert_eq!(r.s3.object.e_tag.as_deref(), Some(meta.etag.as_str()));
        assert!(r.s3.object.sequencer.is_some());
        seen.push((r.event_name.clone().unwrap(), key));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ObjectCreated:Post".to_owned(), KEY.to_owned()),
            ("ObjectCreated:Put".to_owned(), put_key.to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_notification_fails_the_upload_so_the_client_retries() {
    let host = Host::start(|_| {
        Some(Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        }) as Arc<dyn UploadNotifier>)
    })
    .await;
    let post = host.presign(&policy(1, 100)).await;
    problem(host.post(&post.url, &post.fields, b"%PDF").await, 500).await;
    // The object is stored; the retry stores it again and notifies again.
    assert_eq!(host.read(KEY).await.unwrap(), b"%PDF");
}
