//! Security headers on every response, UI and API alike: no framing
//! (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`), no content sniffing, no
//! referrer to other sites, and a strict Content Security Policy: everything from this
//! server only, no inline script or style (the UI's one script and one stylesheet are
//! files under `/ui/`), no plugins, no `<base>`, forms only to this server.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The Content Security Policy of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The headers [`security_headers`] sets.
pub const HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// Middleware: sets [`HEADERS`] on the response (replacing any a handler set).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}
