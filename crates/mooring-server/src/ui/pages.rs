//! The pages, as maud templates over the API's JSON values (so the UI shows exactly
//! what `mooring app …` and the API show). Status is always text plus a shape, never
//! colour alone. Each page has a live part (`#live`) that the script re-fetches when
//! the event stream says something changed.

use super::Filter;
use maud::{html, Markup, DOCTYPE};
use mooring_store::Role;
use serde_json::Value;

/// What every page knows: its title, the viewer's role, the app it is about.
pub(crate) struct Page {
    pub title: String,
    pub role: Role,
    pub app: Option<String>,
}

impl Page {
    pub fn new(title: &str, role: Role, app: Option<&str>) -> Page {
        Page {
            title: title.to_string(),
            role,
            app: app.map(str::to_string),
        }
    }

    fn operator(&self) -> bool {
        self.role >= Role::Operator
    }
}

/// The tabs of an app's pages.
#[derive(PartialEq, Eq, Clone, Copy)]
pub(crate) enum Tab {
    Overview,
    Diff,
    History,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn short_id(rev: &str) -> &str {
    // By characters: a revision is whatever a user typed (a pin, a tag).
    let first =
        |s: &'_ str, n: usize| -> usize { s.char_indices().nth(n).map_or(s.len(), |(i, _)| i) };
    match rev.strip_prefix("sha256:") {
        Some(h) => &h[..first(h, 10)],
        None if rev.chars().count() >= 40 => &rev[..first(rev, 10)],
        None => rev,
    }
}

/// `2026-12-01 18:20:05 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    mooring_core::clock::UtcTime::from_unix_ms(ms).to_string()
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(now: i64, ms: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn when(now: i64, ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => html! { time datetime=(ms) title=(utc(ms)) { (ago(now, ms)) } },
        None => html! { "—" },
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The sync status as a shape and a word.
fn sync_look(sync: &str) -> (&'static str, &'static str) {
    match sync {
        "Synced" => ("✓", "ok"),
        "OutOfSync" => ("◆", "warn"),
        _ => ("?", "unknown"),
    }
}

fn health_look(health: &str) -> (&'static str, &'static str) {
    match health {
        "Healthy" => ("●", "ok"),
        "Progressing" => ("◐", "busy"),
        "Degraded" => ("▲", "bad"),
        "Missing" => ("○", "bad"),
        "Suspended" => ("■", "unknown"),
        _ => ("?", "unknown"),
    }
}

fn result_look(result: Option<&str>) -> (&'static str, &'static str, &'static str) {
    match result {
        Some("succeeded") => ("✓", "ok", "succeeded"),
        Some("no_op") => ("=", "unknown", "no change"),
        Some("failed") => ("✗", "bad", "failed"),
        Some("interrupted") => ("!", "warn", "interrupted"),
        _ => ("…", "busy", "running"),
    }
}

fn sync_badge(sync: &str) -> Markup {
    let (shape, class) = sync_look(sync);
    html! {
        span class={"badge " (class)} data-sync=(sync) {
            span.shape aria-hidden="true" { (shape) } " " (sync)
        }
    }
}

/// The health as a shape and a word.
fn health_badge(health: &str) -> Markup {
    let (shape, class) = health_look(health);
    html! {
        span class={"badge " (class)} data-health=(health) {
            span.shape aria-hidden="true" { (shape) } " " (health)
        }
    }
}

fn result_badge(result: Option<&str>) -> Markup {
    let (shape, class, word) = result_look(result);
    html! {
        span class={"badge " (class)} data-result=(word) {
            span.shape aria-hidden="true" { (shape) } " " (word)
        }
    }
}

/// The HTML document around a page's content.
pub(crate) fn layout(page: &Page, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · Mooring" }
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body data-app=[page.app.as_deref()] data-role=(page.role.as_str()) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { span aria-hidden="true" { "⚓" } " Mooring" }
                    nav aria-label="Main" { a href="/" { "Apps" } }
                    span.who { "signed in as " (page.role.as_str()) }
                    form method="post" action="/logout" { button.link type="submit" { "Log out" } }
                }
                div #conn role="status" hidden {}
                main #main { (content) }
            }
        }
    }
}

