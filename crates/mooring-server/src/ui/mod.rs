//! The web UI: server-rendered HTML pages over the same values the JSON API serves
//! (the `views` types that `api::apps_view`, `api::app_view`, `api::diff_view` build, the
//! operations of the store), a stylesheet and a small script for live updates (the API's event stream)
//! and actions (the API's own routes). Every asset is served by the binary.
//!
//! Log-in: a token (`mooring token create`) posted to `/login` starts a session in the
//! store (a random id, never the token: `Store::create_session`), sent as an `HttpOnly`,
//! `SameSite=Strict` cookie; the authorization middleware accepts the session where it
//! accepts a bearer token, with the token's role and app limit. Log-out ends the
//! session; revoking the token ends all of its sessions; a session lives at most
//! `SESSION_LIFETIME_MS` and never past its token's expiry. A change made with the
//! cookie must also carry the `x-mooring-ui` header, which another site's form or
//! script cannot send.

mod pages;

use crate::access::Access;
use crate::api::{self, ApiError, ServerState, St};
use crate::auth::{session_id, COOKIE};
use crate::limits::{self, Scope};
use crate::views::{HostCondition, HostView};
use axum::extract::{ConnectInfo, Path, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use mooring_store::{now_ms, Role, SESSION_LIFETIME_MS};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

/// The UI's routes (their roles are in `routes::ROUTES`).
pub(crate) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/", get(overview))
        .route("/apps/{name}", get(app_page))
        .route("/apps/{name}/diff", get(diff_page))
        .route("/apps/{name}/history", get(history_page))
        .route("/apps/{name}/logs", get(logs_page))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/ui/{asset}", get(asset))
        .layer(axum::middleware::from_fn(server_timing))
}

/// Says how long the server took (`Server-Timing: total;dur=MS`): browsers' developer
/// tools show it, and `bench/ui.py` reads it.
async fn server_timing(req: Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("total;dur={ms:.2}")) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

/// Where to go after logging in: a path on this server only, else `/`.
///
/// `next` must be a path (`/…`) without control characters or backslashes (browsers
/// drop tabs and newlines and read `\` as `/`, so `/\t/evil` and `/\evil` mean
/// `//evil`); it is then resolved as a browser would (WHATWG URL parsing, dot segments
/// removed) against this server, and kept only when it stays here and its path does
/// not start with two slashes, plain or percent-encoded (`/.//evil`, `/%2F/evil`).
fn safe_next(next: Option<&str>) -> String {
    const HERE: &str = "http://mooring.invalid/";
    let fallback = || "/".to_string();
    let Some(n) = next else {
        return fallback();
    };
    if !n.starts_with('/') || n.contains('\\') || n.chars().any(char::is_control) {
        return fallback();
    }
    let Ok(here) = url::Url::parse(HERE) else {
        return fallback();
    };
    let Ok(resolved) = here.join(n) else {
        return fallback();
    };
    if resolved.origin() != here.origin() || !resolved.username().is_empty() {
        return fallback();
    }
    let path = &resolved[url::Position::BeforePath..];
    let second = path.get(1..).unwrap_or("").to_ascii_lowercase();
    if second.starts_with('/') || second.starts_with("%2f") || second.starts_with("%5c") {
        return fallback();
    }
    path.to_string()
}

