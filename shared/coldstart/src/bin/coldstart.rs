//! `coldstart`: the `make bench` cold-start benchmark.
//!
//! Design target: a function's init is within 1.5x (`--target`) of a
//! hello-world `lambda_runtime` binary (`hello-lambda`, the baseline).
//!
//! # Usage
//!
//! ```text
//! coldstart --baseline target/release/hello-lambda \
//!     --function forms=target/release/forms:events/forms.json \
//!     [--function NAME=BINARY:EVENT ...] [--env K=V ...] \
//!     [--runs 20] [--warmup 1] [--target 1.5] [--timeout 10] \
//!     [--json out.json] [--log children.log] [--enforce]
//! ```
//!
//! # Method
//!
//! For every run of every binary a fresh, minimal Lambda Runtime API emulator
//! is bound on `127.0.0.1:0` (axum, HTTP/1.1, `TCP_NODELAY`). It serves the
//! paths `lambda_runtime` uses:
//!
//! * `GET  /2018-06-01/runtime/invocation/next`: the first call returns the
//!   event with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`; later
//!   calls are parked (as in a frozen sandbox) until the run is torn down;
//! * `POST /2018-06-01/runtime/invocation/{id}/response`;
//! * `POST /2018-06-01/runtime/invocation/{id}/error`;
//! * `POST /2018-06-01/runtime/init/error`;
//! * anything else is recorded as a failure (the runtime used a path the
//!   emulator does not know).
//!
//! The binary is then spawned with a cleared environment plus the variables
//! Lambda sets (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`,
//! `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`,
//! `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, log group/stream, `AWS_REGION=
//! ap-northeast-1`, dummy credentials, `PATH`, `LANG`, `TZ`, ...) and any
//! `--env K=V`. Two numbers are taken:
//!
//! * **init** = from just before `spawn()` (fork + exec included) to the
//!   moment the first `GET .../invocation/next` request reaches the emulator;
//! * **first invoke** = from handing out the event (response built) to the
//!   moment the `.../response` POST reaches the emulator.
//!
//! The process is then killed (`SIGKILL`) and reaped. A run fails when the
//! function posts an invocation or init error, exits early, calls an unknown
//! path, answers a different request id, or does not finish within
//! `--timeout` seconds; failed runs are reported, excluded from the
//! statistics, marked `FAIL` and make the exit status 1.
//!
//! Runs alternate between binaries (baseline, f1, f2, baseline, f1, ...) so
//! machine noise (other builds on a shared box, CPU frequency) hits all of
//! them alike, and `--warmup` rounds (default 1) are run first and discarded so
//! that every binary is measured with its file already in the page cache. The
//! bench itself runs on a single-threaded tokio runtime to leave the other
//! cores to the child. Children's stdout/stderr go to `--log FILE` (one header
//! line per run) or to `/dev/null`.
//!
//! The table shows, per binary, the successful runs, median and p90 (linear
//! interpolation) of init and first invoke in milliseconds, the ratio of its
//! init median to the baseline's init median and `PASS`/`OVER` against
//! `--target`. `--json FILE` writes the same data plus the raw samples.
//! Exit status: 0 ok, 1 a run failed (or the baseline has no sample),
//! 2 some binary is `OVER` and `--enforce` was given.
//!
//! # What this "init" is, compared with real Lambda
//!
//! Real Lambda init also includes starting a Firecracker microVM, downloading
//! and unpacking the deployment zip, and the Lambda service's own scheduling;
//! none of that happens here, and all of it is the same for every function of a
//! given size, outside our control. What remains is exactly what our code
//! controls: process start (exec, dynamic loading, relocations of *our* binary,
//! whose size matters), Rust/tokio runtime set-up and every piece of static
//! init we do before polling for the first event (config parsing, SDK client
//! construction, key loading, ...). Comparing that against the same
//! measurement of a hello-world `lambda_runtime` binary, built with the same
//! profile on the same machine, gives a ratio that is meaningful even though the
//! absolute milliseconds are much smaller than Lambda's reported `Init
//! Duration`. Absolute numbers depend on the machine; only the ratio is gated.
//! Note also that nothing here throttles the CPU the way a 128 MB Lambda does
//! (a fraction of a vCPU), so CPU-heavy init is under-weighted in absolute terms
//! but still shows up in the ratio.

