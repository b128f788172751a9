//! `breachdex serve`, `breachdex keys create|list|revoke` and `breachdex logs`: flags
//! parsed here, everything else done by the breachdex-server crate.

use anyhow::{Context, Result};
use breachdex_server::keys::{self, NewKey};
use breachdex_server::{AppState, CancellationToken, ServerConfig};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `breachdex serve` flags.
#[derive(Args)]
pub struct ServeArgs {
    /// The index directory, or a published symlink (a new build published there is
    /// picked up while serving).
    #[arg(long)]
    index: PathBuf,
    /// File holding the index's secret salt (hashed modes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// Directory of the server's state (keys, usage, request log); created on first start.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Origins allowed by CORS, comma-separated.
    #[arg(long, value_delimiter = ',')]
    cors_origin: Vec<String>,
    /// Days the request log keeps its rows.
    #[arg(long, default_value_t = 30)]
    log_retention_days: u32,
    /// Proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client.
    #[arg(long)]
    trust_proxy: Option<String>,
    /// Serve Prometheus metrics on /metrics (no key).
    #[arg(long)]
    metrics: bool,
    /// Require a key allowed the `passwords` function on /range (otherwise open to all,
    /// as Pwned Passwords is), and limit /range per client address.
    #[arg(long)]
    passwords_require_key: bool,
    /// Requests to /range per minute per client address under --passwords-require-key.
    #[arg(long, default_value_t = breachdex_server::state::DEFAULT_PASSWORDS_RPM, requires = "passwords_require_key")]
    passwords_rpm: u32,
    /// Requests per minute one client address may make to the routes that need no key
    /// (the Have I Been Pwned breach catalog: /api/v3/breaches, breach, latestbreach,
    /// dataclasses).
    #[arg(long, default_value_t = breachdex_server::state::DEFAULT_PUBLIC_RPM,
          value_parser = clap::value_parser!(u32).range(1..))]
    public_rpm: u32,
    /// Scan workers (SPEC §14): scans run one at a time per worker, each on one thread,
    /// while the rest queue; 0 queues scans without running them.
    #[arg(long, default_value_t = 1)]
    scan_workers: usize,
    /// Accept `http` webhook and callback URLs (otherwise `https` only).
    #[arg(long)]
    allow_http_webhooks: bool,
    /// Accept webhook and callback URLs resolving to loopback, private, link-local or
    /// cloud metadata addresses (for tests and closed networks; otherwise refused).
    #[arg(long)]
    allow_private_webhooks: bool,
}

/// `breachdex keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once, with its settings, as one JSON object.
    Create(Box<CreateArgs>),
    /// List keys as JSON lines (never the key itself).
    List {
        /// The state directory.
        #[arg(long)]
        data: PathBuf,
        /// Only this organization's keys.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a key by id (refused by a running server within about a second).
    Revoke {
        /// The state directory.
        #[arg(long)]
        data: PathBuf,
        /// The key id (`key_…`).
        id: String,
    },
}

/// `breachdex keys create` flags.
#[derive(Args)]
pub struct CreateArgs {
    /// The state directory.
    #[arg(long)]
    data: PathBuf,
    /// Organization the key belongs to (at most 10 active keys, 5 creations an hour).
    #[arg(long)]
    org: String,
    /// A label for the key.
    #[arg(long)]
    name: Option<String>,
    /// starter (10/min, 1,000/month), professional (60, 10,000), enterprise (300, unlimited).
    #[arg(long, default_value = "starter")]
    plan: String,
    /// Requests per minute (overrides the plan).
    #[arg(long)]
    rpm: Option<u32>,
    /// Requests per calendar month, UTC (overrides the plan).
    #[arg(long)]
    monthly: Option<u64>,
    /// Last day the key is valid (YYYY-MM-DD, UTC).
    #[arg(long)]
    expires: Option<String>,
    /// Addresses allowed to use the key (IPv4/IPv6 CIDRs, comma-separated).
    #[arg(long)]
    allow_ip: Option<String>,
    /// Functions allowed: health, breach-check, breach-data, catalog, usage, hibp, passwords,
    /// identities.
    #[arg(long)]
    functions: Option<String>,
    /// Assets returned as stored (others are masked), comma-separated.
    #[arg(long)]
    allow: Option<String>,
    /// Assets returned as digests: ASSET=ALG,... (sha1, sha224, sha256, sha384, sha512).
    #[arg(long)]
    hash_assets: Option<String>,
    /// Salt of the output digests (10 to 24 characters).
    #[arg(long)]
    output_salt: Option<String>,
    /// Where the output salt goes: left or right of the value.
    #[arg(long, default_value = "right")]
    salt_position: String,
    /// Active watched identities the organization may have through this key (overrides
    /// the plan's: starter 5, professional 50, enterprise unlimited).
    #[arg(long)]
    identities: Option<u64>,
}

