//! The web UI in a real browser: headless Chromium through chromedriver (WebDriver,
//! driven by fantoccini) against a real `mooring serve` with real apps on the machine's
//! Docker and a Git repository served by `git daemon`. Screenshots of the main pages
//! land in `target/ui-screenshots/`.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use mooring_testkit::browser::{is_png, save_screenshot, Chromedriver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn browser(driver: &Chromedriver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": driver.chromium, "args": Chromedriver::args(width, height) }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Runs `script` (a function body returning a value) in the page.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Waits until `script` returns `true` in the page.
async fn until(c: &Client, secs: u64, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if js(c, script).await == Value::Bool(true) {
            return;
        }
        // Docker adding or removing a bridge (any test's network) makes Chromium abort
        // the navigation under way with ERR_NETWORK_CHANGED: load it again.
        if js(
            c,
            "return document.body.innerText.includes('ERR_NETWORK_CHANGED')",
        )
        .await
            == Value::Bool(true)
        {
            c.refresh().await.unwrap();
            continue;
        }
        if Instant::now() > deadline {
            let body = js(c, "return document.body.innerText").await;
            panic!("timed out waiting for {what}; the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `path` and waits until its live part is there.
async fn open(c: &Client, s: &Server, path: &str) {
    c.goto(&s.url(path)).await.unwrap();
    until(c, 20, path, "return !!document.getElementById('live')").await;
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = save_screenshot(name, &png);
    assert!(is_png(&path), "{} is not a PNG", path.display());
}

async fn login(c: &Client, s: &Server, token: &str, then: &str) {
    c.goto(&s.url(then)).await.unwrap();
    until(
        c,
        20,
        "the log-in form",
        "return !!document.getElementById('token')",
    )
    .await;
    let url = c.current_url().await.unwrap();
    assert_eq!(
        url.path(),
        "/login",
        "an anonymous visit is sent to the log-in form"
    );
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(c, "form.card button").await;
    until(
        c,
        10,
        "the page asked for before logging in",
        &format!("return location.pathname === {then:?} && !!document.getElementById('live')"),
    )
    .await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Waits until the action under way reports success in the progress panel.
async fn done(c: &Client, what: &str) {
    until(
        c,
        90,
        what,
        "return document.querySelector('#progress [data-result]')?.dataset.result === 'done'",
    )
    .await;
}

/// Confirms the dialog an action opens.
async fn confirm(c: &Client) {
    until(
        c,
        5,
        "the confirmation dialog",
        "return document.getElementById('confirm').open",
    )
    .await;
    click(c, "#confirm-ok").await;
}

/// The warning of the confirmation an action opens, once it is open.
async fn dialog_warning(c: &Client) -> Value {
    until(
        c,
        5,
        "the dialog",
        "return document.getElementById('confirm').open",
    )
    .await;
    js(
        c,
        "return document.getElementById('confirm-warning').innerText",
    )
    .await
}

/// The plan the open confirmation shows, once computed.
async fn plan_shown(c: &Client) -> String {
    until(
        c,
        30,
        "the plan in the confirmation",
        "return document.getElementById('confirm-plan').dataset.state === 'ready'",
    )
    .await;
    js(
        c,
        "return document.getElementById('confirm-plan').innerText",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// JS: the row of `app` on the overview.
fn row(app: &str) -> String {
    format!("document.querySelector('a[href=\"/apps/{app}\"]')?.closest('tr')")
}

/// JS: the word in the overview's `sync` or `health` cell of `app` (after its shape).
fn cell(app: &str, which: &str) -> String {
    let n = if which == "sync" { 1 } else { 2 };
    format!(
        "{}?.children[{n}].innerText.trim().split(' ').pop()",
        row(app)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_shows_live_state_and_runs_actions() {
    let manual = TestApp::new("uim");
    let healed = TestApp::new("uih");
    let broken = TestApp::new("uif");
    let repo = Repo::new("ui");
    repo.write("manual/compose.yaml", &demo_compose(&manual.name, "one"))
        .write("manual/site/index.html", "manual")
        .write("healed/compose.yaml", &demo_compose(&healed.name, "one"))
        .write("healed/site/index.html", "healed")
        // A file Compose refuses too: an unknown key.
        .write(
            "broken/compose.yaml",
            "services:\n  web:\n    image: busybox\n    imagee: typo\n",
        );
    let first = repo.commit("first revision");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {m}\n    source: {{ git: {url}, ref: main, path: manual }}\n    sync: {{ auto: false, self_heal: false, interval: 1h }}\n  - name: {h}\n    source: {{ git: {url}, ref: main, path: healed }}\n    sync: {{ interval: 1h }}\n  - name: {b}\n    source: {{ git: {url}, ref: main, path: broken }}\n    sync: {{ interval: 1h }}\n",
            m = manual.name,
            h = healed.name,
            b = broken.name
        ),
    );
    wait_until(60, "the auto app's first sync", || {
        s.app(&healed.name)["sync"] == "Synced"
    });
    let operator = s.token_with(&["--role", "operator", "--name", "alice"]);
    let viewer = s.token("viewer");
    let driver = Chromedriver::start();
    let c = browser(&driver, 1400, 1000).await;

    // Log in; the overview lists both apps with their status.
    login(&c, &s, &operator, "/").await;
    until(
        &c,
        10,
        "both rows",
        &format!(
            "return {} === 'Healthy' && {} === 'OutOfSync'",
            cell(&healed.name, "health"),
            cell(&manual.name, "sync")
        ),
    )
    .await;
    // The deployed revision with its message, author and time.
    let text = js(&c, &format!("return {}.innerText", row(&healed.name))).await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&first[..10])
            && text.contains("first revision")
            && text.contains("Test")
            && text.contains("ago"),
        "revision id, message, author and time: {text}"
    );
    let counts = js(&c, "return document.querySelector('.counts').innerText").await;
    assert!(counts.as_str().unwrap().contains("3 apps"), "{counts}");
    // The app whose file is refused stands out: first, red, with the error's first line.
    until(
        &c,
        30,
        "the failing app in red with its error",
        &format!(
            "const r = {}; return !!r && r.dataset.failing === 'RenderError' && getComputedStyle(r.children[1]).color === 'rgb(161, 20, 35)' && r.children[1].innerText.includes('imagee')",
            row(&broken.name)
        ),
    )
    .await;
    assert_eq!(
        js(
            &c,
            "return document.querySelector('table.apps tbody tr:not(.grp) a').innerText"
        )
        .await,
        json!(broken.name),
        "the failing app comes first"
    );
    let failing = js(
        &c,
        "return document.querySelector('[data-count=Failing]').innerText",
    )
    .await;
    assert_eq!(failing, json!("1"));
    shot(&c, "overview-1400").await;

    // The manual app: first deploy from its page, with progress shown live. The
    // confirmation shows the plan first.
    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    click(&c, "form[data-action=sync] button").await;
    let plan = plan_shown(&c).await;
    assert!(
        plan.contains("The plan for")
            && plan.contains("create container")
            && plan.contains("container does not exist"),
        "the plan with its reasons: {plan}"
    );
    shot(&c, "confirm-plan-1400").await;
    confirm(&c).await;
    done(&c, "the sync to finish").await;
    let progress = js(&c, "return document.getElementById('progress').innerText").await;
    assert!(
        progress.as_str().unwrap().contains("create container"),
        "progress names the actions: {progress}"
    );
    until(
        &c,
        10,
        "Synced on the app page",
        "return document.querySelector('#live .status [data-sync]').dataset.sync === 'Synced'",
    )
    .await;
    let page = js(&c, "return document.getElementById('live').innerText").await;
    let page = page.as_str().unwrap().to_lowercase();
    for expected in [
        "service web",
        &manual.container("web"),
        "restarts 0",
        "by test <test@example.com>",
        "volumes (data)",
        "protect",
        "revisions",
    ] {
        assert!(
            page.contains(expected),
            "app page lacks {expected}:\n{page}"
        );
    }
    shot(&c, "app-1400").await;

    // A `docker stop` shows on the open overview without a reload.
    open(&c, &s, "/").await;
    until(
        &c,
        10,
        "the overview",
        &format!("return {} === 'Synced'", cell(&manual.name, "sync")),
    )
    .await;
    js(&c, "window.__noReload = 42; return true").await;
    docker(&["stop", "-t", "1", &manual.container("web")]);
    until(
        &c,
        20,
        "the stopped app to turn Degraded and OutOfSync",
        &format!(
            "return {} === 'Degraded' && {} === 'OutOfSync'",
            cell(&manual.name, "health"),
            cell(&manual.name, "sync")
        ),
    )
    .await;
    // Self-heal: the other app's stopped container comes back, and the page says so.
    docker(&["stop", "-t", "1", &healed.container("web")]);
    until(
        &c,
        30,
        "self-heal to show as the latest operation",
        &format!(
            "return {}.innerText.includes('drift') && {} === 'Healthy'",
            row(&healed.name),
            cell(&healed.name, "health")
        ),
    )
    .await;
    assert_eq!(
        js(&c, "return window.__noReload").await,
        json!(42),
        "no reload"
    );
    assert!(docker_output(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        &healed.container("web")
    ])
    .stdout
    .starts_with(b"true"));

    // A push, seen at once through Refresh (the app polls hourly; no dialog: it only
    // fetches): the app page says the new revision is available.
    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    repo.write("manual/compose.yaml", &demo_compose(&manual.name, "two"));
    let second = repo.commit("second revision");
    let available = format!(
        "return document.getElementById('live').innerText.includes('{}') && document.getElementById('live').innerText.includes('auto-sync is off')",
        &second[..7]
    );
    assert_eq!(
        js(&c, &available).await,
        Value::Bool(false),
        "not seen before the refresh"
    );
    click(&c, "form[data-action=refresh] button").await;
    done(&c, "the refresh").await;
    until(&c, 30, "the new revision shown as available", &available).await;
    open(&c, &s, &format!("/apps/{}/diff", manual.name)).await;
    let diff = js(&c, "return document.getElementById('live').innerText").await;
    let diff = diff.as_str().unwrap();
    assert!(
        diff.contains(&format!("recreate container {}", manual.container("web"))),
        "{diff}"
    );
    assert!(diff.contains("env GREETING"), "{diff}");
    let row = js(&c, "const r = [...document.querySelectorAll('tr.differs')].find(r => r.innerText.includes('env GREETING')); return r ? r.innerText : null").await;
    let row = row.as_str().unwrap_or_default().to_string();
    assert!(
        row.contains("two") && row.contains("one"),
        "desired two, live one: {row}"
    );
    shot(&c, "diff-1400").await;

    // Sync to the push by its id, then roll back to the first revision from the page.
    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    c.find(Locator::Css("form[data-action=sync] input[name=revision]"))
        .await
        .unwrap()
        // A short id, as people type them.
        .send_keys(&second[..9])
        .await
        .unwrap();
    click(
        &c,
        "form[data-action=sync]:has(input[name=revision]) button",
    )
    .await;
    // The plan for that revision (the rollback below shows one for an older one).
    let plan = plan_shown(&c).await;
    assert!(
        plan.contains("recreate container") && plan.contains("GREETING"),
        "the plan of the sync to the second revision: {plan}"
    );
    confirm(&c).await;
    done(&c, "the sync to the second revision").await;
    assert!(env_of(&manual.container("web")).contains("GREETING=two"));
    assert_eq!(s.app(&manual.name)["revision"], second.as_str());

    // Confirming runs the plan that was shown, or nothing: a sync with another plan's
    // digest is refused (409, plan_changed) and is no failure of the app.
    let (code, refused) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/sync", manual.name),
        Some(&operator),
        Some(json!({"expect_plan": "0000000000000000"})),
    );
    assert_eq!(
        (code, &refused["kind"]),
        (409, &json!("plan_changed")),
        "{refused}"
    );
    let conditions = s.app(&manual.name)["conditions"].to_string();
    assert!(!conditions.contains("SyncFailed"), "{conditions}");
    // In the page: the container stops while the dialog shows "nothing to do"; the
    // confirmation is refused, the new plan shown, and confirming it runs it.
    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    click(&c, "form[data-action=sync] button").await;
    let plan = plan_shown(&c).await;
    assert!(plan.contains("Nothing to do"), "{plan}");
    docker(&["stop", "-t", "1", &manual.container("web")]);
    click(&c, "#confirm-ok").await;
    until(
        &c,
        30,
        "the changed plan in a new confirmation",
        "return !!document.querySelector('#progress [data-plan-changed]') && document.getElementById('confirm').open && document.getElementById('confirm-plan').dataset.state === 'ready'",
    )
    .await;
    let plan = plan_shown(&c).await;
    assert!(
        plan.contains(&manual.container("web")) && !plan.contains("Nothing to do"),
        "the new plan: {plan}"
    );
    let question = js(
        &c,
        "return document.getElementById('confirm-text').innerText",
    )
    .await;
    assert!(
        question
            .as_str()
            .unwrap_or_default()
            .contains("plan changed"),
        "{question}"
    );
    shot(&c, "plan-changed-1400").await;
    click(&c, "#confirm-ok").await;
    done(&c, "the new plan to run").await;
    assert!(docker_output(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        &manual.container("web")
    ])
    .stdout
    .starts_with(b"true"));

    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    // The picker names each revision by its commit message too.
    let option = js(
        &c,
        &format!("return document.querySelector('form[data-action=rollback] option[value=\"{first}\"]').innerText"),
    )
    .await;
    assert!(
        option
            .as_str()
            .unwrap_or_default()
            .contains("first revision"),
        "{option}"
    );
    c.find(Locator::Css("form[data-action=rollback] select"))
        .await
        .unwrap()
        .select_by_value(&first)
        .await
        .unwrap();
    click(&c, "form[data-action=rollback] button").await;
    let warning = dialog_warning(&c).await;
    assert!(
        warning
            .as_str()
            .unwrap()
            .contains("changes containers, not data"),
        "the rollback warns about data: {warning}"
    );
    let plan = plan_shown(&c).await;
    assert!(
        plan.contains("recreate container") && plan.contains("GREETING"),
        "the plan of the rollback: {plan}"
    );
    shot(&c, "rollback-confirm-1400").await;
    confirm(&c).await;
    done(&c, "the rollback").await;
    assert!(env_of(&manual.container("web")).contains("GREETING=one"));
    until(
        &c,
        10,
        "the pinned mark",
        "return document.getElementById('live').innerText.includes('pinned')",
    )
    .await;
    assert!(
        s.app(&manual.name)["pinned"]
            .as_str()
            .is_some_and(|p| p == first),
        "pinned to the first revision"
    );

    // History: every operation with its actions and reasons.
    open(&c, &s, &format!("/apps/{}/history", manual.name)).await;
    let history = js(&c, "return document.getElementById('live').innerText").await;
    let history = history.as_str().unwrap();
    assert!(
        history.contains("rollback by alice") && history.contains("succeeded"),
        "the history says who asked: {history}"
    );
    assert!(
        history.contains(&format!("{} second revision", &second[..12]))
            && history.contains(&format!("{} first revision", &first[..12])),
        "commit messages beside the revisions: {history}"
    );
    js(
        &c,
        "document.querySelectorAll('details').forEach(d => d.open = true); return true",
    )
    .await;
    let history = js(&c, "return document.getElementById('live').innerText").await;
    assert!(
        history.as_str().unwrap().contains("recreate container"),
        "{history}"
    );
    shot(&c, "history-1400").await;

    // At 390 px the overview fits without sideways scrolling.
    c.set_window_size(390, 844).await.unwrap();
    open(&c, &s, "/").await;
    until(
        &c,
        10,
        "the narrow overview",
        "return !!document.querySelector('table.apps a')",
    )
    .await;
    let overflow = js(
        &c,
        "return document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "horizontal overflow at 390 px: {overflow}"
    );
    shot(&c, "overview-390").await;
    open(&c, &s, &format!("/apps/{}", manual.name)).await;
    // The actions are one folded menu; the first screen shows the state and the last
    // operation.
    let first_screen = js(
        &c,
        "const m = document.getElementById('action-menu'); const last = document.querySelector('[data-last-operation]'); const st = document.querySelector('#live .status'); return [m.open, getComputedStyle(m.querySelector('summary')).display, last.getBoundingClientRect().bottom <= window.innerHeight, st.getBoundingClientRect().bottom <= window.innerHeight, last.innerText, document.documentElement.scrollWidth - window.innerWidth]",
    )
    .await;
    assert_eq!(first_screen[0], json!(false), "menu folded: {first_screen}");
    assert_ne!(
        first_screen[1],
        json!("none"),
        "menu button shown: {first_screen}"
    );
    assert_eq!(
        first_screen[2],
        json!(true),
        "last operation on the first screen: {first_screen}"
    );
    assert_eq!(
        first_screen[3],
        json!(true),
        "status on the first screen: {first_screen}"
    );
    assert!(
        first_screen[4]
            .as_str()
            .unwrap_or_default()
            .contains("rollback by alice"),
        "{first_screen}"
    );
    assert!(
        first_screen[5].as_i64().unwrap() <= 0,
        "no sideways scrolling: {first_screen}"
    );
    shot(&c, "app-390").await;
    click(&c, "#action-menu > summary").await;
    let opened = js(&c, "const b = document.querySelector('form[data-action=sync] button'); return document.getElementById('action-menu').open && b.getBoundingClientRect().width > 0").await;
    assert_eq!(opened, json!(true), "the menu opens to the actions");
    shot(&c, "app-menu-390").await;
    c.set_window_size(1400, 1000).await.unwrap();

    // A viewer sees no action buttons, and the server refuses a forged action.
    open(&c, &s, "/").await;
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        10,
        "the log-in form",
        "return location.pathname === '/login'",
    )
    .await;
    login(&c, &s, &viewer, &format!("/apps/{}", manual.name)).await;
    assert_eq!(
        js(
            &c,
            "return document.querySelectorAll('section.actions, form.action').length"
        )
        .await,
        json!(0),
        "a viewer gets no action buttons"
    );
    let forged = |header: bool| {
        format!(
            "const done = arguments[0]; fetch('/api/v1/apps/{}/sync', {{method: 'POST', credentials: 'same-origin', headers: {{'content-type': 'application/json'{}}}, body: '{{}}'}}).then(r => done(r.status), e => done(String(e)));",
            manual.name,
            if header { ", 'x-mooring-ui': '1'" } else { "" }
        )
    };
    let status = c.execute_async(&forged(true), vec![]).await.unwrap();
    assert_eq!(status, json!(403), "a viewer's action is refused");
    // Without the UI's header even an operator's cookie changes nothing (CSRF).
    let (code, _) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/sync", manual.name),
        None,
        None,
    );
    assert_eq!(code, 401);
    let status = c.execute_async(&forged(false), vec![]).await.unwrap();
    assert_eq!(
        status,
        json!(403),
        "a cookie without the UI header is refused"
    );

    // The page says when the connection is lost, and recovers.
    open(&c, &s, "/").await;
    until(
        &c,
        10,
        "a live stream",
        "return document.body.dataset.connection === 'live'",
    )
    .await;
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    until(&c, 15, "the lost-connection banner", "const b = document.getElementById('conn'); return !b.hidden && b.innerText.includes('lost')").await;
    shot(&c, "connection-lost-1400").await;
    s.spawn();
    until(&c, 30, "the stream to come back", "return document.getElementById('conn').hidden && document.body.dataset.connection === 'live'").await;

    c.close().await.unwrap();
}