use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path as FsPath, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use clap::Parser;
use madoguchi_coldstart::{FunctionSpec, Summary, parse_env, parse_function_spec};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

const REGION: &str = "ap-northeast-1";
const ACCOUNT: &str = "000000000000";
/// Largest response/error body accepted (Lambda's synchronous payload limit).
const MAX_BODY: usize = 6 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "coldstart",
    about = "Cold-start bench: init and first invocation of Lambda binaries against a hello-world lambda_runtime baseline"
)]
struct Args {
    /// The baseline binary (hello-lambda).
    #[arg(long, value_name = "PATH")]
    baseline: PathBuf,
    /// Event JSON file for the baseline (default: `{}`).
    #[arg(long, value_name = "PATH")]
    baseline_event: Option<PathBuf>,
    /// A binary to measure, NAME=BINARY:EVENT (EVENT is a JSON file; without it
    /// the event is `{}`). Repeatable.
    #[arg(long = "function", value_name = "NAME=BINARY:EVENT", value_parser = parse_function_spec)]
    functions: Vec<FunctionSpec>,
    /// Extra environment variable for every child (including the baseline). Repeatable.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    extra_env: Vec<(String, String)>,
    /// Measured runs per binary.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Discarded warm-up runs per binary (page cache, first-exec effects).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Maximum allowed ratio of a function's init median to the baseline's.
    #[arg(long, default_value_t = 1.5)]
    target: f64,
    /// Per-run timeout in seconds (spawn to response).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Append the children's stdout/stderr to this file (default: discarded).
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Exit with status 2 when a binary is OVER the target.
    #[arg(long)]
    enforce: bool,
}

/// One binary under test.
struct Target {
    name: String,
    binary: PathBuf,
    event_path: Option<PathBuf>,
    event: Bytes,
    is_baseline: bool,
    init_ms: Vec<f64>,
    invoke_ms: Vec<f64>,
    failures: Vec<(String, String)>,
}

impl Target {
    fn new(
        name: String,
        binary: PathBuf,
        event_path: Option<PathBuf>,
        is_baseline: bool,
    ) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(&binary)
            .with_context(|| format!("{name}: binary {}", binary.display()))?;
        if !meta.is_file() {
            bail!("{name}: {} is not a file", binary.display());
        }
        let event = match &event_path {
            Some(p) => {
                let raw = std::fs::read(p)
                    .with_context(|| format!("{name}: event file {}", p.display()))?;
                serde_json::from_slice::<Value>(&raw)
                    .with_context(|| format!("{name}: event file {} is not JSON", p.display()))?;
                Bytes::from(raw)
            }
            None => Bytes::from_static(b"{}"),
        };
        Ok(Self {
            name,
            binary,
            event_path,
            event,
            is_baseline,
            init_ms: Vec::new(),
            invoke_ms: Vec::new(),
            failures: Vec::new(),
        })
    }
}

/// What the emulator saw, in order.
#[derive(Debug)]
enum Signal {
    Next {
        arrived: Instant,
        handed_out: Instant,
    },
    Response {
        at: Instant,
        request_id: String,
    },
    InvokeError {
        request_id: String,
        error_type: String,
        body: String,
    },
    InitError {
        error_type: String,
        body: String,
    },
    Unexpected {
        method: Method,
        path: String,
    },
}

struct Emulator {
    tx: mpsc::UnboundedSender<Signal>,
    event: Bytes,
    request_id: String,
    function_arn: String,
    trace_id: String,
    timeout: Duration,
    served: AtomicBool,
    shutdown: watch::Receiver<bool>,
}

type Emu = State<Arc<Emulator>>;