/// A whole page.
fn page(ctx: &pages::Page, content: maud::Markup) -> Response {
    let body = pages::layout(ctx, content).into_string();
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn error_page(status: StatusCode, role: Role, message: &str) -> Response {
    let ctx = pages::Page::new("Error", role, None);
    (
        status,
        Html(pages::layout(&ctx, pages::error(message)).into_string()),
    )
        .into_response()
}

impl ApiError {
    fn into_page(self, role: Role) -> Response {
        error_page(self.0, role, &self.1)
    }
}

/// Filters of the overview (all optional).
#[derive(Deserialize, Default)]
pub(crate) struct Filter {
    pub q: Option<String>,
    pub sync: Option<String>,
    pub health: Option<String>,
    pub host: Option<String>,
    /// Which page of rows (from 1; anything else is the first).
    pub page: Option<String>,
}

impl Filter {
    /// The page asked for, from 1.
    pub fn page(&self) -> usize {
        self.page
            .as_deref()
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// The query string of these filters (without the page), `&`-joined, escaped.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("sync", &self.sync),
            ("health", &self.health),
            ("host", &self.host),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

async fn overview(
    state: St,
    Extension(role): Extension<Role>,
    Extension(access): Extension<Access>,
    Query(filter): Query<Filter>,
) -> Response {
    match api::apps_view(&state).await {
        Ok(mut list) => {
            access.retain(&mut list.apps, |a| Some(a.name()));
            let apps = &list.apps;
            let ctx = pages::Page::new("Apps", role, None);
            // Hosts that need a person, with the apps this viewer may see on them.
            let c = api::controller(&state).await;
            let visible: std::collections::HashSet<&str> = apps.iter().map(|a| a.name()).collect();
            let hosts: Vec<HostView> = c
                .hosts()
                .into_iter()
                .map(|(name, endpoint, health, on)| HostView::new(name, endpoint, health, on))
                .filter(|h| {
                    matches!(
                        h.condition,
                        HostCondition::Unreachable | HostCondition::Replaced
                    )
                })
                .filter_map(|mut h| {
                    h.apps.retain(|a| visible.contains(a.as_str()));
                    (!h.apps.is_empty()).then_some(h)
                })
                .collect();
            let live = pages::overview(apps, &hosts, &filter, now_ms());
            page(&ctx, pages::overview_frame(apps, &filter, live))
        }
        Err(e) => e.into_page(role),
    }
}

/// One of an app's pages: the app's frame around `content` (the overview tab when
/// `None`); an error shows in place of the content, under the frame.
async fn app_tab(
    state: &ServerState,
    role: Role,
    name: &str,
    tab: pages::Tab,
    content: Option<Result<maud::Markup, ApiError>>,
) -> Response {
    app_tab_with(state, role, name, tab, content, &LogsQuery::default()).await
}

/// [`app_tab`], with the logs tab's choices.
async fn app_tab_with(
    state: &ServerState,
    role: Role,
    name: &str,
    tab: pages::Tab,
    content: Option<Result<maud::Markup, ApiError>>,
    logs: &LogsQuery,
) -> Response {
    let app = match api::app_view(state, name).await {
        Ok(app) => app,
        Err(e) => return e.into_page(role),
    };
    let title = match tab {
        pages::Tab::Overview => name.to_string(),
        pages::Tab::Diff => format!("Diff · {name}"),
        pages::Tab::History => format!("History · {name}"),
        pages::Tab::Logs => format!("Logs · {name}"),
    };
    let ctx = pages::Page::new(&title, role, Some(name));
    let live = match (tab, content) {
        (pages::Tab::Logs, _) => pages::logs(
            &app,
            logs.service.as_deref().filter(|s| !s.is_empty()),
            logs.tail.unwrap_or(200),
        ),
        (_, None) => pages::app(&app, now_ms(), role >= Role::Operator),
        (_, Some(content)) => content.unwrap_or_else(|e| pages::error(&e.1)),
    };
    page(&ctx, pages::app_frame(&app, &ctx, tab, live))
}

async fn app_page(
    state: St,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Response {
    app_tab(&state, role, &name, pages::Tab::Overview, None).await
}

async fn diff_page(
    state: St,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Response {
    let diff = api::diff_view(&state, &name, None)
        .await
        .map(|d| pages::diff(&d));
    app_tab(&state, role, &name, pages::Tab::Diff, Some(diff)).await
}

async fn history_page(
    state: St,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Response {
    let history = match state.store.operations(Some(&name), 100, None) {
        Ok(ops) => {
            let revisions: Vec<&str> = ops.iter().filter_map(|o| o.revision.as_deref()).collect();
            let subjects = api::controller(&state)
                .await
                .revision_subjects(&name, &revisions)
                .await;
            Ok(pages::history(&ops, &subjects, now_ms()))
        }
        Err(e) => Err(ApiError::from(e)),
    };
    app_tab(&state, role, &name, pages::Tab::History, Some(history)).await
}

/// The logs tab's query: which service, how many lines.
#[derive(Deserialize, Default)]
struct LogsQuery {
    service: Option<String>,
    tail: Option<u32>,
}

async fn logs_page(
    state: St,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    app_tab_with(&state, role, &name, pages::Tab::Logs, None, &q).await
}

#[derive(Deserialize, Default)]
struct Next {
    next: Option<String>,
}

async fn login_form(Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    Html(pages::login(&next, None).into_string()).into_response()
}

#[derive(Deserialize)]
struct Login {
    token: String,
    next: Option<String>,
}

/// A log-in. Failures count against the source address only: an address over the
/// limit (`limits::Scope::Login`) is refused before its token is looked at, and nobody
/// else is affected.
async fn login(
    state: St,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<Login>,
) -> Response {
    let addr = limits::source_address(peer);
    let next = safe_next(form.next.as_deref());
    let refuse = |status: StatusCode, message: &str| {
        (
            status,
            Html(pages::login(&next, Some(message)).into_string()),
        )
            .into_response()
    };
    if let Some(wait) = state.limiter.blocked(Scope::Login, addr, Instant::now()) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed log-ins from {addr}; wait {}s and try again.",
                wait.as_secs().max(1)
            ),
        );
    }
    let token = form.token.trim();
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let known = if valid {
        state.store.authenticate(token, now_ms())
    } else {
        Ok(None)
    };
    let session = match known {
        Ok(Some(info)) => state
            .store
            .create_session(info.id, now_ms())
            .map(|session| Some((session, info))),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match session {
        Ok(Some((session, info))) => {
            let now = now_ms();
            let ends = info.expires_at.map_or(now + SESSION_LIFETIME_MS, |t| {
                t.min(now + SESSION_LIFETIME_MS)
            });
            let cookie = format!(
                "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                (ends - now).max(0) / 1000
            );
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Ok(None) => {
            state.limiter.failed(Scope::Login, addr, Instant::now());
            refuse(
            StatusCode::UNAUTHORIZED,
            "Unknown, revoked or expired token. Create one on the server with `mooring token create --config mooring.yaml --role viewer|operator|admin`.",
        )
        }
    }
}

/// Ends the session the cookie names (in the store: the id is worthless afterwards,
/// even if it was copied) and clears the cookie.
async fn logout(state: St, headers: HeaderMap) -> Response {
    if let Some(session) = session_id(&headers) {
        if let Err(e) = state.store.end_session(&session) {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Role::Viewer,
                &e.to_string(),
            );
        }
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mooring_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

async fn asset(Path(asset): Path<String>) -> Response {
    let (body, kind) = match asset.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        for (next, expected) in [
            ("/apps/x?y=1", "/apps/x?y=1"),
            ("/apps/x/history#op-3", "/apps/x/history#op-3"),
            ("/apps/a/../b", "/apps/b"),
            ("/", "/"),
        ] {
            assert_eq!(safe_next(Some(next)), expected, "{next:?}");
        }
        // Each of these leaves the site in some browser, or is no path of ours.
        let attacks = [
            "//evil.example/",
            "///evil.example/",
            "https://evil.example/",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.example",
            "",
            "/\\evil",
            "\\/evil",
            "/\\/evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r\n/evil.example/",
            "\t//evil.example/",
            "/\u{0}/evil",
            "/\u{7f}/evil",
            "/\u{85}/evil",
            "%2F%2Fevil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5C/evil.example",
            "/%5cevil.example",
            "/.//evil.example",
            "/../..//evil.example",
            "/apps/../..//evil.example",
            "//user@evil.example",
        ];
        for attack in attacks {
            assert_eq!(safe_next(Some(attack)), "/", "{attack:?} falls back to /");
        }
        assert_eq!(safe_next(None), "/");
    }
}
