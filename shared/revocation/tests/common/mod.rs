//! Test fixtures: a throwaway PKI made by the openssl CLI at test time (no key or
//! certificate is committed), and an HTTP server on loopback whose answer the test switches.

#![allow(dead_code)]

use madoguchi_tests::openssl_ca::{gencrl, make_ca, make_leaf, read, revoke};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the CRL tests need, as bytes.
pub struct Fixture {
    /// When the fixture was made; CRLs start about then.
    pub made_at: jiff::Timestamp,
    /// The trust anchor (the CA that signs CRLs A and B).
    pub ca_pem: Vec<u8>,
    /// CRL of the CA made before `revoked` was revoked (no entries), valid 30 days.
    pub crl_a_der: Vec<u8>,
    pub crl_a_pem: Vec<u8>,
    /// CRL of the CA listing `revoked`, valid 30 days.
    pub crl_b_der: Vec<u8>,
    pub crl_b_pem: Vec<u8>,
    /// CRL of a CA that is not an anchor.
    pub other_crl_der: Vec<u8>,
    pub other_crl_pem: Vec<u8>,
    pub payload: Vec<u8>,
    /// CMS (DER), detached, over `payload` by the certificate that CRL B revokes.
    pub sig_revoked: Vec<u8>,
}

/// A PKI on disk (for the OCSP responder), removed when dropped.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub fixture: Fixture,
}

impl Pki {
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// One fixture per test binary; its directory is already gone.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| make().fixture)
}

pub use madoguchi_tests::openssl_ca::openssl_output as run;

/// The leaves' extensions: a 署名用-style certificate.
const SECTIONS: &str = "[ sign_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation";

/// CA `ca` (the anchor) with leaves `user` and `revoked`, CRL A, then `revoked` revoked and
/// CRL B; CA `other` with its own CRL; a CMS signature by `revoked`.
pub fn make() -> Pki {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let made_at = jiff::Timestamp::now();
    let payload = b"{\"answers\":{},\"attachments\":[],\"form\":\"test\",\"version\":1}".to_vec();
    std::fs::write(dir.join("payload.bin"), &payload).unwrap();

    make_ca(dir, "ca", "Test Signing CA", SECTIONS);
    make_ca(dir, "other", "Untrusted CA", SECTIONS);
    make_leaf(dir, "ca", "user", "sign_ext", None);
    make_leaf(dir, "ca", "revoked", "sign_ext", None);
    gencrl(dir, "ca", "crl_a", &[]);
    revoke(dir, "ca", "revoked");
    gencrl(dir, "ca", "crl_b", &[]);
    gencrl(dir, "other", "other_crl", &[]);
    run(
        dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-in",
            "payload.bin",
            "-signer",
            "revoked.pem",
            "-inkey",
            "revoked.key",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-out",
            "sig_revoked.der",
        ],
    );

    let fixture = Fixture {
        made_at,
        ca_pem: read(dir, "ca.pem"),
        crl_a_der: read(dir, "crl_a.der"),
        crl_a_pem: read(dir, "crl_a.pem"),
        crl_b_der: read(dir, "crl_b.der"),
        crl_b_pem: read(dir, "crl_b.pem"),
        other_crl_der: read(dir, "other_crl.der"),
        other_crl_pem: read(dir, "other_crl.pem"),
        payload,
        sig_revoked: read(dir, "sig_revoked.der"),
    };
    Pki { dir: tmp, fixture }
}

/// What the test server answers on `/crl`.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, empty body.
    Status(u16),
}

struct ServerState {
    reply: Mutex<Reply>,
    /// When set, sent as `ETag`, and a matching `If-None-Match` gets 304.
    etag: Mutex<Option<String>>,
    delay: Mutex<Duration>,
    hits: AtomicUsize,
}

/// An axum server on 127.0.0.1:0 serving `/crl`, switchable and counting requests.
#[derive(Clone)]
pub struct CrlServer {
    pub base: String,
    state: Arc<ServerState>,
}

impl CrlServer {
    pub async fn start(reply: Reply) -> Self {
        let state = Arc::new(ServerState {
            reply: Mutex::new(reply),
            etag: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/crl", get(serve_crl))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    /// The location string of `/crl`.
    pub fn location(&self) -> String {
        format!("{}/crl", self.base)
    }

    pub fn set(&self, reply: Reply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    pub fn set_etag(&self, etag: Option<&str>) {
        *self.state.etag.lock().unwrap() = etag.map(str::to_owned);
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

async fn serve_crl(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let etag = state.etag.lock().unwrap().clone();
    if let Some(etag) = &etag
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let reply = state.reply.lock().unwrap().clone();
    match reply {
        Reply::Body(body) => {
            let mut response =
                ([(header::CONTENT_TYPE, "application/pkix-crl")], body).into_response();
            if let Some(etag) = etag {
                response
                    .headers_mut()
                    .insert(header::ETAG, etag.parse().unwrap());
            }
            response
        }
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
    }
}