async fn next_invocation(State(emu): Emu) -> Response {
    let arrived = Instant::now();
    if emu.served.swap(true, Ordering::SeqCst) {
        // One invocation per process: park the poll, as a frozen sandbox
        // would, until the run is torn down.
        let mut shutdown = emu.shutdown.clone();
        let _ = shutdown.wait_for(|stop| *stop).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let deadline_ms = (SystemTime::now() + emu.timeout)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", &emu.request_id)
        .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", &emu.function_arn)
        .header("Lambda-Runtime-Trace-Id", &emu.trace_id)
        .body(Body::from(emu.event.clone()))
        .expect("static response parts are valid");
    let handed_out = Instant::now();
    let _ = emu.tx.send(Signal::Next {
        arrived,
        handed_out,
    });
    response
}

async fn invocation_response(
    State(emu): Emu,
    Path(request_id): Path<String>,
    req: Request,
) -> impl IntoResponse {
    let at = Instant::now();
    // Drain the body so the client sees a complete exchange.
    let _ = to_bytes(req.into_body(), MAX_BODY).await;
    let _ = emu.tx.send(Signal::Response { at, request_id });
    accepted()
}

async fn invocation_error(
    State(emu): Emu,
    Path(request_id): Path<String>,
    req: Request,
) -> impl IntoResponse {
    let (error_type, body) = read_error(req).await;
    let _ = emu.tx.send(Signal::InvokeError {
        request_id,
        error_type,
        body,
    });
    accepted()
}

async fn init_error(State(emu): Emu, req: Request) -> impl IntoResponse {
    let (error_type, body) = read_error(req).await;
    let _ = emu.tx.send(Signal::InitError { error_type, body });
    accepted()
}

async fn unexpected(State(emu): Emu, req: Request) -> impl IntoResponse {
    let _ = emu.tx.send(Signal::Unexpected {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
    });
    StatusCode::NOT_FOUND
}

fn accepted() -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
}

async fn read_error(req: Request) -> (String, String) {
    let error_type = req
        .headers()
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let body = to_bytes(req.into_body(), MAX_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    (error_type, truncate(&body, 300))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Settings shared by all runs.
struct RunSettings {
    timeout: Duration,
    extra_env: Vec<(String, String)>,
    log: Option<File>,
}

/// One cold start of `target`: returns (init ms, first invoke ms).
async fn run_once(
    target: &Target,
    settings: &RunSettings,
    label: &str,
    seq: usize,
) -> anyhow::Result<(f64, f64)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the emulator on 127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let request_id = format!("00000000-c01d-4000-8000-{seq:012x}");
    let emu = Arc::new(Emulator {
        tx,
        event: target.event.clone(),
        request_id: request_id.clone(),
        function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", target.name),
        trace_id: format!("Root=1-00000000-{seq:024x};Parent={seq:016x};Sampled=0"),
        timeout: settings.timeout,
        served: AtomicBool::new(false),
        shutdown: shutdown_rx.clone(),
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(unexpected)
        .with_state(emu);
    let mut server_stop = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    });

    let mut cmd = tokio::process::Command::new(&target.binary);
    cmd.env_clear()
        .envs(lambda_env(target, port, label))
        .envs(settings.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match &settings.log {
        Some(log) => {
            let mut log = log.try_clone()?;
            writeln!(
                log,
                "===== coldstart: {} {label} (127.0.0.1:{port}) =====",
                target.name
            )?;
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }

    let spawned_at = Instant::now();
    let outcome = match cmd.spawn() {
        Ok(mut child) => {
            let outcome = drive(
                &mut rx,
                &mut child,
                spawned_at,
                settings.timeout,
                &request_id,
            )
            .await;
            let _ = child.start_kill();
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                eprintln!(
                    "coldstart: {} {label}: child did not exit after SIGKILL",
                    target.name
                );
            }
            outcome
        }
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("spawning {}", target.binary.display())))
        }
    };

    let _ = shutdown_tx.send(true);
    let abort = server.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .is_err()
    {
        abort.abort();
    }
    outcome
}

