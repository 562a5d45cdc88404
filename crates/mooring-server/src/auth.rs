//! Who may call a route: the bearer token, or the web UI's session cookie (a session
//! id, never a token), checked against the role [`ROUTES`](crate::routes::ROUTES)
//! names; unknown routes fail closed. A token limited to apps is kept to them; a change
//! through the cookie needs the UI's header (no cross-site requests); a page visit
//! without a valid session is sent to the log-in form.

use crate::access::Access;
use crate::api::{bad, ApiError, ServerState, St};
use crate::routes::{self, Route, A};
use crate::views::ErrorView;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use mooring_store::now_ms;
use std::sync::Arc;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mooring_session";
/// Sent by the UI's script on every change it asks for.
pub(crate) const UI_HEADER: &str = "x-mooring-ui";

/// Checks the bearer token against the route's role; unknown routes fail closed.
pub(crate) async fn authorize(State(state): St, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let Some(path) = path else {
        return bad(StatusCode::NOT_FOUND, "no such route").into_response();
    };
    let method = req.method().as_str();
    let Some(route) = routes::route(&path, method) else {
        return bad(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response();
    };
    let Some(needed) = route.role else {
        return next.run(req).await;
    };
    // A page of the web UI sends people to the log-in form instead of a JSON error.
    let page = !path.starts_with("/api/") && path != "/metrics";
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookie = session_id(req.headers());
    if bearer.is_none() && cookie.is_some() && !same_origin_request(&req) {
        // The browser's session cookie acts only for the UI's own scripts: a change
        // requested from another site (CSRF) carries no `x-mooring-ui` header.
        return bad(
            StatusCode::FORBIDDEN,
            "a change through the session cookie needs the x-mooring-ui header (sent by the web UI)",
        )
        .into_response();
    }
    if bearer.is_none() && cookie.is_none() {
        if page {
            return to_login(req.uri());
        }
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            Json(ErrorView {
                error: "a bearer token is required (mooring token create)".into(),
            }),
        )
            .into_response();
    }
    // A bearer token, or the session the UI's cookie names (never a token itself).
    let found = match (&bearer, &cookie) {
        (Some(token), _) => state.store.authenticate(token.trim(), now_ms()),
        (None, Some(session)) => state.store.session(session, now_ms()),
        (None, None) => Ok(None),
    };
    match found {
        Ok(Some(info)) if info.role >= needed => {
            let access = Access::of(&info);
            let (mut parts, body) = req.into_parts();
            if let Some(refusal) = app_limit_refusal(&access, route, &mut parts, &state).await {
                return bad(StatusCode::FORBIDDEN, refusal).into_response();
            }
            let mut req = Request::from_parts(parts, body);
            req.extensions_mut().insert(info.role);
            req.extensions_mut().insert(access);
            next.run(req).await
        }
        Ok(None) if page => to_login(req.uri()),
        Ok(Some(info)) => bad(
            StatusCode::FORBIDDEN,
            format!("role {} may not do this; {} is needed", info.role, needed),
        )
        .into_response(),
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            Json(ErrorView {
                error: if bearer.is_some() {
                    "unknown, revoked or expired token (mooring token create makes one)"
                } else {
                    "the session ended (logged out, expired, or its token was revoked); log in again"
                }
                .into(),
            }),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Why a token limited to some apps may not use `route`: another app named in the
/// path, or a global admin route (`/metrics`, tokens, reload).
async fn app_limit_refusal(
    access: &Access,
    route: &Route,
    parts: &mut axum::http::request::Parts,
    state: &Arc<ServerState>,
) -> Option<String> {
    access.apps.as_ref()?;
    if route.role == A || route.path == "/metrics" {
        return access.global_refusal();
    }
    if route.path.contains("{name}") {
        let params = RawPathParams::from_request_parts(parts, state).await.ok()?;
        let name = params.iter().find(|(k, _)| *k == "name").map(|(_, v)| v)?;
        return access.refusal(name);
    }
    None
}

/// The session id in the session cookie, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Reads are always fine; a change through the cookie needs the UI's header.
pub(crate) fn same_origin_request(req: &Request) -> bool {
    req.method() == axum::http::Method::GET
        || req.method() == axum::http::Method::HEAD
        || req.headers().contains_key(UI_HEADER)
}

/// Sends a browser to the log-in form, coming back to `uri` afterwards.
pub(crate) fn to_login(uri: &Uri) -> Response {
    let back = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::to(&format!("/login?next={}", encode(back))).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_way_back_is_percent_encoded() {
        assert_eq!(encode("/apps/a b?x=1&y"), "/apps/a%20b%3Fx%3D1%26y");
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mooring_session=mrg_abc; b=2"),
        );
        assert_eq!(session_id(&h).as_deref(), Some("mrg_abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("mooring_session="));
        assert_eq!(session_id(&h), None);
    }
}
