//! The pages, as maud templates over the API's values (the `views` types, so the UI
//! shows exactly what `mooring app …` and the API show). Status is always text plus a shape, never
//! colour alone. Each page has a live part (`#live`) that the script re-fetches when
//! the event stream says something changed.

use super::Filter;
use crate::views::{AppDetail, AppSummary, DiffView, HostView};
use maud::{html, Markup, DOCTYPE};
use mooring_core::{Health, SyncState};
use mooring_store::{OpResult, OperationRecord, Role};

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
    Logs,
}

/// What a container's health message says beyond its state (`running, healthy` next
/// to `running` is `healthy`); `None` when nothing.
fn beyond_state<'a>(message: &'a str, state: &str) -> Option<&'a str> {
    let rest = message
        .strip_prefix(state)
        .map(|r| r.trim_start_matches([',', ' ']))
        .unwrap_or(message);
    (!rest.is_empty()).then_some(rest)
}

/// A revision once: its description when that already names it (`main@3f2a…`), else
/// the short id and the description; the full id on hover.
fn revision_label(id: &str, describe: &str) -> Markup {
    html! {
        @if !describe.is_empty() && describe.contains(short_id(id)) {
            code title=(id) { (describe) }
        } @else {
            code title=(id) { (short_id(id)) } @if !describe.is_empty() { " " (describe) }
        }
    }
}

/// A revision on probation (`sync.rollback`), in the app's summary.
fn probation(p: &mooring_store::Probation) -> Markup {
    html! {
        dt { "On probation" } dd data-probation=(p.revision) {
            code { (short_id(&p.revision)) } " until " (utc(p.until))
            ": rolled back to " code { (short_id(&p.good)) } " unless Healthy by then"
        }
    }
}

