//! Every JSON answer a test receives from `mooring serve` is checked against the
//! OpenAPI document's schema for its route and status (the document the server
//! publishes, built from the answer types): a key the type does not declare, a required
//! key missing, or a value of the wrong type fails the test that made the request.

use serde_json::Value;
use std::sync::OnceLock;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(mooring_server::routes::openapi_document)
}

/// The route template (`/api/v1/apps/{name}`) that serves `path` with `method`.
fn template(method: &str, path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    mooring_server::routes::ROUTES
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method))
        .map(|r| r.path)
        .find(|t| {
            let tparts: Vec<&str> = t.split('/').collect();
            tparts.len() == parts.len()
                && tparts
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
        })
}

/// Checks an answer; panics with every difference from the schema.
pub fn check_answer(method: &str, path: &str, status: u16, body: &Value) {
    if !body.is_object() {
        return;
    }
    let Some(tpl) = template(method, path) else {
        return;
    };
    let doc = document();
    let responses = &doc["paths"][tpl][method.to_lowercase()]["responses"];
    let schema_of = |code: &str| responses[code]["content"]["application/json"]["schema"].clone();
    let schema = match schema_of(&status.to_string()) {
        Value::Null if (200..300).contains(&status) => schema_of("200"),
        Value::Null => schema_of("default"),
        s => s,
    };
    if schema.is_null() {
        return;
    }
    let mut errors = Vec::new();
    conforms(doc, &schema, body, "$", &[], &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body its schema does not describe:\n{}\nbody: {body}",
        errors.join("\n")
    );
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// `v` against `schema`; `also` names keys an enclosing schema declares (a flattened
/// part's keys are allowed beside the variant's own).
fn conforms(
    doc: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    also: &[String],
    errors: &mut Vec<String>,
) {
    let schema = resolve(doc, schema);
    if v.is_null() && schema["nullable"] == true {
        return;
    }
    let mut known: Vec<String> = also.to_vec();
    known.extend(
        schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone()),
    );
    // Keys a variant or part declares belong to the whole (it is checked on its own).
    for key in ["anyOf", "oneOf", "allOf"] {
        for b in schema[key].as_array().into_iter().flatten() {
            let props = resolve(doc, b)["properties"].as_object();
            known.extend(props.into_iter().flatten().map(|(k, _)| k.clone()));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema[key].as_array() {
            let fits = branches.iter().any(|b| {
                let mut e = Vec::new();
                conforms(doc, b, v, at, &known, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: fits none of {key} {schema}"));
            }
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for p in parts {
            conforms(doc, p, v, at, &known, errors);
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(v) {
            errors.push(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{at}: {v} is not {c}"));
        }
    }
    let ty = schema["type"].as_str();
    let ok = match ty {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: {v} is not of type {}", ty.unwrap_or("?")));
        return;
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"), &[], errors);
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for req in schema["required"].as_array().into_iter().flatten() {
            let req = req.as_str().unwrap_or_default();
            if !obj.contains_key(req) {
                errors.push(format!("{at}: required key {req} is missing"));
            }
        }
        if let Some(props) = props {
            let open = schema["additionalProperties"].is_object()
                || schema["additionalProperties"] == true;
            for (k, val) in obj {
                match props.get(k) {
                    Some(p) => conforms(doc, p, val, &format!("{at}.{k}"), &[], errors),
                    None if open || known.contains(k) => {}
                    None => errors.push(format!("{at}: key {k} is not in the schema")),
                }
            }
        }
    }
}

#[test]
fn the_checker_catches_what_it_should() {
    let ok = serde_json::json!({"ok": true, "pinned": null});
    check_answer("POST", "/api/v1/apps/x/pin", 202, &ok);
    for bad in [
        serde_json::json!({"ok": true, "pinned": null, "extra": 1}),
        serde_json::json!({"pinned": "abc"}),
        serde_json::json!({"ok": "yes", "pinned": null}),
    ] {
        let caught =
            std::panic::catch_unwind(|| check_answer("POST", "/api/v1/apps/x/pin", 202, &bad));
        assert!(caught.is_err(), "not caught: {bad}");
    }
    let sync = serde_json::json!({"apps": [{"name": "a", "sync": "Sideways"}]});
    assert!(std::panic::catch_unwind(|| check_answer("GET", "/api/v1/apps", 200, &sync)).is_err());
}