/// The logs tab: the containers' last lines, then new ones as they are written, for
/// every service or the one picked.
#[tokio::test(flavor = "multi_thread")]
async fn the_logs_tab_follows_the_containers_lines() {
    let crate::logs::Ticking { app, s, .. } = &crate::logs::ticking("uilog");
    let viewer = s.token("viewer");
    let driver = Chromedriver::start();
    let c = browser(&driver, 1200, 900).await;
    let page = format!("/apps/{}/logs", app.name);
    login(&c, s, &viewer, &page).await;
    until(
        &c,
        30,
        "both services' lines",
        "const t = document.getElementById('log-lines').textContent; return t.includes('ticker | ') && t.includes('quiet-started')",
    )
    .await;
    // New lines arrive without a reload.
    let last = |c: &Client| {
        let c = c.clone();
        async move {
            let n = js(
                &c,
                "const m = [...document.getElementById('log-lines').textContent.matchAll(/tick-(\\d+)/g)]; return m.length ? Number(m[m.length - 1][1]) : 0",
            )
            .await;
            n.as_i64().unwrap()
        }
    };
    let before = last(&c).await;
    until(
        &c,
        20,
        "a line written after the page opened",
        &format!("return [...document.getElementById('log-lines').textContent.matchAll(/tick-(\\d+)/g)].some(m => Number(m[1]) > {})", before + 3),
    )
    .await;
    assert_eq!(
        js(&c, "return document.body.dataset.logs").await,
        "streaming"
    );
    shot(&c, "logs-1200").await;

    // One service.
    c.goto(&s.url(&format!("{page}?service=quiet&tail=50")))
        .await
        .unwrap();
    until(
        &c,
        20,
        "the quiet service's lines",
        "return document.getElementById('log-lines').textContent.includes('quiet-started')",
    )
    .await;
    let text = js(
        &c,
        "return document.getElementById('log-lines').textContent",
    )
    .await;
    assert!(!text.as_str().unwrap().contains("tick-"), "{text}");
    let picked = js(
        &c,
        "return document.querySelector('select[name=service]').value",
    )
    .await;
    assert_eq!(picked, "quiet");
    c.close().await.unwrap();
}