/// Waits for the first `/next`, then for the response; fails on anything else.
async fn drive(
    rx: &mut mpsc::UnboundedReceiver<Signal>,
    child: &mut tokio::process::Child,
    spawned_at: Instant,
    timeout: Duration,
    request_id: &str,
) -> anyhow::Result<(f64, f64)> {
    let deadline = tokio::time::Instant::from_std(spawned_at + timeout);
    let mut first_next: Option<(Instant, Instant)> = None;
    loop {
        let phase = if first_next.is_some() {
            "the invocation response"
        } else {
            "the first /next poll"
        };
        tokio::select! {
            biased;
            signal = rx.recv() => match signal {
                None => bail!("emulator stopped unexpectedly"),
                Some(Signal::Next { arrived, handed_out }) => {
                    first_next = Some((arrived, handed_out));
                }
                Some(Signal::Response { at, request_id: id }) => {
                    let Some((arrived, handed_out)) = first_next else {
                        bail!("response for {id} before any /next poll");
                    };
                    if id != request_id {
                        bail!("response for unknown request id {id:?}");
                    }
                    return Ok((ms(arrived - spawned_at), ms(at - handed_out)));
                }
                Some(Signal::InvokeError { request_id: id, error_type, body }) => {
                    bail!("function posted an invocation error for {id} (type {error_type}): {body}");
                }
                Some(Signal::InitError { error_type, body }) => {
                    bail!("function posted an init error (type {error_type}): {body}");
                }
                Some(Signal::Unexpected { method, path }) => {
                    bail!("unexpected Runtime API call {method} {path}");
                }
            },
            status = child.wait() => {
                let status = status.context("waiting for the child")?;
                bail!("process exited ({status}) before {phase}");
            }
            _ = tokio::time::sleep_until(deadline) => {
                bail!("timed out after {:.1} s waiting for {phase}", timeout.as_secs_f64());
            }
        }
    }
}