/// `breachdex logs` flags.
#[derive(Args)]
pub struct LogsArgs {
    /// The state directory.
    #[arg(long)]
    data: PathBuf,
    /// Only rows from this day on (YYYY-MM-DD, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Only this organization's rows.
    #[arg(long)]
    org: Option<String>,
}

/// An error of a key command, carrying its JSON code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AdminFailure(#[from] pub keys::AdminError);

fn print_json(value: &serde_json::Value) -> Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{value}")?;
    Ok(())
}

/// Runs a `keys` subcommand.
pub fn cmd_keys(command: KeysCommand) -> Result<ExitCode> {
    let now = breachdex_server::engine::now_unix();
    match command {
        KeysCommand::Create(a) => {
            let store = keys::open_store(&a.data).map_err(AdminFailure)?;
            let new = NewKey {
                org: a.org,
                name: a.name,
                plan: Some(a.plan),
                rpm: a.rpm,
                monthly: a.monthly,
                expires: a.expires,
                allow_ip: a.allow_ip,
                functions: a.functions,
                allow: a.allow,
                hash_assets: a.hash_assets,
                output_salt: a.output_salt,
                salt_position: Some(a.salt_position),
                identities: a.identities,
            };
            print_json(&keys::create_key(&store, &new, now).map_err(AdminFailure)?)?;
        }
        KeysCommand::List { data, org } => {
            let store = keys::open_store(&data).map_err(AdminFailure)?;
            for k in keys::list_keys(&store, org.as_deref(), now).map_err(AdminFailure)? {
                print_json(&k)?;
            }
        }
        KeysCommand::Revoke { data, id } => {
            let store = keys::open_store(&data).map_err(AdminFailure)?;
            print_json(&keys::revoke_key(&store, &id, now).map_err(AdminFailure)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `logs`.
pub fn cmd_logs(a: LogsArgs) -> Result<ExitCode> {
    let store = keys::open_store(&a.data).map_err(AdminFailure)?;
    let mut failed = None;
    keys::logs(&store, a.since.as_deref(), a.org.as_deref(), &mut |row| {
        if failed.is_none() {
            failed = print_json(&row).err();
        }
    })
    .map_err(AdminFailure)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn cmd_serve(a: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let mut config = ServerConfig::new(&a.index, &a.data);
    config.salt_file = a.salt_file;
    config.cors_origins = a.cors_origin;
    config.log_retention_days = a.log_retention_days;
    config.metrics = a.metrics;
    config.passwords_require_key = a.passwords_require_key;
    config.passwords_rpm = a.passwords_rpm;
    config.public_rpm = a.public_rpm;
    config.scan_workers = a.scan_workers;
    config.webhook_policy = breachdex_server::ssrf::UrlPolicy {
        allow_http: a.allow_http_webhooks,
        allow_private: a.allow_private_webhooks,
    };
    if let Some(list) = &a.trust_proxy {
        config.trust_proxy = keys::parse_cidrs(list).map_err(|m| anyhow::anyhow!("--trust-proxy: {m}"))?;
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(breachdex_server::tls::load(cert, key)?),
        _ => None,
    };
    let state = AppState::open(config).context("cannot start the server")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener =
            breachdex_server::bind(a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let bound = listener.local_addr()?;
        eprintln!("breachdex: serving {} on {scheme}://{bound}", a.index.display());
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            breachdex_server::shutdown_signal().await;
            eprintln!("breachdex: shutting down (finishing requests in flight, writing state)");
            trigger.cancel();
        });
        breachdex_server::serve(listener, state, tls, shutdown).await?;
        eprintln!("breachdex: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