fn short_id(rev: &str) -> &str {
    mooring_core::short_revision(rev)
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
fn sync_look(sync: SyncState) -> (&'static str, &'static str) {
    match sync {
        SyncState::Synced => ("✓", "ok"),
        SyncState::OutOfSync => ("◆", "warn"),
        SyncState::Unknown => ("?", "unknown"),
    }
}

fn health_look(health: Health) -> (&'static str, &'static str) {
    match health {
        Health::Healthy => ("●", "ok"),
        Health::Progressing => ("◐", "busy"),
        Health::Degraded => ("▲", "bad"),
        Health::Missing => ("○", "bad"),
        Health::Suspended => ("■", "unknown"),
        Health::Unknown => ("?", "unknown"),
    }
}

fn result_look(result: Option<OpResult>) -> (&'static str, &'static str, &'static str) {
    match result {
        Some(OpResult::Succeeded) => ("✓", "ok", "succeeded"),
        Some(OpResult::NoOp) => ("=", "unknown", "no change"),
        Some(OpResult::Failed) => ("✗", "bad", "failed"),
        Some(OpResult::Interrupted) => ("!", "warn", "interrupted"),
        None => ("…", "busy", "running"),
    }
}

fn sync_badge(sync: SyncState) -> Markup {
    let (shape, class) = sync_look(sync);
    html! {
        span class={"badge " (class)} data-sync=(sync) {
            span.shape aria-hidden="true" { (shape) } " " (sync)
        }
    }
}

/// The health as a shape and a word.
fn health_badge(health: Health) -> Markup {
    let (shape, class) = health_look(health);
    html! {
        span class={"badge " (class)} data-health=(health) {
            span.shape aria-hidden="true" { (shape) } " " (health)
        }
    }
}

fn result_badge(result: Option<OpResult>) -> Markup {
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

fn matches(app: &AppSummary, f: &Filter) -> bool {
    let eq = |want: &Option<String>, got: &str| {
        want.as_deref()
            .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(got))
    };
    let q = f.q.as_deref().unwrap_or("").trim().to_lowercase();
    let s = &app.status;
    let found = q.is_empty()
        || [
            s.name.as_str(),
            &s.source,
            s.revision_describe.as_deref().unwrap_or(""),
            &app.host,
            &app.path,
        ]
        .iter()
        .any(|t| t.to_lowercase().contains(&q));
    found
        && eq(&f.sync, s.sync.as_str())
        && eq(&f.health, s.health.as_str())
        && eq(&f.host, &app.host)
}

const SYNCS: [SyncState; 3] = [SyncState::Synced, SyncState::OutOfSync, SyncState::Unknown];
const HEALTHS: [Health; 6] = [
    Health::Healthy,
    Health::Progressing,
    Health::Degraded,
    Health::Missing,
    Health::Suspended,
    Health::Unknown,
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
pub(crate) fn overview_frame(apps: &[AppSummary], f: &Filter, live: Markup) -> Markup {
    let mut hosts: Vec<&str> = apps.iter().map(|a| a.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    html! {
        h1 { "Apps" }
        form.filters method="get" action="/" role="search" {
            label { "Search " input type="search" name="q" value=(f.q.as_deref().unwrap_or("")) placeholder="name, source, revision"; }
            (select("sync", "Sync", &SYNCS.map(SyncState::as_str), f.sync.as_deref()))
            (select("health", "Health", &HEALTHS.map(Health::as_str), f.health.as_deref()))
            (select("host", "Host", &hosts, f.host.as_deref()))
            button type="submit" { "Filter" }
        }
        div #live { (live) }
    }
}

/// Rows on one page of the overview: the first screen stays small (about 45 KB of
/// rows) however many apps there are.
pub(crate) const PAGE_ROWS: usize = 100;

/// The overview's live part: counts, then one compact row per app that passes the
/// filter, grouped by source (a monorepo's apps share one heading), [`PAGE_ROWS`] rows
/// a page; apps that are failing come first, so the first page shows what needs a person.
pub(crate) fn overview(all: &[AppSummary], hosts: &[HostView], f: &Filter, now: i64) -> Markup {
    let mut shown: Vec<&AppSummary> = all.iter().filter(|a| matches(a, f)).collect();
    shown.sort_by(|a, b| {
        (failure(a).is_none(), &a.status.source, a.name()).cmp(&(
            failure(b).is_none(),
            &b.status.source,
            b.name(),
        ))
    });
    let total = shown.len();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let page = f.page().min(pages);
    let first = (page - 1) * PAGE_ROWS;
    let rows = &shown[first..total.min(first + PAGE_ROWS)];
    let mut groups: Vec<(&str, Vec<&AppSummary>)> = Vec::new();
    for &a in rows {
        match groups.last_mut() {
            Some((src, list)) if *src == a.status.source => list.push(a),
            _ => groups.push((&a.status.source, vec![a])),
        }
    }
    html! {
        // A host that does not answer, or answers as another Engine, comes first.
        @for h in hosts {
            p.host-alert.bad role="alert" {
                "✗ Host " b { (h.name) } " (" (h.endpoint) ") · " (format!("{:?}", h.condition))
                " — apps: " (h.apps.join(", "))
                @if let Some(m) = &h.message { small.err { (first_line(m)) } }
            }
        }
        ul.counts aria-label="Apps per status" {
            li { a href="/" { b { (all.len()) } " apps" } }
            @for s in SYNCS {
                @let n = all.iter().filter(|a| a.status.sync == s).count();
                @if n > 0 { li { a href={"/?sync=" (s)} { (sync_badge(s)) " " b data-count=(s) { (n) } } } }
            }
            @for h in HEALTHS {
                @let n = all.iter().filter(|a| a.status.health == h).count();
                @if n > 0 { li { a href={"/?health=" (h)} { (health_badge(h)) " " b data-count=(h) { (n) } } } }
            }
            @let failing = all.iter().filter(|a| failure(a).is_some()).count();
            @if failing > 0 {
                li { span.badge.bad { span.shape aria-hidden="true" { "✗" } " Failing" } " " b data-count="Failing" { (failing) } }
            }
        }
        @if pages > 1 { (pager(f, page, pages, first, rows.len(), total)) }
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
                        @for a in list { (app_row(a, common.and_then(|c| c.status.revision.as_deref()), now)) }
                    }
                }
            }
            @if pages > 1 { (pager(f, page, pages, first, rows.len(), total)) }
        }
    }
}

/// `Apps 101–200 of 5000 · ← Previous · Next →`, keeping the filters.
fn pager(f: &Filter, page: usize, pages: usize, first: usize, n: usize, total: usize) -> Markup {
    let query = f.query();
    let href = |p: usize| {
        if query.is_empty() {
            format!("/?page={p}")
        } else {
            format!("/?{query}&page={p}")
        }
    };
    html! {
        nav.pager aria-label="Pages" {
            "Apps " (first + 1) "–" (first + n) " of " (total) " · page " (page) " of " (pages)
            @if page > 1 { " · " a rel="prev" href=(href(page - 1)) { "← Previous" } }
            @if page < pages { " · " a rel="next" href=(href(page + 1)) { "Next →" } }
        }
    }
}

