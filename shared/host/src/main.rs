//! `madoguchi`: the local host and developer commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use madoguchi_domain::tenant::TenantId;
use madoguchi_host::{BackendKind, HostConfig};
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "madoguchi",
    version,
    about = "Madoguchi: the local host and developer tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Citizen,
    Staff,
    Admin,
}

#[derive(Subcommand)]
enum Command {
    /// Run every function in one process.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "MADOGUCHI_ADDR")]
        addr: SocketAddr,
        #[arg(long, default_value = "./var", env = "MADOGUCHI_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(
            long,
            value_enum,
            default_value = "embedded",
            env = "MADOGUCHI_BACKEND"
        )]
        backend: BackendKind,
        /// AWS endpoint override, e.g. a moto server on loopback (with `--backend aws`).
        #[arg(long, env = "MADOGUCHI_AWS_ENDPOINT")]
        endpoint: Option<String>,
        /// 全国地方公共団体コード of the municipality this host serves.
        #[arg(long, default_value = "272060", env = "MADOGUCHI_TENANT")]
        tenant: String,
        /// URL clients use to reach this host (for presigned links).
        #[arg(long, env = "MADOGUCHI_PUBLIC_URL")]
        public_url: Option<String>,
        /// Name prefix of the resources created on a local AWS endpoint (`--endpoint`).
        #[arg(long, default_value = "madoguchi", env = "MADOGUCHI_AWS_PREFIX")]
        aws_prefix: String,
        /// Inbox scan interval in milliseconds.
        #[arg(long, default_value_t = 500)]
        inbox_interval_ms: u64,
        /// How often the outbound linkage runs without a nudge, in milliseconds.
        #[arg(long, default_value_t = 60_000, env = "MADOGUCHI_OUTBOUND_INTERVAL_MS")]
        outbound_interval_ms: u64,
        /// How often payments are reconciled and unpaid ones past their time cancelled, in
        /// milliseconds.
        #[arg(long, default_value_t = 60_000, env = "MADOGUCHI_PAYMENTS_INTERVAL_MS")]
        payments_interval_ms: u64,
    },
    /// Mint a token from the development issuer, for trying the API locally.
    DevToken {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Department (repeatable).
        #[arg(long = "dept")]
        depts: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// Mail address claim (receipt mail goes there).
        #[arg(long)]
        email: Option<String>,
        #[arg(long, default_value = "./var", env = "MADOGUCHI_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Print the OpenAPI document of every function.
    Openapi,
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check a tenant's audit chain in the table and against its mirror copy.
    ///
    /// Exit status: 0 when the chain is intact, 1 when there are findings, 2 on error.
    Verify {
        /// 全国地方公共団体コード of the tenant whose chain to check.
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "./var", env = "MADOGUCHI_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(
            long,
            value_enum,
            default_value = "embedded",
            env = "MADOGUCHI_BACKEND"
        )]
        backend: BackendKind,
        /// AWS endpoint override, e.g. a moto server on loopback (with `--backend aws`).
        #[arg(long, env = "MADOGUCHI_AWS_ENDPOINT")]
        endpoint: Option<String>,
        /// Name prefix of the resources on a local AWS endpoint (`--endpoint`).
        #[arg(long, default_value = "madoguchi", env = "MADOGUCHI_AWS_PREFIX")]
        aws_prefix: String,
        /// Print the report as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status of `audit verify` when the chain has findings.
