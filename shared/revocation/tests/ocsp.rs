//! The OCSP transport against a real responder (`openssl ocsp` as a child process) and
//! against an axum server that answers wrongly.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use madoguchi_revocation::{FetchError, OcspClient, OcspTransport};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Posts the OCSP request for `cert` through `transport` and returns what
/// `openssl ocsp -respin` says about the response (stdout, stderr): the certificate's status
/// and whether the response's signature verifies. A second run checks that the response's
/// nonce is that of the request (with `-cert`, openssl would compare it with a fresh nonce
/// of its own, hence `-no_nonce` in the first run).
async fn ask(pki: &common::Pki, transport: &dyn OcspTransport, cert: &str) -> (String, String) {
    let dir = pki.dir.path();
    let req = format!("req_{cert}.der");
    common::run(
        dir,
        &["ocsp", "-issuer", "ca.pem", "-cert", cert, "-reqout", &req],
    );
    let request = std::fs::read(dir.join(&req)).unwrap();
    let response = transport.post(&request).await.expect("responder answers");
    let resp = format!("resp_{cert}.der");
    std::fs::write(dir.join(&resp), &response).unwrap();
    let nonce = common::run(
        dir,
        &[
            "ocsp", "-reqin", &req, "-respin", &resp, "-CAfile", "ca.pem",
        ],
    );
    let nonce_err = String::from_utf8_lossy(&nonce.stderr);
    assert!(!nonce_err.contains("Nonce Verify error"), "{nonce_err}");
    let out = common::run(
        dir,
        &[
            "ocsp",
            "-respin",
            &resp,
            "-issuer",
            "ca.pem",
            "-cert",
            cert,
            "-CAfile",
            "ca.pem",
            "-no_nonce",
            "-resp_text",
        ],
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_real_responder_answers_good_and_revoked() {
    let pki = common::make();
    // A free port: bind, note, release. openssl 3.0's `-port` takes a number only.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut responder = tokio::process::Command::new("openssl")
        .args([
            "ocsp",
            "-index",
            "ca.index.txt",
            "-port",
            &port.to_string(),
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-nrequest",
            "2",
        ])
        .current_dir(pki.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl CLI is installed");
    // Wait for its "waiting for OCSP client connections" line rather than probing the port:
    // openssl 3.0's responder spins on a connection that closes without a request. The rest
    // of stderr is drained in the background (a closed pipe would kill it with SIGPIPE).
    let mut lines = BufReader::new(responder.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("waiting for OCSP client connections") {
                return;
            }
        }
        panic!("the responder exited before listening");
    })
    .await
    .expect("the responder listens within 20 s");
    let drain = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });

    let client: Arc<dyn OcspTransport> = Arc::new(
        OcspClient::new(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(10),
        )
        .unwrap(),
    );

    let (stdout, stderr) = ask(&pki, client.as_ref(), "user.pem").await;
    assert!(stdout.contains("user.pem: good"), "{stdout}\n{stderr}");
    assert!(stderr.contains("Response verify OK"), "{stderr}");

    let (stdout, stderr) = ask(&pki, client.as_ref(), "revoked.pem").await;
    assert!(
        stdout.contains("revoked.pem: revoked"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Reason: keyCompromise"), "{stdout}");
    assert!(stderr.contains("Response verify OK"), "{stderr}");

    // `-nrequest 2`: it exits by itself; kill it if it did not.
    match tokio::time::timeout(Duration::from_secs(5), responder.wait()).await {
        Ok(status) => assert!(status.unwrap().success()),
        Err(_) => {
            responder.kill().await.unwrap();
            panic!("the responder did not exit after two requests");
        }
    }
    let log = drain.await.unwrap();
    assert_eq!(log.matches("Received request").count(), 2, "{log}");
}

async fn echo(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    // Echo the request, as a responder would answer it, if it was sent as RFC 6960 says.
    let ok = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/ocsp-request");
    if !ok {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    ([(header::CONTENT_TYPE, "application/ocsp-response")], body).into_response()
}

async fn wrong_server() -> String {
    let app = Router::new()
        .route("/echo", post(echo))
        .route(
            "/text",
            post(|| async { ([(header::CONTENT_TYPE, "text/plain")], "hello") }),
        )
        .route(
            "/untyped",
            post(|| async { StatusCode::OK.into_response() }),
        )
        .route(
            "/empty",
            post(|| async { [(header::CONTENT_TYPE, "application/ocsp-response")] }),
        )
        .route(
            "/big",
            post(|| async {
                (
                    [(header::CONTENT_TYPE, "application/ocsp-response")],
                    vec![0x30u8; 2 * 1024 * 1024],
                )
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                ([(header::CONTENT_TYPE, "application/ocsp-response")], "x")
            }),
        )
        .route("/moved", post(|| async { Redirect::temporary("/echo") }))
        .route("/busy", post(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn wrong_answers_are_errors() {
    let base = wrong_server().await;
    let client =
        |path: &str| OcspClient::new(&format!("{base}{path}"), Duration::from_secs(1)).unwrap();
    let request = b"\x30\x03\x02\x01\x00";

    assert_eq!(
        client("/echo").post(request).await.unwrap(),
        request.to_vec()
    );
    let mixed_case = client("/echo");
    let via_trait: &dyn OcspTransport = &mixed_case;
    assert_eq!(via_trait.post(request).await.unwrap(), request.to_vec());

    assert_eq!(
        client("/nowhere").post(request).await,
        Err(FetchError::Status(404))
    );
    assert_eq!(
        client("/busy").post(request).await,
        Err(FetchError::Status(503))
    );
    assert_eq!(
        client("/moved").post(request).await,
        Err(FetchError::Status(307)),
        "redirects are not followed"
    );
    assert!(matches!(
        client("/text").post(request).await,
        Err(FetchError::ContentType(t)) if t.starts_with("text/plain")
    ));
    assert_eq!(
        client("/untyped").post(request).await,
        Err(FetchError::ContentType(String::new()))
    );
    assert!(matches!(
        client("/empty").post(request).await,
        Err(FetchError::Decode(_))
    ));
    assert_eq!(
        client("/big").post(request).await,
        Err(FetchError::TooLarge {
            limit: OcspClient::DEFAULT_MAX_BYTES
        })
    );
    assert_eq!(
        client("/big")
            .with_max_bytes(4 * 1024 * 1024)
            .post(request)
            .await
            .map(|b| b.len()),
        Ok(2 * 1024 * 1024)
    );
    assert_eq!(
        OcspClient::new(&format!("{base}/slow"), Duration::from_millis(200))
            .unwrap()
            .post(request)
            .await,
        Err(FetchError::Timeout)
    );
}
