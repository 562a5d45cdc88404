//! The route table: every route the server answers, with the role it needs, what it
//! does and the type it answers with. One list ([`ROUTES`]) that the router (`router`),
//! the authorization middleware (`auth`) and the OpenAPI document ([`openapi_document`])
//! all follow; below them, above only the response types (`views`).

use crate::views::*;
use mooring_store::{OperationRecord, Role};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// The JSON schema of a route's answer (a `$ref` into the document's components).
pub type Answer = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One route of the API: what the router serves and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: open (health probes) or authenticated otherwise (webhook signatures).
    pub role: Option<Role>,
    pub summary: &'static str,
    /// The type of a successful JSON answer; `None`: not JSON (HTML, text, a stream).
    pub answer: Option<Answer>,
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
        answer: None,
    }
}

impl Route {
    /// This route answers (on success) with a `T` as JSON.
    const fn json(self, answer: Answer) -> Route {
        Route {
            answer: Some(answer),
            ..self
        }
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
    r("POST", "/hooks/{provider}", None, "Webhook from github, gitlab, gitea, forgejo, bitbucket or generic (signature or token required).").json(of::<HookAnswer>),
    r("GET", "/api/v1/openapi.json", V, "This document."),
    r("GET", "/api/v1/apps", V, "Every app with its sync status, health and revision.").json(of::<AppList>),
    r("GET", "/api/v1/apps/{name}", V, "One app: status, configuration, live resources with health, recent operations.").json(of::<AppDetail>),
    r("GET", "/api/v1/apps/{name}/diff", V, "The plan a sync would execute now; with ?revision=R (operator), a sync to R (or a rollback to it).").json(of::<DiffView>),
    r("POST", "/api/v1/apps/{name}/sync", O, "Sync now (optionally to a revision); waits for the operation.").json(of::<OperationOutcome>),
    r("POST", "/api/v1/apps/{name}/rollback", O, "Deploy an earlier revision (or an operation's revision) and pin the app there.").json(of::<OperationOutcome>),
    r("POST", "/api/v1/apps/{name}/pin", O, "Pin the app to its deployed revision (or the one given): auto-sync holds it.").json(of::<PinView>),
    r("POST", "/api/v1/apps/{name}/unpin", O, "Remove the pin: auto-sync follows the source again.").json(of::<PinView>),
    r("POST", "/api/v1/apps/{name}/refresh", O, "Fetch the source now and reconcile under the app's sync policy (with auto off nothing is applied; the status says what is available); returns at once.").json(of::<Accepted>),
    r("GET", "/api/v1/apps/{name}/operations", V, "The app's operations, newest first.").json(of::<OperationList>),
    r("GET", "/api/v1/apps/{name}/backups", V, "The app's volume backups, newest first (the catalogue).").json(of::<BackupList>),
    r("POST", "/api/v1/apps/{name}/backups", O, "Back up the app's volumes now (or {\"volume\": NAME}), verified, as an operation of the app: its writers are stopped for a consistent copy (or, for a volume in data.consistent, its service's dump runs while it keeps running) and self-heal waits; waits for it.").json(of::<DataOutcome>),
    r("POST", "/api/v1/apps/{name}/backups/{id}/restore", O, "Restore a backup of the app into its volume (or {\"to_volume\": NAME}) as an operation of the app; a volume holding data is refused (409, nothing stopped) unless {\"force\": true}. A dump is given to its service's load command (data.consistent), with force, never to another volume.").json(of::<DataOutcome>),
    r("POST", "/api/v1/apps/{name}/backups/{id}/verify", O, "Read a backup of the app again and check it against its manifest (the archive's size and sha256, every file's size and sha256): 200 when it matches, 422 with the reason when not.").json(of::<VerifyView>),
    r("GET", "/api/v1/apps/{name}/logs", V, "The app's container logs as text, `SERVICE | TIMESTAMP LINE` (query: service, tail — default 200 —, follow=true to keep streaming new lines)."),
    r("GET", "/api/v1/operations/{id}", V, "One operation with every action.").json(of::<OperationRecord>),
    r("GET", "/api/v1/events", V, "Events, newest first (or after an id, oldest first).").json(of::<EventList>),
    r("GET", "/api/v1/stream", V, "Server-Sent Events: app status changes, actions, events."),
    r("GET", "/api/v1/tokens", A, "API tokens (without their secrets).").json(of::<TokenList>),
    r("POST", "/api/v1/tokens", A, "Create a token (optionally expiring, {\"expires\": \"30d\"}, and limited to apps, {\"apps\": [...]}); the secret is shown once.").json(of::<NewTokenView>),
    r("DELETE", "/api/v1/tokens/{id}", A, "Revoke a token.").json(of::<Accepted>),
    r("GET", "/api/v1/hosts", V, "Every Docker host: its endpoint, whether it answers (why not, when last seen), its Engine's id, its apps.").json(of::<HostList>),
    r("POST", "/api/v1/hosts/{name}/accept", A, "Accept the Engine a host answers as now (a replaced machine): its apps are deployed to it again.").json(of::<HostView>),
    r("POST", "/api/v1/reload", A, "Re-read the configuration file (refused, changing nothing, when it is invalid, or when it declares no apps while apps run unless the body says {\"force\": true}).").json(of::<Reloaded>),
    r("GET", "/", V, "Web UI: every app at a glance (HTML)."),
    r("GET", "/apps/{name}", V, "Web UI: one app's resources, conditions, source and revisions (HTML)."),
    r("GET", "/apps/{name}/diff", V, "Web UI: desired against live, and the plan (HTML)."),
    r("GET", "/apps/{name}/history", V, "Web UI: operations with every action (HTML)."),
    r("GET", "/apps/{name}/logs", V, "Web UI: the app's container logs, followed live (HTML; query: service, tail)."),
    r("GET", "/login", None, "Web UI: the log-in form (HTML)."),
    r("POST", "/login", None, "Web UI: log in with a token (starts a session; an HttpOnly cookie holds its id)."),
    r("POST", "/logout", None, "Web UI: log out (ends the session, clears the cookie)."),
    r("GET", "/ui/{asset}", None, "Web UI: its stylesheet and script."),
];

/// The route serving `method` on the matched `path`, if the table has it.
pub(crate) fn route(path: &str, method: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path && r.method == method)
}

