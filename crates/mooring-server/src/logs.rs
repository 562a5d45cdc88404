//! `GET /api/v1/apps/{name}/logs`: the logs of an app's containers as plain text, one
//! `SERVICE | TIMESTAMP LINE` per line, streamed from the Engine as the client reads
//! (`follow=true` keeps it open for new lines). Viewer role. Nothing is buffered beyond
//! the chunk in hand: a client that stops reading stops the Engine's stream, and one
//! that goes away ends it.

use crate::api::{bad, controller, ApiResult, St};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use serde::Deserialize;

/// Lines given when the request does not say.
const DEFAULT_TAIL: usize = 200;

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    /// One service (default: all of the app's).
    service: Option<String>,
    /// The last N lines of each container (default 200, at most 10,000).
    tail: Option<usize>,
    /// Keep the response open and send new lines as they are written.
    #[serde(default)]
    follow: bool,
}

pub(crate) async fn app_logs(
    axum::extract::State(state): St,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult {
    let c = controller(&state).await;
    let (provider, sources) = c.log_sources(&name, q.service.as_deref()).await?;
    if sources.is_empty() {
        return Err(bad(
            StatusCode::NOT_FOUND,
            format!("app {name} has not been rendered yet: no containers to read"),
        ));
    }
    let tail = q.tail.unwrap_or(DEFAULT_TAIL);
    let width = sources.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let streams = sources.into_iter().map(|(service, container)| {
        let prefix = format!("{service:<width$} | ");
        provider
            .logs(&container, tail, q.follow)
            .map(move |chunk| {
                let text = match chunk {
                    Ok(c) => c.text,
                    Err(e) => format!("(log ended: {e})\n"),
                };
                let mut out = String::with_capacity(text.len() + prefix.len());
                for line in text.split_inclusive('\n') {
                    out.push_str(&prefix);
                    out.push_str(line);
                }
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                Ok::<_, std::convert::Infallible>(Bytes::from(out))
            })
            .boxed()
    });
    let body = Body::from_stream(futures_util::stream::select_all(streams));
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
