//! The route table: every route the server answers, with the role it needs and what it
//! does. One list ([`ROUTES`]) that the router (`router`), the authorization middleware
//! (`auth`) and the OpenAPI document ([`openapi_document`]) all follow; a leaf below
//! them.

use mooring_store::Role;
use serde_json::{json, Value};

/// One route of the API: what the router serves and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: open (health probes) or authenticated otherwise (webhook signatures).
    pub role: Option<Role>,
    pub summary: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    role: Option<Role>,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        role,
        summary,
    }
}

pub(crate) const V: Option<Role> = Some(Role::Viewer);
pub(crate) const O: Option<Role> = Some(Role::Operator);
pub(crate) const A: Option<Role> = Some(Role::Admin);

/// Every route the server answers.
pub const ROUTES: &[Route] = &[
    r("GET", "/healthz", None, "Liveness: the process answers."),
    r("GET", "/readyz", None, "Readiness: the store is open and the control loop runs (503 with the reason when its heartbeat is stale or an operation or fetch runs past server.stuck_after)."),
    r("GET", "/metrics", V, "Prometheus metrics."),
    r("POST", "/hooks/{provider}", None, "Webhook from github, gitlab, gitea, forgejo, bitbucket or generic (signature or token required)."),
    r("GET", "/api/v1/openapi.json", V, "This document."),
    r("GET", "/api/v1/apps", V, "Every app with its sync status, health and revision."),
    r("GET", "/api/v1/apps/{name}", V, "One app: status, configuration, live resources with health, recent operations."),
    r("GET", "/api/v1/apps/{name}/diff", V, "The plan a sync would execute now."),
    r("POST", "/api/v1/apps/{name}/sync", O, "Sync now (optionally to a revision); waits for the operation."),
    r("POST", "/api/v1/apps/{name}/rollback", O, "Deploy an earlier revision (or an operation's revision) and pin the app there."),
    r("POST", "/api/v1/apps/{name}/pin", O, "Pin the app to its deployed revision (or the one given): auto-sync holds it."),
    r("POST", "/api/v1/apps/{name}/unpin", O, "Remove the pin: auto-sync follows the source again."),
    r("POST", "/api/v1/apps/{name}/refresh", O, "Fetch the source now and reconcile under the app's sync policy (with auto off nothing is applied; the status says what is available); returns at once."),
    r("GET", "/api/v1/apps/{name}/operations", V, "The app's operations, newest first."),
    r("GET", "/api/v1/apps/{name}/backups", V, "The app's volume backups, newest first (the catalogue)."),
    r("GET", "/api/v1/operations/{id}", V, "One operation with every action."),
    r("GET", "/api/v1/events", V, "Events, newest first (or after an id, oldest first)."),
    r("GET", "/api/v1/stream", V, "Server-Sent Events: app status changes, actions, events."),
    r("GET", "/api/v1/tokens", A, "API tokens (without their secrets)."),
    r("POST", "/api/v1/tokens", A, "Create a token (optionally expiring, {\"expires\": \"30d\"}, and limited to apps, {\"apps\": [...]}); the secret is shown once."),
    r("DELETE", "/api/v1/tokens/{id}", A, "Revoke a token."),
    r("POST", "/api/v1/reload", A, "Re-read the configuration file (refused, changing nothing, when it is invalid, or when it declares no apps while apps run unless the body says {\"force\": true})."),
    r("GET", "/", V, "Web UI: every app at a glance (HTML)."),
    r("GET", "/apps/{name}", V, "Web UI: one app's resources, conditions, source and revisions (HTML)."),
    r("GET", "/apps/{name}/diff", V, "Web UI: desired against live, and the plan (HTML)."),
    r("GET", "/apps/{name}/history", V, "Web UI: operations with every action (HTML)."),
    r("GET", "/login", None, "Web UI: the log-in form (HTML)."),
    r("POST", "/login", None, "Web UI: log in with a token (starts a session; an HttpOnly cookie holds its id)."),
    r("POST", "/logout", None, "Web UI: log out (ends the session, clears the cookie)."),
    r("GET", "/ui/{asset}", None, "Web UI: its stylesheet and script."),
];

/// The route serving `method` on the matched `path`, if the table has it.
pub(crate) fn route(path: &str, method: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path && r.method == method)
}

/// The OpenAPI 3 document, built from [`ROUTES`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match route.role {
            Some(role) => json!([{"bearer": [role.to_string()]}]),
            None => json!([]),
        };
        let mut op = json!({
            "summary": route.summary,
            "parameters": params,
            "security": security,
            "responses": {"200": {"description": "OK"}, "401": {"description": "No, unknown or expired token"}, "403": {"description": "Role too low, or another app than the token is limited to"}},
        });
        if route.summary.contains("waits for the operation") || route.path.ends_with("/rollback") {
            // `failure_status`: a failed operation is never a 200.
            op["responses"]["422"] = json!({"description": "The revision cannot be deployed (render, validation, signature): nothing applied"});
            op["responses"]["409"] = json!({"description": "The plan conflicts with the host (e.g. a diverged volume): nothing applied"});
            op["responses"]["502"] = json!({"description": "The source or Docker failed"});
            op["responses"]["503"] = json!({"description": "The daemon is stopping"});
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Mooring API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document_and_protected() {
        let doc = openapi_document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_lowercase()];
            assert!(
                op.is_object(),
                "{} {} missing from OpenAPI",
                route.method,
                route.path
            );
            if route.path.starts_with("/api/") || route.path == "/metrics" {
                assert!(route.role.is_some(), "{} must be authenticated", route.path);
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, ROUTES.len());
    }
}