fn marks(a: &AppSummary) -> Markup {
    html! {
        @if a.status.pinned.is_some() { i.mark { "pinned" } }
        @if a.manual() { i.mark { "manual" } }
    }
}

/// The deployed revision's message: the recorded one, else the subject in its
/// description (`main@1a2b3c4 (subject)`).
fn revision_message(a: &AppSummary) -> Option<&str> {
    a.revision_info
        .as_ref()
        .and_then(|i| i.message.as_deref())
        .map(first_line)
        .or_else(|| {
            let d = a.status.revision_describe.as_deref()?;
            let (_, subject) = d.split_once(" (")?;
            subject.strip_suffix(')')
        })
}

fn revision(a: &AppSummary, now: i64) -> Markup {
    let info = a.revision_info.clone().unwrap_or_default();
    html! {
        @match a.status.revision.as_deref() {
            Some(rev) => {
                b { (short_id(rev)) }
                @if let Some(m) = revision_message(a) { " " (clip(m, 60)) }
                @if info.author.is_some() || info.time_ms.is_some() {
                    small {
                        (info.author.as_deref().map(author_name).unwrap_or(""))
                        @if let Some(t) = info.time_ms { " · " (ago(now, t)) }
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
fn common_revision<'a>(apps: &[&'a AppSummary]) -> Option<&'a AppSummary> {
    let mut counts: std::collections::HashMap<&str, (&'a AppSummary, usize)> = Default::default();
    for a in apps {
        if let Some(rev) = a.status.revision.as_deref() {
            counts.entry(rev).or_insert((a, 0)).1 += 1;
        }
    }
    counts
        .into_values()
        .filter(|(_, n)| *n >= 2)
        .max_by_key(|(a, n)| (*n, std::cmp::Reverse(a.name())))
        .map(|(a, _)| a)
}

/// The first condition saying the app is failing (see `ConditionKind::is_failure`).
fn failure(a: &AppSummary) -> Option<&mooring_core::Condition> {
    a.status.conditions.iter().find(|c| c.kind.is_failure())
}

fn app_row(a: &AppSummary, common: Option<&str>, now: i64) -> Markup {
    let name = a.name();
    let s = &a.status;
    let (sync_shape, sync_class) = sync_look(s.sync);
    let (health_shape, health_class) = health_look(s.health);
    let failing = failure(a);
    html! {
        tr data-failing=[failing.map(|c| c.kind.as_str())] {
            td { a href={"/apps/" (name)} { (name) } (marks(a)) }
            @match failing {
                // A failure stands out: red, its kind and the first line of its message.
                Some(c) => td.bad {
                    "✗ " (s.sync.as_str()) " · " (c.kind.as_str())
                    small.err { (first_line(&c.message)) }
                },
                None => (status_cell(sync_class, sync_shape, s.sync.as_str())),
            }
            (status_cell(health_class, health_shape, s.health.as_str()))
            td {
                @match s.revision.as_deref() {
                    Some(rev) if Some(rev) == common => b { (short_id(rev)) },
                    _ => (revision(a, now)),
                }
            }
            td { (a.host) }
            @if let Some(op) = &a.latest_operation {
                @let (shape, class, word) = result_look(op.result);
                td class=(class) {
                    (shape) " " (word)
                    small { (op.trigger) @if let Some(b) = &op.requested_by { " by " (b) } " · " (ago(now, op.started_at)) }
                    @if let Some(e) = &op.error { small.err { (first_line(e)) } }
                }
            } @else { td { "—" } }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The frame of an app's pages: title, status, tabs, actions, progress.
pub(crate) fn app_frame(app: &AppDetail, page: &Page, tab: Tab, live: Markup) -> Markup {
    let name = app.summary.name();
    let tabs = [
        (Tab::Overview, "Overview", format!("/apps/{name}")),
        (Tab::Diff, "Diff", format!("/apps/{name}/diff")),
        (Tab::History, "History", format!("/apps/{name}/history")),
        (Tab::Logs, "Logs", format!("/apps/{name}/logs")),
    ];
    html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Apps" } " / " (name) }
        h1 { (name) }
        nav.tabs aria-label="App pages" {
            @for (t, label, href) in &tabs {
                a href=(href) aria-current=[(*t == tab).then_some("page")] { (label) }
            }
        }
        // One menu on a phone (the script folds it there), a bar on wider screens.
        @if page.operator() {
            details #action-menu open {
                summary { "Actions" }
                (actions(app))
            }
        }
        section #progress aria-live="polite" hidden {}
        div #live { (live) }
        dialog #confirm {
            form method="dialog" {
                p #confirm-text {}
                div #confirm-plan hidden {}
                p #confirm-warning.warning hidden {}
                menu {
                    button value="cancel" type="submit" { "Cancel" }
                    button #confirm-ok value="ok" type="submit" { "Confirm" }
                }
            }
        }
    }
}

fn actions(app: &AppDetail) -> Markup {
    let name = app.summary.name();
    let current = app.summary.status.revision.as_deref();
    let older: Vec<(&str, i64)> = app
        .deployed_revisions()
        .into_iter()
        .filter(|(r, _)| Some(*r) != current)
        .collect();
    let written = app.written_volumes();
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
                        @for (r, _) in &older {
                            option value=(r) {
                                (short_id(r))
                                @if let Some(m) = app.revision_subjects.get(*r) { " " (clip(m, 50)) }
                            }
                        }
                    }
                }
                button type="submit" disabled[older.is_empty()] { "Rollback" }
            }
            @if app.summary.status.pinned.is_some() {
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

/// An app's live part: summary, conditions, resource tree, data, revisions
/// (`operator`: with the data's buttons).
pub(crate) fn app(a: &AppDetail, now: i64, operator: bool) -> Markup {
    let sum = &a.summary;
    let s = &sum.status;
    let policy = &sum.policy;
    let info = sum.revision_info.clone().unwrap_or_default();
    html! {
        section.summary aria-label="Status" {
            p.status {
                (sync_badge(s.sync)) " " (health_badge(s.health)) " " (marks(sum))
            }
            dl {
                dt { "Source" } dd { span.src { (s.source) } }
                @if let Some(r) = &sum.reference { dt { "Ref" } dd { code { (r) } } }
                @if !sum.path.is_empty() { dt { "Path" } dd { code { (sum.path) } } }
                dt { "Host" } dd { (sum.host) }
                dt { "Revision" } dd {
                    @match &s.revision {
                        Some(rev) => {
                            code { (rev) }
                            @if let Some(d) = &s.revision_describe { br; (d) }
                            @if let Some(author) = &info.author { br; "by " (author) }
                            @if let Some(t) = info.time_ms { ", " (when(now, Some(t))) }
                            @if let Some(m) = &info.message { pre.msg { (m) } }
                        }
                        None => { "nothing deployed yet" }
                    }
                }
                dt { "Last operation" } dd data-last-operation {
                    @match &sum.latest_operation {
                        Some(op) => {
                            (result_badge(op.result)) " " (op.trigger)
                            @if let Some(b) = &op.requested_by { " by " (b) }
                            " · " (when(now, Some(op.started_at)))
                            @if let Some(e) = &op.error { br; span.err.pre { (first_line(e)) } }
                        }
                        None => { "none yet" }
                    }
                }
                @if let Some(p) = &s.pinned { dt { "Pinned" } dd { code { (short_id(p)) } } }
                dt { "Policy" } dd {
                    "auto " (on_off(policy.auto)) ", self-heal " (on_off(policy.self_heal)) ", prune " (on_off(policy.prune))
                    ", every " (policy.interval_seconds) " s, volumes " (policy.volumes.as_str())
                }
                dt { "Host policy" } dd {
                    (sum.host_policy.profile)
                    @for e in &sum.host_policy.allow { ", allows " code { (e) } }
                    @for r in &sum.host_policy.allow_refs { ", deploys ref " code { (r) } }
                }
                @if let Some(t) = s.next_retry_at { dt { "Next retry" } dd { (utc(t)) } }
                @if let Some(p) = &s.probation { (probation(p)) }
            }
        }
        section aria-labelledby="h-conditions" {
            h2 #h-conditions { "Conditions" }
            @if s.conditions.is_empty() {
                p.quiet { "None: nothing needs attention." }
            } @else {
                ul.conditions {
                    @for c in &s.conditions {
                        li data-condition=(c.kind) { strong { (c.kind) } ": " span.pre { (c.message) } }
                    }
                }
            }
        }
        section aria-labelledby="h-resources" {
            h2 #h-resources { "Resources" }
            @if let Some(e) = &a.resources_error { (error(e)) }
            ul.tree {
                @for r in &a.resources {
                    li data-service=(r.service) {
                        span.kind { "service" } " " strong { (r.service) }
                        ul { li data-container=(r.container) {
                            span.kind { "container" } " " code { (r.container) } " "
                            (health_badge(r.health))
                            @let state = r.state.as_deref().unwrap_or("absent");
                            " " span.state { (state) }
                            @if let Some(more) = beyond_state(&r.message, state) { " · " (more) }
                            " · restarts " (r.restarts)
                            " · image " code { (r.image) }
                            @if let Some(id) = &r.image_id { " " code.id title=(id) { (short_id(id)) } }
                            @if !r.ports.is_empty() {
                                " · ports "
                                @for p in &r.ports {
                                    // A link to the published port on the host the page came from (the script sets it).
                                    a.port data-port=(published_port(p)) { (p) } " "
                                }
                            }
                            @if !r.volumes.is_empty() || !r.networks.is_empty() {
                                ul {
                                    @for v in &r.volumes { li data-mounts=(v) { span.kind { "volume" } " " code { (v) } } }
                                    @for n in &r.networks { li data-joins=(n) { span.kind { "network" } " " code { (n) } } }
                                }
                            }
                        } }
                    }
                }
                @for n in &a.networks {
                    li data-network=(n.name) {
                        span.kind { "network" } " " code { (n.name) } " "
                        @if n.exists { "exists (" (n.driver.as_deref().unwrap_or("")) ")" } @else { span.warn { "missing" } }
                        @if n.external { " · external" }
                    }
                }
            }
            @if !a.volumes.is_empty() {
                h3 { "Volumes (data)" }
                table.volumes {
                    thead { tr { th scope="col" { "Volume" } th scope="col" { "Data policy" } th scope="col" { "Used by" } th scope="col" { "Last backup" } } }
                    tbody {
                        @for v in &a.volumes {
                            @let vol = &v.volume;
                            tr data-volume=(vol.name) {
                                td data-label="Volume" { code { (vol.name) } @if !vol.exists { " " span.warn { "missing" } } }
                                td data-label="Data policy" { span.policy { (vol.policy.as_str()) } }
                                td data-label="Used by" { (vol.used_by.join(", ")) }
                                td data-label="Last backup" {
                                    @if let Some(b) = &v.last_backup {
                                        (when(now, Some(b.created_at))) " · " (bytes(u64::try_from(b.bytes).unwrap_or(0))) " · " code { (b.id) }
                                    } @else { "none yet" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (data(a, now, operator))
        section aria-labelledby="h-revisions" {
            h2 #h-revisions { "Revisions" }
            @let revs = a.deployed_revisions();
            @if revs.is_empty() { p.quiet { "Nothing deployed yet." } }
            ol.revisions {
                @for (r, t) in &revs {
                    li { code title=(r) { (short_id(r)) }
                        @if let Some(m) = a.revision_subjects.get(*r) { " " span.subject { (clip(m, 72)) } }
                        " deployed " (when(now, Some(*t)))
                        @if s.revision.as_deref() == Some(*r) { " " strong { "(running)" } } }
                }
            }
            p { a href={"/apps/" (sum.name()) "/history"} { "Every operation →" } }
        }
    }
}

/// The app's backups, newest first, with Back up now, Verify and Restore for an
/// operator (the API's backup routes; a restore asks what the CLI asks: a volume that
/// holds data is only written over when the box says so).
fn data(a: &AppDetail, now: i64, operator: bool) -> Markup {
    let name = a.summary.name();
    html! {
        section aria-labelledby="h-backups" {
            h2 #h-backups { "Backups" }
            @if operator && !a.volumes.is_empty() {
                form.action.inline data-action="backups" data-busy="Backing up" data-done="Backup"
                    data-confirm={"Back up every volume of " (name) " now? Containers that write to a volume are stopped while it is copied and started again."} {
                    button type="submit" { "Back up now" }
                }
            }
            @if a.backups.is_empty() {
                p.quiet { "No backup yet." }
            } @else {
                table.backups {
                    thead { tr {
                        th scope="col" { "Backup" } th scope="col" { "Volume" } th scope="col" { "Taken" }
                        th scope="col" { "Why" } th scope="col" { "Size" }
                        @if operator { th scope="col" { "Actions" } }
                    } }
                    tbody {
                        @for b in &a.backups {
                            tr data-backup=(b.id) {
                                td data-label="Backup" { code { (b.id) } }
                                td data-label="Volume" { code { (b.volume) } }
                                td data-label="Taken" {
                                    (when(now, Some(b.created_at)))
                                    @if let Some(r) = &b.revision { small { "data of " code title=(r) { (short_id(r)) } } }
                                }
                                td data-label="Why" { (b.reason) }
                                td data-label="Size" { (bytes(u64::try_from(b.bytes).unwrap_or(0))) small { (b.files) " files · archive " (bytes(u64::try_from(b.archive_size).unwrap_or(0))) } }
                                @if operator {
                                    td data-label="Actions" {
                                        form.action.inline data-action={"backups/" (b.id) "/verify"} data-busy="Verifying" data-done="Verify" {
                                            button type="submit" { "Verify" }
                                        }
                                        form.action.inline data-action={"backups/" (b.id) "/restore"} data-busy="Restoring" data-done="Restore"
                                            data-confirm={"Restore backup " (b.id) " into volume " (b.volume) "? The containers that use it are stopped while it is copied in and started again."}
                                            data-warning="A volume that holds data is refused unless “Write over its files” is checked; then files of the backup replace the volume's, and files not in the backup stay." {
                                            label { input type="checkbox" name="force"; " Write over its files" }
                                            button type="submit" { "Restore" }
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

/// The host port of `8080:80/tcp` or `127.0.0.1:8080:80/tcp` (the first of a range).
fn published_port(p: &str) -> &str {
    let mut parts = p.rsplitn(3, ':');
    let _target = parts.next();
    let published = parts.next().unwrap_or("");
    published.split('-').next().unwrap_or("")
}

fn on_off(v: bool) -> &'static str {
    if v {
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
pub(crate) fn diff(d: &DiffView) -> Markup {
    html! {
        p.status {
            "Revision " (revision_label(&d.revision, &d.revision_describe)) ": "
            @if d.in_sync {
                (sync_badge(SyncState::Synced)) " nothing to do"
            } @else {
                (sync_badge(SyncState::OutOfSync)) " " (d.steps.len()) " action(s) planned"
            }
        }
        section aria-labelledby="h-plan" {
            h2 #h-plan { "Plan" }
            @if d.steps.is_empty() {
                p.quiet { "No action: the host matches the repository." }
            } @else {
                ol.plan {
                    @for s in &d.steps {
                        @let (sign, class) = verb_sign(&s.verb);
                        li class=(class) data-step=(s.text) {
                            span.sign aria-hidden="true" { (sign) } " " strong { (s.text) } " — " span.reason { (s.reason) }
                        }
                    }
                }
            }
            @for o in &d.plan.orphans_kept {
                p.note { "Kept (prune is off): " code { (o) } }
            }
            @for n in &d.plan.notes {
                p.note { (n) }
            }
        }
        section aria-labelledby="h-cmp" {
            h2 #h-cmp { "Desired and live" }
            @for c in &d.comparisons {
                @let differs = c.fields.iter().any(|f| f.differs);
                details.cmp open[differs] data-resource=(c.resource) {
                    summary {
                        code { (c.resource) } " "
                        @if differs { span.badge.warn { span.shape aria-hidden="true" { "◆" } " differs" } }
                        @else { span.badge.ok { span.shape aria-hidden="true" { "✓" } " same" } }
                    }
                    table.sbs {
                        thead { tr { th scope="col" { "Setting" } th scope="col" { "Desired (repository)" } th scope="col" { "Live (host)" } } }
                        tbody {
                            @for f in &c.fields {
                                tr.differs[f.differs] {
                                    th scope="row" { (f.name) @if f.differs { span.sr { " (differs)" } } }
                                    td { (f.desired.as_deref().unwrap_or("—")) }
                                    td { (f.live.as_deref().unwrap_or("—")) }
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
/// The logs tab: a service picker and the containers' lines, streamed into the page
/// by the script from the API's logs route (following new lines); without the
/// script, a link to that route's plain text.
pub(crate) fn logs(app: &AppDetail, service: Option<&str>, tail: u32) -> Markup {
    let name = app.summary.name();
    let mut src = format!("/api/v1/apps/{name}/logs?tail={tail}");
    if let Some(s) = service {
        src.push_str(&format!("&service={s}"));
    }
    html! {
        form.logs-picker method="get" {
            label {
                "Service "
                select name="service" {
                    option value="" selected[service.is_none()] { "all" }
                    @for r in &app.resources {
                        option value=(r.service) selected[service == Some(r.service.as_str())] { (r.service) }
                    }
                }
            }
            label { " Last lines " input name="tail" type="number" min="1" max="10000" value=(tail); }
            " " button type="submit" { "Show" }
        }
        pre #log-lines.logs data-src={ (src) "&follow=true" } aria-live="off" { "Loading…" }
        noscript { p { a href=(src) { "The last lines as text" } } }
    }
}

pub(crate) fn history(
    ops: &[OperationRecord],
    subjects: &std::collections::BTreeMap<String, String>,
    now: i64,
) -> Markup {
    html! {
        @if ops.is_empty() { p.quiet { "No operation yet." } }
        ol.history {
            @for op in ops {
                @let duration = match op.finished_at { Some(f) => format!("{:.1} s", (f - op.started_at) as f64 / 1000.0), None => "running".into() };
                li.op data-operation=(op.id) {
                    details open[op.result == Some(OpResult::Failed)] {
                        summary {
                            strong { "#" (op.id) } " " (result_badge(op.result)) " "
                            (op.trigger) @if let Some(b) = &op.requested_by { " by " span.by { (b) } } " · "
                            @if let Some(r) = &op.revision {
                                code title=(r) { (short_id(r)) }
                                @if let Some(m) = subjects.get(r) { " " span.subject { (clip(m, 60)) } }
                                " · "
                            }
                            (when(now, Some(op.started_at))) " · " (duration) " · " (op.actions.len()) " action(s)"
                        }
                        @if let Some(e) = &op.error { pre.err { (e) } }
                        @for n in &op.notes { p.note { (n) } }
                        @if !op.actions.is_empty() {
                            table.actions {
                                thead { tr { th scope="col" { "Action" } th scope="col" { "Reason" } th scope="col" { "Took" } th scope="col" { "Result" } } }
                                tbody {
                                    @for a in &op.actions {
                                        tr {
                                            td { (a.resource) }
                                            td { (a.reason) }
                                            td { (a.duration_ms) " ms" }
                                            td { @match &a.error { Some(e) => { span.err { "✗ " (e) } } None => { "✓ done" } } }
                                        }
                                        @if let Some(out) = &a.output {
                                            tr.output {
                                                td colspan="4" {
                                                    details {
                                                        summary { "Output of " (a.resource) }
                                                        pre { (out) }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let app = |name: &str, sync, health, host: &str, source: &str| AppSummary {
            status: mooring_store::AppStatus {
                sync,
                health,
                ..mooring_store::AppStatus::unknown(name, source, 0)
            },
            revision_info: None,
            host: host.into(),
            path: String::new(),
            reference: None,
            policy: crate::views::SyncPolicyView {
                auto: true,
                self_heal: true,
                prune: false,
                interval_seconds: 60,
                volumes: mooring_core::DataPolicy::Protect,
            },
            host_policy: crate::views::HostPolicyView {
                profile: "baseline".into(),
                allow: vec![],
                allow_refs: vec![],
            },
            latest_operation: None,
        };
        let apps = [
            app(
                "blog",
                SyncState::Synced,
                Health::Healthy,
                "local",
                "git <x>",
            ),
            app(
                "shop",
                SyncState::OutOfSync,
                Health::Degraded,
                "edge",
                "svn",
            ),
        ];
        let all = overview(&apps, &[], &Filter::default(), 0).into_string();
        assert!(all.contains("href=\"/apps/blog\"") && all.contains("href=\"/apps/shop\""));
        assert!(all.contains("git &lt;x&gt;"), "escaped: {all}");
        let f = Filter {
            sync: Some("OutOfSync".into()),
            ..Filter::default()
        };
        let some = overview(&apps, &[], &f, 0).into_string();
        assert!(!some.contains("href=\"/apps/blog\"") && some.contains("href=\"/apps/shop\""));
        let f = Filter {
            q: Some("BLO".into()),
            ..Filter::default()
        };
        assert!(overview(&apps, &[], &f, 0)
            .into_string()
            .contains("href=\"/apps/blog\""));
        // Counts cover every app, whatever the filter.
        assert!(some.contains("data-count=\"Synced\">1<"));
        assert!(!all.contains("Failing"));

        // A failing app stands out: red, the condition's kind and its first line.
        let mut broken = app("api", SyncState::Unknown, Health::Healthy, "local", "git");
        broken.status.conditions.push(mooring_core::ConditionKind::RenderError.with(
            "compose.yaml:5:12: services.web.build.dockerfile: Dockerfile does not exist in .\nmore",
        ));
        let page = overview(&[broken.clone()], &[], &Filter::default(), 0).into_string();
        assert!(page.contains("data-failing=\"RenderError\""), "{page}");
        assert!(page.contains("<td class=\"bad\">✗ Unknown · RenderError<small class=\"err\">compose.yaml:5:12: services.web.build.dockerfile: Dockerfile does not exist in .</small>"), "{page}");
        assert!(page.contains("data-count=\"Failing\">1<"), "{page}");

        // Pages of rows: the failing app first, every count over all the apps, links
        // that keep the filters.
        let mut many: Vec<AppSummary> = (0..250)
            .map(|i| {
                app(
                    &format!("app{i:03}"),
                    SyncState::Synced,
                    Health::Healthy,
                    "local",
                    "git",
                )
            })
            .collect();
        many.push(broken);
        let rows = |html: &str| {
            html.matches("<tr data-failing").count()
                + html.matches("<tr><td><a href=\"/apps/").count()
        };
        let first = overview(&many, &[], &Filter::default(), 0).into_string();
        assert_eq!(rows(&first), PAGE_ROWS, "{first}");
        assert!(first.contains("Apps 1–100 of 251 · page 1 of 3"), "{first}");
        assert!(
            first.find("href=\"/apps/api\"") < first.find("href=\"/apps/app000\""),
            "failing first"
        );
        assert!(first.contains("data-count=\"Healthy\">251<"), "{first}");
        let f = Filter {
            q: Some("app".into()),
            page: Some("3".into()),
            ..Filter::default()
        };
        let last = overview(&many, &[], &f, 0).into_string();
        assert!(last.contains("Apps 201–250 of 250 · page 3 of 3"), "{last}");
        assert!(last.contains("href=\"/?q=app&amp;page=2\""), "{last}");
        assert!(!last.contains("rel=\"next\""), "{last}");
        // A page past the end, or not a number, shows a page that exists.
        let f = Filter {
            page: Some("99".into()),
            ..Filter::default()
        };
        assert!(overview(&many, &[], &f, 0)
            .into_string()
            .contains("page 3 of 3"));
        let f = Filter {
            page: Some("x".into()),
            ..Filter::default()
        };
        assert!(overview(&many, &[], &f, 0)
            .into_string()
            .contains("page 1 of 3"));
    }

    #[test]
    fn a_probation_says_until_when_and_to_what() {
        let p = mooring_store::Probation {
            revision: "7b23eb23de9a4c1d8e0f7a6b5c4d3e2f1a0b9c8d".into(),
            good: "c3dbf919e2f94a5b6c7d8e9f0a1b2c3d4e5f6a7b".into(),
            until: 1_796_428_800_000,
            failed: None,
            backups: vec![],
        };
        let html = probation(&p).into_string();
        assert!(
            html.contains("7b23eb23de9a")
                && html.contains("2026-12-05")
                && html.contains("rolled back to <code>c3dbf919e2f9</code>"),
            "{html}"
        );
    }

    #[test]
    fn details_say_things_once() {
        assert_eq!(published_port("8080:80/tcp"), "8080");
        assert_eq!(published_port("127.0.0.1:8000-8010:80/tcp"), "8000");
        assert_eq!(beyond_state("running, healthy", "running"), Some("healthy"));
        assert_eq!(beyond_state("running", "running"), None);
        assert_eq!(
            beyond_state("exited with code 1", "exited"),
            Some("with code 1")
        );
        assert_eq!(
            beyond_state("container does not exist", "absent"),
            Some("container does not exist")
        );
        let id = "3f2a9c1d7e5b4a3c2b1a0f9e8d7c6b5a4f3e2d1c";
        assert_eq!(
            revision_label(id, "main@3f2a9c1d7e5b").into_string(),
            format!("<code title=\"{id}\">main@3f2a9c1d7e5b</code>"),
            "printed once, the full id on hover"
        );
        let both = revision_label(id, "v1.2").into_string();
        assert!(
            both.contains("v1.2") && both.contains(short_id(id)),
            "{both}"
        );
    }
}
