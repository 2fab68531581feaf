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
}

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
    }
}