const EXIT_FINDINGS: i32 = 1;
/// Exit status of `audit verify` when it could not check.
const EXIT_ERROR: i32 = 2;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            addr,
            data_dir,
            backend,
            endpoint,
            tenant,
            public_url,
            inbox_interval_ms,
            outbound_interval_ms,
            payments_interval_ms,
            aws_prefix,
        } => {
            madoguchi_http::logging::init_with_time();
            let tenant = TenantId::parse(&tenant).map_err(|_| {
                anyhow::anyhow!("--tenant {tenant:?} is not a valid 全国地方公共団体コード")
            })?;
            let config = HostConfig {
                addr,
                data_dir,
                backend,
                endpoint,
                tenant,
                public_url,
                inbox_interval: Duration::from_millis(inbox_interval_ms),
                outbound_interval: Duration::from_millis(outbound_interval_ms),
                payments_interval: Duration::from_millis(payments_interval_ms),
                aws_prefix,
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let stop = CancellationToken::new();
                madoguchi_host::cancel_on_signals(stop.clone());
                madoguchi_host::serve(config, stop).await
            })
        }
        Command::DevToken {
            role,
            tenant,
            sub,
            depts,
            ttl,
            email,
            data_dir,
        } => {
            let tenant = TenantId::parse(&tenant).map_err(|_| {
                anyhow::anyhow!("--tenant {tenant:?} is not a valid 全国地方公共団体コード")
            })?;
            let issuer = DevIssuer::load_or_create(&madoguchi_host::keys_dir(&data_dir))?;
            let token = issuer.mint(&DevTokenRequest {
                sub,
                tenant,
                role: match role {
                    RoleArg::Citizen => Role::Citizen,
                    RoleArg::Staff => Role::Staff,
                    RoleArg::Admin => Role::Admin,
                },
                depts,
                ttl_seconds: ttl,
                now: jiff::Timestamp::now().as_second(),
                email,
            });
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", madoguchi_host::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    tenant,
                    data_dir,
                    backend,
                    endpoint,
                    aws_prefix,
                    json,
                },
        } => {
            let result = tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(audit_verify(
                        &tenant, data_dir, backend, endpoint, aws_prefix,
                    ))
                });
            let code = match result {
                Ok((report, mirrored)) => match print_report(&report, mirrored, json) {
                    Ok(()) if report.ok() => 0,
                    Ok(()) => EXIT_FINDINGS,
                    Err(e) => {
                        eprintln!("madoguchi audit verify: {e:#}");
                        EXIT_ERROR
                    }
                },
                Err(e) => {
                    eprintln!("madoguchi audit verify: {e:#}");
                    EXIT_ERROR
                }
            };
            std::process::exit(code);
        }
    }
}

/// Reads the tenant's chain through the same wiring as `serve`; the bool says whether the
/// mirror was compared too.
async fn audit_verify(
    tenant: &str,
    data_dir: PathBuf,
    backend: BackendKind,
    endpoint: Option<String>,
    aws_prefix: String,
) -> anyhow::Result<(madoguchi_audit::VerifyReport, bool)> {
    let tenant = TenantId::parse(tenant).map_err(|_| {
        anyhow::anyhow!("--tenant {tenant:?} is not a valid 全国地方公共団体コード")
    })?;
    if backend == BackendKind::Embedded {
        // Opening a directory would create an empty store, which verifies as "intact".
        let db = data_dir.join(madoguchi_embedded::DATABASE_FILE);
        anyhow::ensure!(
            db.is_file(),
            "no embedded store at {} (wrong --data-dir?)",
            db.display()
        );
    }
    let config = HostConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir,
        backend,
        endpoint,
        tenant,
        public_url: None,
        inbox_interval: Duration::from_millis(500),
        outbound_interval: Duration::from_secs(60),
        payments_interval: Duration::from_secs(60),
        aws_prefix,
    };
    let wiring = madoguchi_host::wire(&config, "http://127.0.0.1").await?;
    let report = match &wiring.audit_mirror {
        Some(mirror) => {
            madoguchi_audit::verify_with_mirror(wiring.items.as_ref(), mirror.as_ref(), &tenant)
                .await
        }
        None => madoguchi_audit::verify(wiring.items.as_ref(), &tenant).await,
    }?;
    Ok((report, wiring.audit_mirror.is_some()))
}

fn print_report(
    report: &madoguchi_audit::VerifyReport,
    mirrored: bool,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let mirror = if mirrored { ", mirror matches" } else { "" };
    if report.ok() {
        println!(
            "OK: {} records, chain intact{mirror} (tenant {})",
            report.records, report.tenant
        );
    } else {
        println!(
            "FINDINGS: {} in {} records (tenant {}, last seq {})",
            report.findings.len(),
            report.records,
            report.tenant,
            report.last_seq
        );
        for finding in &report.findings {
            println!(
                "seq {}: {} — {}",
                finding.seq,
                finding.kind.as_str().replace('_', " "),
                finding.message
            );
        }
    }
    Ok(())
}
