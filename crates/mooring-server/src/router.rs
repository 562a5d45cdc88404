//! The router: the JSON API's handlers (`api`), the web UI's pages (`ui`), behind the
//! authorization middleware (`auth`), a body limit and the security headers — the
//! routes [`ROUTES`](crate::routes::ROUTES) lists, no other.

use crate::api::{self, ServerState};
use crate::hooks::MAX_BODY;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The router for `state`.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/hooks/{provider}", post(api::webhook))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/apps", get(api::list_apps))
        .route("/api/v1/apps/{name}", get(api::get_app))
        .route("/api/v1/apps/{name}/diff", get(api::diff))
        .route("/api/v1/apps/{name}/sync", post(api::sync))
        .route("/api/v1/apps/{name}/rollback", post(api::rollback))
        .route("/api/v1/apps/{name}/unpin", post(api::unpin))
        .route("/api/v1/apps/{name}/refresh", post(api::refresh))
        .route("/api/v1/apps/{name}/operations", get(api::app_operations))
        .route(
            "/api/v1/apps/{name}/backups",
            get(api::app_backups).post(api::create_backup),
        )
        .route(
            "/api/v1/apps/{name}/backups/{id}/restore",
            post(api::restore_backup),
        )
        .route(
            "/api/v1/apps/{name}/backups/{id}/verify",
            post(api::verify_backup),
        )
        .route("/api/v1/apps/{name}/logs", get(crate::logs::app_logs))
        .route("/api/v1/operations/{id}", get(api::operation))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/stream", get(api::stream))
        .route(
            "/api/v1/tokens",
            get(api::list_tokens).post(api::create_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(api::revoke_token),
        )
        .route("/api/v1/reload", post(api::reload))
        .route("/api/v1/hosts", get(api::hosts))
        .route("/api/v1/hosts/{name}/accept", post(api::accept_host))
        .route("/api/v1/apps/{name}/pin", post(api::pin))
        .merge(crate::ui::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(crate::headers::security_headers))
        .with_state(state)
}