pub(crate) fn error(message: &str) -> Markup {
    html! {
        div.error role="alert" { strong { "Error: " } (message) }
    }
}

pub(crate) fn login(next: &str, error_message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Mooring" }
                link rel="stylesheet" href="/ui/app.css";
            }
            body.login {
                main #main {
                    h1 { span aria-hidden="true" { "⚓" } " Mooring" }
                    form.card method="post" action="/login" {
                        @if let Some(m) = error_message { p.error role="alert" { (m) } }
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        input type="hidden" name="next" value=(next);
                        button type="submit" { "Log in" }
                        p.hint { "Create one on the server: " code { "mooring token create --config mooring.yaml --role viewer" } }
                    }
                }
            }
        }
    }
}

fn matches(app: &Value, f: &Filter) -> bool {
    let eq = |want: &Option<String>, got: &str| {
        want.as_deref()
            .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(got))
    };
    let q = f.q.as_deref().unwrap_or("").trim().to_lowercase();
    let found = q.is_empty()
        || ["name", "source", "revision_describe", "host", "path"]
            .iter()
            .any(|k| text(app, k).to_lowercase().contains(&q));
    found
        && eq(&f.sync, text(app, "sync"))
        && eq(&f.health, text(app, "health"))
        && eq(&f.host, text(app, "host"))
}

const SYNCS: [&str; 3] = ["Synced", "OutOfSync", "Unknown"];
const HEALTHS: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Missing",
    "Suspended",
    "Unknown",
];

fn select(name: &str, label: &str, options: &[&str], current: Option<&str>) -> Markup {
    html! {
        label {
            (label) " "
            select name=(name) {
                option value="" { "all" }
                @for o in options {
                    option value=(o) selected[current == Some(*o)] { (o) }
                }
            }
        }
    }
}

/// The overview's frame: title and filters around the live part.
pub(crate) fn overview_frame(apps: &Value, f: &Filter, live: Markup) -> Markup {
    let mut hosts: Vec<&str> = apps["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| text(a, "host"))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    html! {
        h1 { "Apps" }
        form.filters method="get" action="/" role="search" {
            label { "Search " input type="search" name="q" value=(f.q.as_deref().unwrap_or("")) placeholder="name, source, revision"; }
            (select("sync", "Sync", &SYNCS, f.sync.as_deref()))
            (select("health", "Health", &HEALTHS, f.health.as_deref()))
            (select("host", "Host", &hosts, f.host.as_deref()))
            button type="submit" { "Filter" }
        }
        div #live { (live) }
    }
}

/// The overview's live part: counts, then one compact row per app that passes the
/// filter, grouped by source (a monorepo's apps share one heading). Rows carry no
/// more markup than they need: 500 apps stay well under 150 KB.
pub(crate) fn overview(apps: &Value, f: &Filter, now: i64) -> Markup {
    let all: Vec<&Value> = apps["apps"].as_array().into_iter().flatten().collect();
    let count = |key: &str, value: &str| all.iter().filter(|a| text(a, key) == value).count();
    let mut shown: Vec<&Value> = all.iter().copied().filter(|a| matches(a, f)).collect();
    shown.sort_by(|a, b| {
        (text(a, "source"), text(a, "name")).cmp(&(text(b, "source"), text(b, "name")))
    });
    let mut groups: Vec<(&str, Vec<&Value>)> = Vec::new();
    for a in shown {
        match groups.last_mut() {
            Some((src, list)) if *src == text(a, "source") => list.push(a),
            _ => groups.push((text(a, "source"), vec![a])),
        }
    }
    html! {
        ul.counts aria-label="Apps per status" {
            li { a href="/" { b { (all.len()) } " apps" } }
            @for s in SYNCS {
                @let n = count("sync", s);
                @if n > 0 { li { a href={"/?sync=" (s)} { (sync_badge(s)) " " b data-count=(s) { (n) } } } }
            }
            @for h in HEALTHS {
                @let n = count("health", h);
                @if n > 0 { li { a href={"/?health=" (h)} { (health_badge(h)) " " b data-count=(h) { (n) } } } }
            }
        }
        @if groups.is_empty() {
            p.empty { "No app matches these filters." }
        } @else {
            table.apps {
                thead { tr {
                    th scope="col" { "App" } th scope="col" { "Sync" } th scope="col" { "Health" }
                    th scope="col" { "Revision" } th scope="col" { "Host" } th scope="col" { "Last operation" }
                } }
                @for (source, list) in &groups {
                    tbody {
                        @let common = common_revision(list);
                        tr.grp { th colspan="6" scope="rowgroup" {
                            "Source: " span.src { (source) }
                            @if let Some(c) = common {
                                " — most apps run " (revision(c, now))
                            }
                        } }
                        @for a in list { (app_row(a, common.map(|c| text(c, "revision")), now)) }
                    }
                }
            }
        }
    }
}