/// The OpenAPI 3 document, built from [`ROUTES`]: each JSON answer's schema comes
/// from the type the handler serializes.
pub fn openapi_document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
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
        if let Some(answer) = route.answer {
            let schema = answer(&mut generator);
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": schema}});
            // Errors: `{"error"}` from the API; a webhook answers every delivery alike.
            let (error, what) = if route.path.starts_with("/api/") {
                (
                    generator.subschema_for::<ErrorView>(),
                    "An error: what went wrong and what to do",
                )
            } else {
                (answer(&mut generator), "A refused delivery: why")
            };
            op["responses"]["default"] =
                json!({"description": what, "content": {"application/json": {"schema": error}}});
        }
        if route.summary.contains("waits for the operation") || route.path.ends_with("/rollback") {
            // `failure_status`: a failed operation is never a 200; the body says how
            // it ended (`ok: false`, `kind`, `error`) and the app's status.
            let outcome = json!({"application/json": {"schema": generator.subschema_for::<OperationOutcome>()}});
            for (code, description) in [
                ("422", "The revision cannot be deployed (render, validation, signature): nothing applied"),
                ("409", "The plan conflicts with the host (e.g. a diverged volume): nothing applied"),
                ("502", "The source or Docker failed"),
                ("503", "The daemon is stopping"),
            ] {
                op["responses"][code] = json!({"description": description, "content": outcome});
            }
        }
        if let (Some(answer), true) = (
            route.answer,
            route.summary.contains("as an operation of the app"),
        ) {
            // A backup or restore that failed on the way: its outcome, `ok: false`.
            let outcome = json!({"application/json": {"schema": answer(&mut generator)}});
            op["responses"]["502"] = json!({"description": "A volume's backup or restore failed (the operation says which)", "content": outcome});
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Mooring API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": generator.take_definitions(true),
        },
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

    /// Each JSON answer's schema is in the document, named after its type, and each
    /// `$ref` anywhere in the document resolves.
    #[test]
    fn json_answers_have_schemas_from_their_types() {
        let doc = openapi_document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for route in ROUTES.iter().filter(|r| r.answer.is_some()) {
            let schema = &doc["paths"][route.path][route.method.to_lowercase()]["responses"]["200"]
                ["content"]["application/json"]["schema"];
            let name = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"));
            assert!(
                name.is_some_and(|n| schemas.contains_key(n)),
                "{} {}: {schema}",
                route.method,
                route.path
            );
        }
        let app = &schemas["AppSummary"];
        for key in [
            "name",
            "sync",
            "health",
            "conditions",
            "host",
            "policy",
            "host_policy",
        ] {
            assert!(
                app["properties"][key].is_object(),
                "AppSummary.{key}: {app}"
            );
        }
        assert_eq!(
            schemas["SyncState"]["enum"],
            json!(["Synced", "OutOfSync", "Unknown"])
        );
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
            assert!(schemas.contains_key(name), "dangling {r}");
        }
    }
}