/// A sync from the app's page that builds an image: the builder's lines stream into the
/// progress panel as they come, and stay in the operation's record on the history page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_streams_into_the_progress_panel_and_stays_in_the_history() {
    let app = TestApp::new("uib");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(proj.join("web")).unwrap();
    std::fs::write(
        proj.join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  web:\n    build: ./web\n    init: true\n    command: [\"sleep\", \"3600\"]\n",
            app.name
        ),
    )
    .unwrap();
    std::fs::write(
        proj.join("web/Dockerfile"),
        // The app's name keeps the step out of the builder's cache of earlier runs.
        format!("FROM {IMAGE}\nRUN echo built-for-{} && sleep 2\n", app.name),
    )
    .unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ auto: false, self_heal: false, interval: 1h }}\n",
            app.name,
            proj.display()
        ),
    );
    struct Image(String);
    impl Drop for Image {
        fn drop(&mut self) {
            let _ = docker_output(&["rmi", "-f", &self.0]);
        }
    }
    let _image = Image(format!("{}-web", app.name));
    wait_until(60, "the app's first look (auto-sync off)", || {
        s.app(&app.name)["sync"] == "OutOfSync"
    });
    let operator = s.token("operator");
    let driver = Chromedriver::start();
    let c = browser(&driver, 1400, 1000).await;
    login(&c, &s, &operator, "/").await;
    open(&c, &s, &format!("/apps/{}", app.name)).await;
    click(&c, "form[data-action=sync] button").await;
    plan_shown(&c).await;
    confirm(&c).await;
    // The build shows as running (a spinner, the time so far) before it ends.
    until(
        &c,
        60,
        "the build action shown running",
        "const li = document.querySelector('#progress li[data-state=running]'); return !!li && li.innerText.includes('build image') && !!li.querySelector('.spinner') && /\\d\\.\\d s/.test(li.querySelector('.elapsed').textContent)",
    )
    .await;
    // While the build runs, its lines are in the panel.
    until(
        &c,
        60,
        "the builder's lines in the progress panel",
        &format!(
            "return /#\\d+ built-for-{}/.test(document.querySelector('#progress pre')?.textContent || '')",
            app.name
        ),
    )
    .await;
    shot(&c, "build-progress-1400").await;
    done(&c, "the sync to finish").await;
    let ended = js(
        &c,
        "return [...document.querySelectorAll('#progress li')].map(li => li.dataset.state + ' ' + li.innerText).join('\\n')",
    )
    .await;
    let ended = ended.as_str().unwrap_or_default();
    assert!(
        ended.contains("done ✓ build image")
            && ended.contains("done ✓ create container")
            && !ended.contains("running"),
        "every action ended, none left spinning: {ended}"
    );

    // The history page keeps them under the build's action (folded: the operation's
    // details and the output's are closed until opened).
    open(&c, &s, &format!("/apps/{}/history", app.name)).await;
    let output = js(
        &c,
        "return document.querySelector('tr.output pre').textContent",
    )
    .await;
    let output = output.as_str().unwrap_or_default();
    assert!(
        output.contains(&format!("RUN echo built-for-{}", app.name))
            && output.contains(&format!(" built-for-{}\n", app.name))
            && output.contains("Successfully tagged"),
        "{output}"
    );
    c.close().await.unwrap();
}