/// The environment Lambda gives a `provided.al2023` function (trimmed to what
/// matters), with dummy credentials.
fn lambda_env(target: &Target, port: u16, label: &str) -> Vec<(String, String)> {
    let task_root = target
        .binary
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(FsPath::new("."))
        .display()
        .to_string();
    let stream = format!("2025/01/01/[$LATEST]coldstart-{}", label.replace(' ', "-"));
    [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", target.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", target.name),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", "AKIACOLDSTARTTEST000".into()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-test-secret-key".into()),
        ("AWS_SESSION_TOKEN", "coldstart-test-session-token".into()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("_HANDLER", "bootstrap".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Per-binary verdict.
fn verdict(t: &Target, ratio: Option<f64>, target_ratio: f64) -> &'static str {
    if !t.failures.is_empty() {
        "FAIL"
    } else if t.is_baseline {
        "BASE"
    } else {
        match ratio {
            Some(r) if r <= target_ratio => "PASS",
            Some(_) => "OVER",
            None => "n/a",
        }
    }
}

fn summary_json(samples: &[f64]) -> Value {
    match Summary::of(samples) {
        Some(s) => json!({
            "median": s.median,
            "p90": s.p90,
            "min": s.min,
            "max": s.max,
            "samples": samples,
        }),
        None => json!({ "samples": samples }),
    }
}

fn fmt_opt(v: Option<f64>, width: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.2}"),
        None => format!("{:>width$}", "-"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match real_main().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coldstart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn real_main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }

    let mut targets = vec![Target::new(
        "baseline".into(),
        args.baseline.clone(),
        args.baseline_event.clone(),
        true,
    )?];
    for f in &args.functions {
        if targets.iter().any(|t| t.name == f.name) {
            bail!("duplicate binary name {:?}", f.name);
        }
        targets.push(Target::new(
            f.name.clone(),
            f.binary.clone(),
            f.event.clone(),
            false,
        )?);
    }

    let log = match &args.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening log file {}", p.display()))?,
        ),
        None => None,
    };
    let settings = RunSettings {
        timeout: Duration::from_secs_f64(args.timeout),
        extra_env: args.extra_env.clone(),
        log,
    };

    let rounds = args.warmup + args.runs;
    let mut seq = 0usize;
    for round in 0..rounds {
        let warmup = round < args.warmup;
        let label = if warmup {
            format!("warmup {}", round + 1)
        } else {
            format!("run {}", round - args.warmup + 1)
        };
        let mut line = format!(
            "coldstart: {label:>10}/{}:",
            if warmup { args.warmup } else { args.runs }
        );
        for t in &mut targets {
            seq += 1;
            match run_once(t, &settings, &label, seq).await {
                Ok((init, invoke)) => {
                    line.push_str(&format!(" {} {init:.2}ms", t.name));
                    if !warmup {
                        t.init_ms.push(init);
                        t.invoke_ms.push(invoke);
                    }
                }
                Err(e) => {
                    line.push_str(&format!(" {} FAILED", t.name));
                    eprintln!("coldstart: {} {label}: {e:#}", t.name);
                    t.failures.push((label.clone(), format!("{e:#}")));
                }
            }
        }
        eprintln!("{line}");
    }

    let baseline_median = Summary::of(&targets[0].init_ms).map(|s| s.median);
    let name_w = targets
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let runs_w = 2 * args.runs.to_string().len() + 1;
    println!();
    println!(
        "{:<name_w$}  {:>runs_w$}  {:>9}  {:>9}  {:>11}  {:>11}  {:>6}  result (target {:.2}x)",
        "binary",
        "runs",
        "init med",
        "init p90",
        "1st-inv med",
        "1st-inv p90",
        "ratio",
        args.target,
    );
    let mut any_failure = baseline_median.is_none();
    let mut any_over = false;
    let mut rows = Vec::new();
    for t in &targets {
        let init = Summary::of(&t.init_ms);
        let invoke = Summary::of(&t.invoke_ms);
        let ratio = match (init, baseline_median) {
            (Some(s), Some(b)) if b > 0.0 => Some(s.median / b),
            _ => None,
        };
        let result = verdict(t, ratio, args.target);
        any_failure |= !t.failures.is_empty();
        any_over |= result == "OVER";
        let runs = format!("{}/{}", t.init_ms.len(), args.runs);
        println!(
            "{:<name_w$}  {runs:>runs_w$}  {}  {}  {}  {}  {}  {result}",
            t.name,
            fmt_opt(init.map(|s| s.median), 9),
            fmt_opt(init.map(|s| s.p90), 9),
            fmt_opt(invoke.map(|s| s.median), 11),
            fmt_opt(invoke.map(|s| s.p90), 11),
            fmt_opt(ratio, 6),
        );
        rows.push(json!({
            "name": t.name,
            "binary": t.binary.display().to_string(),
            "event": t.event_path.as_ref().map(|p| p.display().to_string()),
            "baseline": t.is_baseline,
            "runs_ok": t.init_ms.len(),
            "runs": args.runs,
            "init_ms": summary_json(&t.init_ms),
            "first_invoke_ms": summary_json(&t.invoke_ms),
            "ratio": ratio,
            "result": result,
            "failures": t.failures.iter().map(|(run, reason)| json!({ "run": run, "reason": reason })).collect::<Vec<_>>(),
        }));
    }
    for t in targets.iter().filter(|t| !t.failures.is_empty()) {
        println!("\n{} failed {} run(s):", t.name, t.failures.len());
        for (run, reason) in &t.failures {
            println!("  {run}: {reason}");
        }
    }
    if any_failure && args.log.is_none() {
        println!("(children's output was discarded; rerun with --log FILE to see it)");
    }

    if let Some(path) = &args.json {
        let doc = json!({
            "target_ratio": args.target,
            "runs": args.runs,
            "warmup": args.warmup,
            "timeout_ms": ms(settings.timeout),
            "baseline_init_median_ms": baseline_median,
            "extra_env": args.extra_env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "binaries": rows,
            "ok": !any_failure,
            "all_within_target": !any_over,
        });
        let mut out = serde_json::to_vec_pretty(&doc)?;
        out.push(b'\n');
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }

    Ok(if any_failure {
        ExitCode::from(1)
    } else if any_over && args.enforce {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