fn marks(a: &Value) -> Markup {
    html! {
        @if a["pinned"].is_string() { i.mark { "pinned" } }
        @if a["policy"]["auto"] == Value::Bool(false) { i.mark { "manual" } }
    }
}

/// The deployed revision's message: the recorded one, else the subject in its
/// description (`main@1a2b3c4 (subject)`).
fn revision_message(a: &Value) -> Option<&str> {
    a["revision_info"]["message"]
        .as_str()
        .map(first_line)
        .or_else(|| {
            let d = a["revision_describe"].as_str()?;
            let (_, subject) = d.split_once(" (")?;
            subject.strip_suffix(')')
        })
}

fn revision(a: &Value, now: i64) -> Markup {
    let info = &a["revision_info"];
    html! {
        @match a["revision"].as_str() {
            Some(rev) => {
                b { (short_id(rev)) }
                @if let Some(m) = revision_message(a) { " " (clip(m, 60)) }
                @if info["author"].is_string() || info["time_ms"].is_i64() {
                    small {
                        (info["author"].as_str().map(author_name).unwrap_or(""))
                        @if let Some(t) = info["time_ms"].as_i64() { " · " (ago(now, t)) }
                    }
                }
            }
            None => { "—" }
        }
    }
}

/// `Name <email>` → `Name` (the app page shows it whole).
fn author_name(author: &str) -> &str {
    match author.split_once(" <") {
        Some((name, _)) if !name.is_empty() => name,
        _ => author,
    }
}

/// At most `max` characters, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A status cell: shape and word, class for colour (`td.ok`…).
fn status_cell(class: &str, shape: &str, word: &str) -> Markup {
    html! { td class=(class) { (shape) " " (word) } }
}

/// An app of `apps` running the revision most of them run, when at least two share it
/// (a monorepo's usual case: the group heading shows it once, rows only its id).
fn common_revision<'a>(apps: &[&'a Value]) -> Option<&'a Value> {
    let mut counts: std::collections::HashMap<&str, (&'a Value, usize)> = Default::default();
    for a in apps {
        if let Some(rev) = a["revision"].as_str() {
            counts.entry(rev).or_insert((a, 0)).1 += 1;
        }
    }
    counts
        .into_values()
        .filter(|(_, n)| *n >= 2)
        .max_by_key(|(a, n)| (*n, std::cmp::Reverse(text(a, "name"))))
        .map(|(a, _)| a)
}

