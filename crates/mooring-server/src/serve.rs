//! `mooring serve`: opens the store, starts the control loop and the HTTP server, and
//! shuts down gracefully on SIGTERM/SIGINT (stop taking work, let running operations
//! finish, exit). After a crash the next start marks unfinished operations as
//! interrupted and reconciles every app.

use crate::api::ServerState;
use crate::config::{self, Config};
use crate::controller::Controller;
use crate::metrics::Metrics;
use crate::router::router;
use mooring_store::{now_ms, Store};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Opens (creating if needed) the store in a configuration's data directory.
pub fn open_store(config: &Config) -> Result<Store, String> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    Store::open(dir.join(mooring_store::FILE_NAME)).map_err(|e| e.to_string())
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(config_path: &Path) -> Result<(), String> {
    let config = config::load(config_path).map_err(|e| format!("invalid configuration: {e}"))?;
    let store = Arc::new(open_store(&config)?);
    let interrupted = store
        .interrupt_unfinished(now_ms())
        .map_err(|e| e.to_string())?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "operations were interrupted by the last stop; every app is reconciled now"
        );
    }
    let listen = config.server.listen;
    let http_limits = config.server.http;
    let retention = config.server.retention;
    let metrics = Arc::new(Metrics::default());
    let (stream, _) = tokio::sync::broadcast::channel(1024);
    let controller = Controller::new(config, store.clone(), metrics.clone(), stream.clone())
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let state = Arc::new(ServerState::new(
        store.clone(),
        metrics,
        stream,
        controller.clone(),
        config_path.to_path_buf(),
    ));
    controller.start();
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!(%listen, apps = controller.app_names().len(), "mooring is serving");

    let pruner = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(600)).await;
                if let Err(e) = store.prune(retention.operations_per_app, retention.events) {
                    tracing::warn!(error = %e, "pruning history failed");
                }
            }
        })
    };
    let app = router(state.clone());
    let shutdown_state = state.clone();
    crate::http::serve(listener, app, http_limits, async move {
        wait_for_signal().await;
        tracing::info!("stopping: no new work; waiting for running operations");
        shutdown_state.ready.store(false, Ordering::Relaxed);
        let controller = shutdown_state.controller.read().await.clone();
        controller.stop().await;
    })
    .await;
    pruner.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