/// The app page's backups: Back up now, Verify and Restore, with the CLI's safety
/// question (a volume holding data is written over only when the box says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_page_backs_up_verifies_and_restores() {
    let app = TestApp::new("uibk");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"store:/data\"]\nvolumes:\n  store: {{}}\n",
            app.name
        ),
    )
    .unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            app.name,
            proj.display()
        ),
    );
    wait_until(60, "the app's first sync", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    let db = app.container("db");
    docker(&["exec", &db, "sh", "-c", "echo original > /data/f"]);
    let operator = s.token_with(&["--role", "operator", "--name", "bob"]);
    let driver = Chromedriver::start();
    let c = browser(&driver, 1400, 1000).await;
    login(&c, &s, &operator, &format!("/apps/{}", app.name)).await;
    assert_eq!(
        js(
            &c,
            "return document.getElementById('h-backups').nextElementSibling.innerText"
        )
        .await,
        json!("Back up now"),
    );

    // Back up now: one verified backup, listed.
    click(&c, "form[data-action=backups] button").await;
    confirm(&c).await;
    done(&c, "the backup").await;
    until(
        &c,
        10,
        "the backup listed",
        "return document.querySelectorAll('table.backups tr[data-backup]').length === 1",
    )
    .await;
    let id = js(
        &c,
        "return document.querySelector('table.backups tr[data-backup]').dataset.backup",
    )
    .await;
    let id = id.as_str().unwrap().to_string();
    let row = js(
        &c,
        "return document.querySelector('table.backups tr[data-backup]').innerText",
    )
    .await;
    assert!(
        row.as_str().unwrap().contains("manual") && row.as_str().unwrap().contains("1 files"),
        "{row}"
    );

    // Verify reads it again against its manifest.
    click(
        &c,
        &format!("tr[data-backup=\"{id}\"] form[data-action$=verify] button"),
    )
    .await;
    done(&c, "the verification").await;
    let said = js(
        &c,
        "return document.querySelector('#progress [data-result]').innerText",
    )
    .await;
    assert!(
        said.as_str().unwrap().contains("verified: 1 files"),
        "{said}"
    );

    // The data changes; a restore into the volume that holds it is refused unless the
    // box is checked, and then brings the backup's content back.
    docker(&["exec", &db, "sh", "-c", "echo changed > /data/f"]);
    let restore = format!("tr[data-backup=\"{id}\"] form[data-action$=restore]");
    click(&c, &format!("{restore} button")).await;
    let warning = dialog_warning(&c).await;
    assert!(
        warning.as_str().unwrap().contains("Write over its files"),
        "{warning}"
    );
    click(&c, "#confirm-ok").await;
    until(
        &c,
        60,
        "the refusal",
        "return document.querySelector('#progress [data-result]')?.dataset.result === 'failed'",
    )
    .await;
    let refused = js(
        &c,
        "return document.querySelector('#progress [data-result]').innerText",
    )
    .await;
    assert!(
        refused.as_str().unwrap().contains("is not empty")
            && refused.as_str().unwrap().contains("Write over its files"),
        "{refused}"
    );
    assert_eq!(
        docker(&["exec", &db, "cat", "/data/f"]).trim(),
        "changed",
        "nothing restored"
    );
    click(&c, &format!("{restore} input[name=force]")).await;
    click(&c, &format!("{restore} button")).await;
    confirm(&c).await;
    done(&c, "the restore").await;
    assert_eq!(docker(&["exec", &db, "cat", "/data/f"]).trim(), "original");
    shot(&c, "backups-1400").await;

    // Both are operations of the app, by the token that asked.
    open(&c, &s, &format!("/apps/{}/history", app.name)).await;
    let history = js(&c, "return document.getElementById('live').innerText").await;
    let history = history.as_str().unwrap();
    assert!(
        history.contains("backup by bob") && history.contains("restore by bob"),
        "{history}"
    );
    c.close().await.unwrap();
}