fn app_row(a: &Value, common: Option<&str>, now: i64) -> Markup {
    let name = text(a, "name");
    let op = &a["latest_operation"];
    let (sync_shape, sync_class) = sync_look(text(a, "sync"));
    let (health_shape, health_class) = health_look(text(a, "health"));
    html! {
        tr {
            td { a href={"/apps/" (name)} { (name) } (marks(a)) }
            (status_cell(sync_class, sync_shape, text(a, "sync")))
            (status_cell(health_class, health_shape, text(a, "health")))
            td {
                @match a["revision"].as_str() {
                    Some(rev) if Some(rev) == common => b { (short_id(rev)) },
                    _ => (revision(a, now)),
                }
            }
            td { (text(a, "host")) }
            @if op.is_object() {
                @let (shape, class, word) = result_look(op["result"].as_str());
                td class=(class) {
                    (shape) " " (word)
                    small { (text(op, "trigger")) @if let Some(t) = op["started_at"].as_i64() { " · " (ago(now, t)) } }
                    @if let Some(e) = op["error"].as_str() { small.err { (first_line(e)) } }
                }
            } @else { td { "—" } }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The frame of an app's pages: title, status, tabs, actions, progress.
pub(crate) fn app_frame(app: &Value, page: &Page, tab: Tab, live: Markup) -> Markup {
    let name = text(app, "name");
    let tabs = [
        (Tab::Overview, "Overview", format!("/apps/{name}")),
        (Tab::Diff, "Diff", format!("/apps/{name}/diff")),
        (Tab::History, "History", format!("/apps/{name}/history")),
    ];
    html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Apps" } " / " (name) }
        h1 { (name) }
        nav.tabs aria-label="App pages" {
            @for (t, label, href) in &tabs {
                a href=(href) aria-current=[(*t == tab).then_some("page")] { (label) }
            }
        }
        @if page.operator() { (actions(app)) }
        section #progress aria-live="polite" hidden {}
        div #live { (live) }
        dialog #confirm {
            form method="dialog" {
                p #confirm-text {}
                p #confirm-warning.warning hidden {}
                menu {
                    button value="cancel" type="submit" { "Cancel" }
                    button #confirm-ok value="ok" type="submit" { "Confirm" }
                }
            }
        }
    }
}

/// Revisions this app ran, newest first (from its successful operations).
fn deployed_revisions(app: &Value) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for op in app["operations"].as_array().into_iter().flatten() {
        if text(op, "result") != "succeeded" {
            continue;
        }
        if let (Some(r), Some(t)) = (op["revision"].as_str(), op["started_at"].as_i64()) {
            if !out.iter().any(|(x, _)| x == r) {
                out.push((r.to_string(), t));
            }
        }
    }
    out
}

fn actions(app: &Value) -> Markup {
    let name = text(app, "name");
    let current = app["revision"].as_str();
    let older: Vec<(String, i64)> = deployed_revisions(app)
        .into_iter()
        .filter(|(r, _)| Some(r.as_str()) != current)
        .collect();
    let written: Vec<&str> = app["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v["used_by"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|u| u.as_str().is_some_and(|u| !u.ends_with("(ro)")))
        })
        .map(|v| text(v, "name"))
        .collect();
    let warning = (!written.is_empty()).then(|| {
        format!(
            "A rollback changes containers, not data: volumes {} are written by this app and keep their current content. Restoring a backup is a separate step (mooring backup restore ID).",
            written.join(", ")
        )
    });
    html! {
        section.actions aria-label="Actions" {
            form.action data-action="sync" data-confirm={"Sync " (name) " to its source's latest revision now?"} {
                button type="submit" { "Sync now" }
            }
            form.action data-action="sync" data-confirm={"Sync " (name) " to the revision given?"} {
                label { span.sr { "Revision" } input name="revision" required placeholder="revision (commit, tag…)" size="18"; }
                button type="submit" { "Sync to revision" }
            }
            form.action data-action="rollback" data-confirm={"Roll " (name) " back to the chosen revision and pin it there?"} data-warning=[warning.as_deref()] {
                label {
                    span.sr { "Rollback target" }
                    select name="to" required {
                        @if older.is_empty() { option value="" { "no earlier revision" } }
                        @for (r, _) in &older { option value=(r) { (short_id(r)) } }
                    }
                }
                button type="submit" disabled[older.is_empty()] { "Rollback" }
            }
            @if app["pinned"].is_string() {
                form.action data-action="unpin" data-confirm={"Unpin " (name) "? Auto-sync follows the source again."} {
                    button type="submit" { "Unpin" }
                }
            } @else {
                form.action data-action="pin" data-confirm={"Pin " (name) " to its deployed revision? Auto-sync holds it until unpinned."} {
                    button type="submit" disabled[current.is_none()] { "Pin" }
                }
            }
            form.action data-action="refresh" {
                button type="submit" { "Refresh" }
            }
        }
    }
}

