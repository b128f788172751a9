//! # breachdex-server
//!
//! The breachdex HTTP API (SPEC §11, and §14's watched identities) over a local index: API keys with plans, rate
//! limits and monthly quotas, IP and function allow-lists, per-key asset policies, and
//! a request log that keeps metadata only. `breachdex serve` only parses flags and
//! calls [`AppState::open`], [`bind`] and [`serve`]; tests build the same app.
//!
//! Module map:
//! - [`engine`]: every call into the breachdex library (index, checks, records, catalog);
//! - [`state`]: configuration, [`AppState`], keys in memory with their counters;
//! - [`routes`]: the router, the key check, the request-log layer, the handlers;
//! - [`passwords`]: `GET /range/{prefix}`, the Pwned Passwords range API (SPEC §12);
//! - [`client_limit`]: requests per minute per client address;
//! - [`hibp`]: the Have I Been Pwned v3 routes (SPEC §12) with HIBP's conventions;
//! - [`identities`]: watched identities (SPEC §14), scoped to the key's organization;
//! - [`webhooks`]: webhooks (SPEC §14), their signed payloads, delivery queue and dispatcher;
//! - [`monitor`]: `breach.detected`: new generations' change feed against watched identities;
//! - [`ssrf`]: the policy of webhook and callback URLs (no private or metadata addresses);
//! - [`error`]: [`ApiError`] and the wrapped extractors;
//! - [`scans`]: scans, findings and risk scores (SPEC §14), and the background scan worker;
//! - [`scan_store`]: their tables in the state database;
//! - [`store`]: the state database behind [`store::StateStore`] (SQLite by default);
//! - [`keys`]: plans, key generation, `keys create|list|revoke` and `logs`;
//! - [`tls`]: rustls configuration for `--tls-cert`/`--tls-key`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use breachdex_server::{AppState, ServerConfig, bind, serve};
//! use tokio_util::sync::CancellationToken;
//! let state = AppState::open(ServerConfig::new("sample-index", "server-data"))?;
//! let listener = bind("127.0.0.1:8080".parse()?).await?;
//! serve(listener, state, None, CancellationToken::new()).await?;
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod client_limit;
pub mod engine;
pub mod error;
pub mod hibp;
pub mod identities;
pub mod keys;
pub mod monitor;
pub mod passwords;
pub mod routes;
pub mod scan_store;
pub mod scans;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod tls;
pub mod webhooks;

pub use error::ApiError;
pub use routes::{BODY_LIMIT, router};
pub use state::{AppState, ServerConfig, StartError};
pub use tokio_util::sync::CancellationToken;

use axum::extract::ConnectInfo;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use store::LogRow;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows written per transaction at most.
const LOG_BATCH: usize = 4096;

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// A future that completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves the API on `listener` (over TLS when `tls` is given) until `shutdown` is
/// cancelled; then stops accepting, lets requests in flight finish (up to
/// [`DRAIN_TIMEOUT`]), stops the background tasks and writes the last usage and log rows.
///
/// Background tasks: the writer of usage and the request log (every
/// `flush_interval`, and every `prune_interval` deletion of rows older than the retention), and the key
/// refresher (every `refresh_interval`: a key revoked by `breachdex keys revoke` is
/// refused from then on; a key created meanwhile is found on its first use, or within
/// one interval if that very key had been tried before it existed), and the webhook
/// dispatcher ([`webhooks::spawn_dispatcher`]), and the change-feed monitor
/// ([`monitor::spawn_monitor`]). The index watcher follows the
/// published path on its own thread.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<tls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tracker = TaskTracker::new();
    let background = CancellationToken::new();
    spawn_writer(&tracker, &state, background.clone());
    spawn_key_refresher(&tracker, &state, background.clone());
    scans::spawn_workers(&tracker, &state, background.clone());
    webhooks::spawn_dispatcher(&tracker, &state, background.clone());
    monitor::spawn_monitor(&tracker, &state, background.clone());

    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // A client gets 30 s to send its request head (slow-header clients cannot pin
    // connections forever).
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                use tower::Service;
                app.call(req.map(axum::body::Body::new)).await
            }
        });
        let http = http.clone();
        match &tls {
            None => {
                let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else { return };
                    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the drain timeout; closing");
    }
    background.cancel();
    tracker.close();
    tracker.wait().await;
    state.0.engine.stop_watching();
    Ok(())
}

fn spawn_writer(tracker: &TaskTracker, state: &AppState, stop: CancellationToken) {
    let Some(mut rx) = state.0.log_rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let state = state.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(state.config().flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let prune_every = state.config().prune_interval;
        let mut last_prune: Option<tokio::time::Instant> = None;
        let mut rows: Vec<LogRow> = Vec::with_capacity(LOG_BATCH);
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            loop {
                while rows.len() < LOG_BATCH {
                    match rx.try_recv() {
                        Ok(row) => rows.push(row),
                        Err(_) => break,
                    }
                }
                let usage = state.take_usage();
                let prune = last_prune.is_none_or(|t| t.elapsed() >= prune_every);
                if prune {
                    last_prune = Some(tokio::time::Instant::now());
                }
                let batch = std::mem::take(&mut rows);
                let full = batch.len() >= LOG_BATCH;
                let inner = state.clone();
                let written = batch.len() as u64;
                let retention_ms = i64::from(state.config().log_retention_days) * 86_400_000;
                let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
                    let store = &inner.0.store;
                    store.write_batch(&usage, &batch).map_err(|e| e.to_string())?;
                    if prune {
                        store.prune_logs(engine::now_unix_millis() - retention_ms).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
                .await;
                match result {
                    Ok(Ok(())) => {
                        state.0.metrics.log_rows_written.fetch_add(written, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        state.0.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "state write failed");
                    }
                    Err(e) => {
                        state.0.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "state writer task failed");
                    }
                }
                if !full {
                    break;
                }
            }
            if stopping {
                return;
            }
        }
    });
}

fn spawn_key_refresher(tracker: &TaskTracker, state: &AppState, stop: CancellationToken) {
    spawn_ticker(
        tracker,
        state,
        stop,
        "the published index could not be opened; still serving the previous build",
        |state| {
            if let Err(e) = state.refresh_keys_blocking() {
                tracing::warn!(error = %e, "key refresh failed");
            }
            state.0.engine.watch_error()
        },
    );
}

/// Runs `work` on a blocking thread every `refresh_interval` until `stop`. `work` returns
/// the error it wants reported: logged with `message` once per distinct error, not on
/// every tick.
pub(crate) fn spawn_ticker(
    tracker: &TaskTracker,
    state: &AppState,
    stop: CancellationToken,
    message: &'static str,
    work: fn(&AppState) -> Option<String>,
) {
    let state = state.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(state.config().refresh_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported: Option<String> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let inner = state.clone();
            let error = match tokio::task::spawn_blocking(move || work(&inner)).await {
                Ok(error) => error,
                Err(e) => Some(e.to_string()),
            };
            if error != reported {
                if let Some(e) = &error {
                    tracing::warn!(error = %e, "{message}");
                }
                reported = error;
            }
        }
    });
}
