//! A counting HTTP proxy for measuring how many calls an adapter makes, counted on the
//! service's side of the wire (retries included).
//!
//! [`CountingProxy::start`] listens on a free loopback port and forwards every connection,
//! byte for byte, to an `http://` upstream (moto). It reads the request stream of each
//! connection as HTTP/1.1 (heads, then `Content-Length` or chunked bodies, keep-alive
//! included) and counts the requests by their `X-Amz-Target` header, which names the
//! operation of the JSON protocols (`TrentService.GenerateDataKey` for KMS,
//! `DynamoDB_20120810.PutItem`, …). Responses are relayed untouched. Point an SDK at
//! [`CountingProxy::url`] instead of the upstream:
//!
//! ```no_run
//! # async fn demo() {
//! # use std::sync::Arc;
//! use madoguchi_tests::{CountingProxy, aws_endpoint};
//! let proxy = CountingProxy::start(&aws_endpoint()).await.unwrap();
//! let clock = Arc::new(madoguchi_ports::SystemClock);
//! let backend = madoguchi_aws::AwsBackend::local(proxy.url(), clock).await;
//! // … use the backend …
//! eprintln!("KMS requests: {}", proxy.kms_requests());
//! # }
//! ```
//!
//! Only for tests: no TLS, no HTTP/2, loopback only.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The key under which requests without an `X-Amz-Target` header are counted.
pub const NO_TARGET: &str = "-";

/// The target prefix of every KMS operation.
pub const KMS_TARGET_PREFIX: &str = "TrentService.";

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// See the [module documentation](self). Stops forwarding when dropped.
pub struct CountingProxy {
    url: String,
    counts: Counts,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy")
            .field("url", &self.url)
            .field("counts", &self.counts())
            .finish()
    }
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`http://host:port`, no path) on `127.0.0.1:<free port>`.
    /// Must be called inside a Tokio runtime, which then runs the proxy.
    pub async fn start(upstream: &str) -> io::Result<Self> {
        let authority = upstream
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("upstream must be http://host:port, got {upstream}"),
                )
            })?
            .to_owned();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let counts = Counts::default();
        let accept = tokio::spawn(accept_loop(listener, authority, counts.clone()));
        Ok(Self {
            url: format!("http://{addr}"),
            counts,
            accept,
        })
    }

    /// The proxy's endpoint, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests so far by `X-Amz-Target` ([`NO_TARGET`] for requests without one).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests so far whose `X-Amz-Target` starts with `prefix`.
    pub fn count_with_target_prefix(&self, prefix: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(target, _)| target.as_str() != NO_TARGET && target.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// KMS requests so far (`X-Amz-Target: TrentService.*`).
    pub fn kms_requests(&self) -> u64 {
        self.count_with_target_prefix(KMS_TARGET_PREFIX)
    }

    /// Every request so far.
    pub fn total_requests(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, counts: Counts) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                connections.spawn(relay(client, upstream.clone(), counts.clone()));
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Forwards one connection both ways; counts the requests going up.
async fn relay(client: TcpStream, upstream: String, counts: Counts) -> io::Result<()> {
    let server = TcpStream::connect(&upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut parser = RequestParser::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut targets = Vec::new();
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            // Count before forwarding: by the time the caller has its response, the
            // request has been counted.
            parser.feed(&buf[..n], &mut targets);
            if !targets.is_empty() {
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                for target in targets.drain(..) {
                    *counts
                        .entry(target.unwrap_or_else(|| NO_TARGET.to_owned()))
                        .or_default() += 1;
                }
            }
            server_write.write_all(&buf[..n]).await?;
        }
        server_write.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut server_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head up to the empty line.
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping a chunk's data and its CRLF.
    ChunkData(u64),
    /// Reading trailer lines up to the empty line.
    Trailers,
}

/// Finds request boundaries in an HTTP/1.1 request stream.
#[derive(Debug, Default)]
struct RequestParser {
    state: State,
    pending: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl RequestParser {
    /// Consumes `data`; pushes the `X-Amz-Target` (if any) of every request head completed.
    fn feed(&mut self, data: &[u8], heads: &mut Vec<Option<String>>) {
        self.pending.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.pending[pos..];
            match self.state {
                State::Head => {
                    let Some(end) = find(rest, b"\r\n\r\n") else {
                        break;
                    };
                    let (target, next) = parse_head(&rest[..end]);
                    heads.push(target);
                    self.state = next;
                    pos += end + 4;
                }
                State::Body(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = left.min(rest.len() as u64);
                    pos += take as usize;
                    let left = left - take;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), n) => State::Body(n),
                        (_, 0) => State::ChunkSize,
                        (_, n) => State::ChunkData(n),
                    };
                }
                State::ChunkSize => {
                    let Some(end) = find(rest, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&rest[..end]);
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).unwrap_or(0);
                    pos += end + 2;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size + 2)
                    };
                }
                State::Trailers => {
                    let Some(end) = find(rest, b"\r\n") else {
                        break;
                    };
                    pos += end + 2;
                    if end == 0 {
                        self.state = State::Head;
                    }
                }
            }
        }
        self.pending.drain(..pos);
    }
}

/// The `X-Amz-Target` of a request head and what follows the head.
fn parse_head(head: &[u8]) -> (Option<String>, State) {
    let text = String::from_utf8_lossy(head);
    let mut target = None;
    let mut length = 0u64;
    let mut chunked = false;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("x-amz-target") {
            target = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let next = if chunked {
        State::ChunkSize
    } else if length > 0 {
        State::Body(length)
    } else {
        State::Head
    };
    (target, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads_of(stream: &[u8], step: usize) -> Vec<Option<String>> {
        let mut parser = RequestParser::default();
        let mut heads = Vec::new();
        for piece in stream.chunks(step) {
            parser.feed(piece, &mut heads);
        }
        assert_eq!(parser.state, State::Head);
        assert!(parser.pending.is_empty());
        heads
    }

    #[test]
    fn parser_finds_every_request_on_a_kept_alive_connection() {
        let body = br#"{"KeyId":"k","Note":"X-Amz-Target: TrentService.Fake\r\n\r\n"}"#;
        let mut stream = Vec::new();
        stream.extend_from_slice(
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.GenerateDataKey\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        stream.extend_from_slice(body);
        stream.extend_from_slice(
            b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n0\r\nx-amz-checksum: abc\r\n\r\n",
        );
        stream.extend_from_slice(b"GET /moto-api/ HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.extend_from_slice(
            b"POST / HTTP/1.1\r\nx-amz-target: TrentService.Decrypt\r\ncontent-length: 2\r\n\r\n{}",
        );
        let expected = vec![
            Some("TrentService.GenerateDataKey".to_owned()),
            None,
            None,
            Some("TrentService.Decrypt".to_owned()),
        ];
        for step in [1, 2, 7, 64, stream.len()] {
            assert_eq!(heads_of(&stream, step), expected, "step {step}");
        }
    }
}