/// An app's live part: summary, conditions, resource tree, revisions.
pub(crate) fn app(a: &Value, now: i64) -> Markup {
    let policy = &a["policy"];
    html! {
        section.summary aria-label="Status" {
            p.status {
                (sync_badge(text(a, "sync"))) " " (health_badge(text(a, "health"))) " " (marks(a))
            }
            dl {
                dt { "Source" } dd { span.src { (text(a, "source")) } }
                @if let Some(r) = a["ref"].as_str() { dt { "Ref" } dd { code { (r) } } }
                @if let Some(p) = a["path"].as_str() { @if !p.is_empty() { dt { "Path" } dd { code { (p) } } } }
                dt { "Host" } dd { (text(a, "host")) }
                dt { "Revision" } dd {
                    @match a["revision"].as_str() {
                        Some(rev) => {
                            code { (rev) }
                            @if let Some(d) = a["revision_describe"].as_str() { br; (d) }
                            @let info = &a["revision_info"];
                            @if let Some(author) = info["author"].as_str() { br; "by " (author) }
                            @if let Some(t) = info["time_ms"].as_i64() { ", " (when(now, Some(t))) }
                            @if let Some(m) = info["message"].as_str() { pre.msg { (m) } }
                        }
                        None => { "nothing deployed yet" }
                    }
                }
                @if let Some(p) = a["pinned"].as_str() { dt { "Pinned" } dd { code { (short_id(p)) } } }
                dt { "Policy" } dd {
                    "auto " (yes(&policy["auto"])) ", self-heal " (yes(&policy["self_heal"])) ", prune " (yes(&policy["prune"]))
                    ", every " (policy["interval_seconds"].as_u64().unwrap_or(0)) " s, volumes " (text(policy, "volumes"))
                }
                dt { "Host policy" } dd {
                    (text(&a["host_policy"], "profile"))
                    @for e in a["host_policy"]["allow"].as_array().into_iter().flatten() { ", allows " code { (e.as_str().unwrap_or("")) } }
                    @for r in a["host_policy"]["allow_refs"].as_array().into_iter().flatten() { ", deploys ref " code { (r.as_str().unwrap_or("")) } }
                }
                @if let Some(t) = a["next_retry_at"].as_i64() { dt { "Next retry" } dd { (utc(t)) } }
            }
        }
        section aria-labelledby="h-conditions" {
            h2 #h-conditions { "Conditions" }
            @let conditions: Vec<&Value> = a["conditions"].as_array().into_iter().flatten().collect();
            @if conditions.is_empty() {
                p.quiet { "None: nothing needs attention." }
            } @else {
                ul.conditions {
                    @for c in conditions {
                        li data-condition=(text(c, "kind")) { strong { (text(c, "kind")) } ": " span.pre { (text(c, "message")) } }
                    }
                }
            }
        }
        section aria-labelledby="h-resources" {
            h2 #h-resources { "Resources" }
            @if let Some(e) = a["resources_error"].as_str() { (error(e)) }
            ul.tree {
                @for r in a["resources"].as_array().into_iter().flatten() {
                    li data-service=(text(r, "service")) {
                        span.kind { "service" } " " strong { (text(r, "service")) }
                        ul { li data-container=(text(r, "container")) {
                            span.kind { "container" } " " code { (text(r, "container")) } " "
                            (health_badge(text(r, "health")))
                            @let state = r["state"].as_str().unwrap_or("absent");
                            " " span.state { (state) }
                            @if text(r, "message") != state { " · " (text(r, "message")) }
                            " · restarts " (r["restarts"].as_i64().unwrap_or(0))
                            " · image " code { (text(r, "image")) }
                        } }
                    }
                }
                @for n in a["networks"].as_array().into_iter().flatten() {
                    li data-network=(text(n, "name")) {
                        span.kind { "network" } " " code { (text(n, "name")) } " "
                        @if n["exists"] == Value::Bool(true) { "exists (" (text(n, "driver")) ")" } @else { span.warn { "missing" } }
                        @if n["external"] == Value::Bool(true) { " · external" }
                    }
                }
            }
            @let volumes: Vec<&Value> = a["volumes"].as_array().into_iter().flatten().collect();
            @if !volumes.is_empty() {
                h3 { "Volumes (data)" }
                table.volumes {
                    thead { tr { th scope="col" { "Volume" } th scope="col" { "Data policy" } th scope="col" { "Used by" } th scope="col" { "Last backup" } } }
                    tbody {
                        @for v in volumes {
                            tr data-volume=(text(v, "name")) {
                                td data-label="Volume" { code { (text(v, "name")) } @if v["exists"] != Value::Bool(true) { " " span.warn { "missing" } } }
                                td data-label="Data policy" { span.policy { (text(v, "policy")) } }
                                td data-label="Used by" { (v["used_by"].as_array().map(|u| u.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                td data-label="Last backup" {
                                    @let b = &v["last_backup"];
                                    @if b.is_object() {
                                        (when(now, b["created_at"].as_i64())) " · " (bytes(b["bytes"].as_u64().unwrap_or(0))) " · " code { (text(b, "id")) }
                                    } @else { "none yet" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-revisions" {
            h2 #h-revisions { "Revisions" }
            @let revs = deployed_revisions(a);
            @if revs.is_empty() { p.quiet { "Nothing deployed yet." } }
            ol.revisions {
                @for (r, t) in &revs {
                    li { code title=(r) { (short_id(r)) } " deployed " (when(now, Some(*t)))
                        @if a["revision"].as_str() == Some(r.as_str()) { " " strong { "(running)" } } }
                }
            }
            p { a href={"/apps/" (text(a, "name")) "/history"} { "Every operation →" } }
        }
    }
}

fn yes(v: &Value) -> &'static str {
    if v == &Value::Bool(true) {
        "on"
    } else {
        "off"
    }
}

fn verb_sign(verb: &str) -> (&'static str, &'static str) {
    match verb {
        "create" => ("+", "add"),
        "remove" => ("−", "del"),
        "recreate" => ("~", "chg"),
        "start" => ("▶", "chg"),
        "pull" => ("↓", "chg"),
        "back up" => ("⎘", "chg"),
        "restore" => ("⎗", "chg"),
        _ => ("•", "chg"),
    }
}

/// The diff's live part: the plan (what, why) and desired against live.
pub(crate) fn diff(d: &Value) -> Markup {
    let steps: Vec<&Value> = d["steps"].as_array().into_iter().flatten().collect();
    let plan = &d["plan"];
    html! {
        p.status {
            "Revision " code title=(text(d, "revision")) { (short_id(text(d, "revision"))) } " " (text(d, "revision_describe")) ": "
            @if d["in_sync"] == Value::Bool(true) {
                (sync_badge("Synced")) " nothing to do"
            } @else {
                (sync_badge("OutOfSync")) " " (steps.len()) " action(s) planned"
            }
        }
        section aria-labelledby="h-plan" {
            h2 #h-plan { "Plan" }
            @if steps.is_empty() { p.quiet { "No action: the host matches the repository." } }
            ol.plan {
                @for s in &steps {
                    @let (sign, class) = verb_sign(text(s, "verb"));
                    li class=(class) data-step=(text(s, "text")) {
                        span.sign aria-hidden="true" { (sign) } " " strong { (text(s, "text")) } " — " span.reason { (text(s, "reason")) }
                    }
                }
            }
            @for o in plan["orphans_kept"].as_array().into_iter().flatten() {
                p.note { "Kept (prune is off): " code { (o.as_str().unwrap_or("")) } }
            }
            @for n in plan["notes"].as_array().into_iter().flatten() {
                p.note { (n.as_str().unwrap_or("")) }
            }
        }
        section aria-labelledby="h-cmp" {
            h2 #h-cmp { "Desired and live" }
            @for c in d["comparisons"].as_array().into_iter().flatten() {
                @let fields: Vec<&Value> = c["fields"].as_array().into_iter().flatten().collect();
                @let differs = fields.iter().any(|f| f["differs"] == Value::Bool(true));
                details.cmp open[differs] data-resource=(text(c, "resource")) {
                    summary {
                        code { (text(c, "resource")) } " "
                        @if differs { span.badge.warn { span.shape aria-hidden="true" { "◆" } " differs" } }
                        @else { span.badge.ok { span.shape aria-hidden="true" { "✓" } " same" } }
                    }
                    table.sbs {
                        thead { tr { th scope="col" { "Setting" } th scope="col" { "Desired (repository)" } th scope="col" { "Live (host)" } } }
                        tbody {
                            @for f in fields {
                                tr.differs[f["differs"] == Value::Bool(true)] {
                                    th scope="row" { (text(f, "name")) @if f["differs"] == Value::Bool(true) { span.sr { " (differs)" } } }
                                    td { (f["desired"].as_str().unwrap_or("—")) }
                                    td { (f["live"].as_str().unwrap_or("—")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The history's live part: operations with every action.
pub(crate) fn history(ops: &Value, now: i64) -> Markup {
    let ops: Vec<&Value> = ops.as_array().into_iter().flatten().collect();
    html! {
        @if ops.is_empty() { p.quiet { "No operation yet." } }
        ol.history {
            @for op in ops {
                @let actions: Vec<&Value> = op["actions"].as_array().into_iter().flatten().collect();
                @let duration = match (op["started_at"].as_i64(), op["finished_at"].as_i64()) { (Some(s), Some(f)) => format!("{:.1} s", (f - s) as f64 / 1000.0), _ => "running".into() };
                li.op data-operation=(op["id"]) {
                    details open[op["result"] == "failed"] {
                        summary {
                            strong { "#" (op["id"]) } " " (result_badge(op["result"].as_str())) " "
                            (text(op, "trigger")) " · "
                            @if let Some(r) = op["revision"].as_str() { code title=(r) { (short_id(r)) } " · " }
                            (when(now, op["started_at"].as_i64())) " · " (duration) " · " (actions.len()) " action(s)"
                        }
                        @if let Some(e) = op["error"].as_str() { pre.err { (e) } }
                        @let notes: Vec<&str> = op["notes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                        @for n in notes { p.note { (n) } }
                        @if !actions.is_empty() {
                            table.actions {
                                thead { tr { th scope="col" { "Action" } th scope="col" { "Reason" } th scope="col" { "Took" } th scope="col" { "Result" } } }
                                tbody {
                                    @for a in actions {
                                        tr {
                                            td { (text(a, "resource")) }
                                            td { (text(a, "reason")) }
                                            td { (a["duration_ms"].as_i64().unwrap_or(0)) " ms" }
                                            td { @match a["error"].as_str() { Some(e) => { span.err { "✗ " (e) } } None => { "✓ done" } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_cut_by_characters() {
        let long = "é".repeat(40);
        assert_eq!(short_id(&long), "é".repeat(10));
        assert_eq!(short_id("sha256:ééééééééééééé"), "éééééééééé");
        assert_eq!(short_id(&"a".repeat(40)), "aaaaaaaaaa");
        assert_eq!(short_id("v1.2"), "v1.2");
    }
    use serde_json::json;

    #[test]
    fn dates_and_ages_read_plainly() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_149_205_000), "2026-12-01 18:20:05 UTC");
        assert_eq!(ago(100_000, 95_000), "5 s ago");
        assert_eq!(ago(10 * 60_000, 0), "10 min ago");
        assert_eq!(ago(3 * 3_600_000, 0), "3 h ago");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(author_name("Jane Doe <jane@example.com>"), "Jane Doe");
        assert_eq!(author_name("ops"), "ops");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn overview_filters_and_escapes() {
        let apps = json!({"apps": [
            {"name": "blog", "sync": "Synced", "health": "Healthy", "host": "local", "source": "git <x>"},
            {"name": "shop", "sync": "OutOfSync", "health": "Degraded", "host": "edge", "source": "svn"},
        ]});
        let all = overview(&apps, &Filter::default(), 0).into_string();
        assert!(all.contains("href=\"/apps/blog\"") && all.contains("href=\"/apps/shop\""));
        assert!(all.contains("git &lt;x&gt;"), "escaped: {all}");
        let f = Filter {
            sync: Some("OutOfSync".into()),
            ..Filter::default()
        };
        let some = overview(&apps, &f, 0).into_string();
        assert!(!some.contains("href=\"/apps/blog\"") && some.contains("href=\"/apps/shop\""));
        let f = Filter {
            q: Some("BLO".into()),
            ..Filter::default()
        };
        assert!(overview(&apps, &f, 0)
            .into_string()
            .contains("href=\"/apps/blog\""));
        // Counts cover every app, whatever the filter.
        assert!(some.contains("data-count=\"Synced\">1<"));
    }
}
