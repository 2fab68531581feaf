//! The SDK clients built with the project's trust store (Amazon Trust Services roots) verify
//! the server: an HTTPS endpoint whose certificate chains to no trusted root is refused in
//! the handshake, before any request is sent. The peer is the openssl CLI (`s_server`) with a
//! certificate it made itself; its log tells how the handshake ended.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use madoguchi_aws::AwsBackend;
use madoguchi_ports::{ItemStore, Key, SystemClock};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_endpoint_signed_by_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.crt"), dir.path().join("key.der"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("the openssl CLI is needed for this test");
    assert!(made.success());
    let port = free_port();
    let log = dir.path().join("s_server.log");
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-www", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("s_server.err")).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let backend =
        AwsBackend::local(&format!("https://127.0.0.1:{port}"), Arc::new(SystemClock)).await;
    let result = backend
        .items("madoguchi")
        .get(&Key::new("131016#X", "Y"))
        .await;
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        result.is_err(),
        "a request to an untrusted endpoint must fail"
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(dir.path().join("s_server.err")).unwrap_or_default();
    assert!(
        log.contains("alert certificate unknown") || log.contains("alert unknown ca"),
        "the client should abort the handshake over the certificate; s_server said:\n{log}"
    );
    assert!(
        !log.contains("GET /") && !log.contains("POST /"),
        "no HTTP request may reach an untrusted endpoint"
    );
}
