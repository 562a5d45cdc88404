// Mooring web UI: live updates from the API's event stream (/api/v1/stream) and the
// actions, sent to the API's own routes. The server renders every page; this script
// only fetches a page again and swaps its live part (#live) when the stream says
// something changed.
"use strict";
(() => {
  const body = document.body;
  const app = body.dataset.app || null;
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  const progress = document.getElementById("progress");
  const logLines = document.getElementById("log-lines");
  let timer = null;
  let busy = false;

  // Fetches the page again and swaps its live part (and, after an action, the
  // action bar, whose choices depend on the new state).
  async function refresh(withActions) {
    timer = null;
    // The logs tab's live part is the log stream itself.
    if (!live || logLines) return;
    if (busy) { soon(500); return; }
    busy = true;
    try {
      const r = await fetch(location.href, { credentials: "same-origin" });
      if (r.redirected || r.status === 401) { location.reload(); return; }
      if (r.ok) {
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const fresh = doc.getElementById("live");
        if (fresh) live.innerHTML = fresh.innerHTML;
        const bar = document.querySelector("section.actions");
        const freshBar = doc.querySelector("section.actions");
        if (withActions === true && bar && freshBar) bar.replaceWith(freshBar);
        body.dataset.refreshed = String(Date.now());
      }
    } catch (_) {
      // The stream's error handler reports the lost connection.
    } finally {
      busy = false;
    }
  }

  function soon(ms) {
    if (!timer) timer = setTimeout(() => refresh(false), ms);
  }

  function lost(text) {
    conn.hidden = false;
    conn.textContent = text;
    body.dataset.connection = "lost";
  }

  let stream = null;
  function connect() {
    stream = new EventSource("/api/v1/stream");
    stream.onopen = () => {
      const was = body.dataset.connection;
      conn.hidden = true;
      body.dataset.connection = "live";
      if (was === "lost") soon(0); // catch up on what was missed
    };
    stream.onerror = () => {
      lost("Connection to the Mooring server lost — showing the last known state; reconnecting…");
      if (stream.readyState === EventSource.CLOSED) {
        stream = null;
        setTimeout(connect, 2000);
      }
    };
    for (const kind of ["app", "started", "operation", "event", "output"]) {
      stream.addEventListener(kind, (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch (_) { return; }
        if (app && data.app !== app) return;
        if (kind === "output") return output(data);
        if (kind === "started") return started(data);
        if (kind === "operation") step(data);
        soon(kind === "app" ? 100 : 400);
      });
    }
  }

  // What a pull or a build prints: the last few lines, under the progress list.
  function output(ev) {
    if (!progress || progress.hidden || !ev.data) return;
    let pre = progress.querySelector("pre");
    if (!pre) {
      pre = document.createElement("pre");
      pre.setAttribute("aria-live", "off");
      progress.appendChild(pre);
    }
    const lines = (pre.textContent ? pre.textContent.split("\n") : []).concat([ev.data.line]);
    pre.textContent = lines.slice(-12).join("\n");
  }

  // Progress: each action of the plan as it starts (a spinner and the time it has
  // taken so far) and as it ends, from the stream's `started` and `operation` events.
  const running = new Map();
  let ticker = null;
  function tick() {
    for (const r of running.values()) r.time.textContent = ((Date.now() - r.t0) / 1000).toFixed(1) + " s";
    if (!running.size) { clearInterval(ticker); ticker = null; }
  }
  function actionItem(text) {
    if (progress.hidden) show("Working on " + app + "…");
    const li = document.createElement("li");
    li.dataset.action = text;
    const spin = document.createElement("span");
    spin.className = "spinner";
    spin.setAttribute("aria-hidden", "true");
    const what = document.createElement("span");
    what.textContent = text + " ";
    const time = document.createElement("span");
    time.className = "elapsed";
    li.append(spin, what, time);
    progress.querySelector("ol").appendChild(li);
    return { li, time, t0: Date.now() };
  }
  function started(ev) {
    if (!progress || !ev.data || !ev.data.text) return;
    const r = actionItem(ev.data.text);
    r.li.dataset.state = "running";
    r.time.textContent = "0.0 s";
    running.set(ev.data.text, r);
    if (!ticker) ticker = setInterval(tick, 200);
  }
  function step(ev) {
    if (!progress || !ev.data || !ev.data.text) return;
    const text = ev.data.text;
    const r = running.get(text) || actionItem(text);
    running.delete(text);
    r.li.querySelector(".spinner")?.remove();
    const failed = !!ev.data.error;
    r.li.dataset.state = failed ? "failed" : "done";
    r.time.textContent = failed ? "— failed: " + ev.data.error : "— done in " + Number(ev.data.seconds).toFixed(1) + " s";
    r.li.prepend(failed ? "✗ " : "✓ ");
  }

  function show(title, lines) {
    progress.hidden = false;
    progress.replaceChildren();
    const h = document.createElement("strong");
    h.textContent = title;
    progress.appendChild(h);
    progress.appendChild(document.createElement("ol"));
    for (const l of lines || []) {
      const p = document.createElement("p");
      p.textContent = l;
      progress.appendChild(p);
    }
  }

  function finish(result, lines, failed) {
    const p = document.createElement("p");
    p.className = failed ? "err" : "";
    p.dataset.result = failed ? "failed" : "done";
    p.textContent = result;
    progress.appendChild(p);
    for (const l of lines || []) {
      const w = document.createElement("p");
      w.className = "warning";
      w.textContent = l;
      progress.appendChild(w);
    }
  }

  async function latestOperation(base) {
    try {
      const r = await fetch(base + "/operations?limit=1", { credentials: "same-origin" });
      const ops = (await r.json()).operations || [];
      return ops.length ? ops[0].id : 0;
    } catch (_) {
      return 0;
    }
  }

  // Waits (up to five minutes) for an operation newer than `before` to finish.
  async function operationAfter(base, before) {
    for (let i = 0; i < 300; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const r = await fetch(base + "/operations?limit=1", { credentials: "same-origin" });
        const op = ((await r.json()).operations || [])[0];
        if (op && op.id > before && op.result) return op;
      } catch (_) {
        // still offline: try again
      }
    }
    return null;
  }

  // The plan the action would run (the API's diff, for the revision it deploys),
  // shown in the confirmation.
  async function showPlan(base, revision) {
    const box = document.getElementById("confirm-plan");
    box.hidden = false;
    box.dataset.state = "loading";
    box.textContent = "Computing the plan…";
    try {
      const query = revision ? "?revision=" + encodeURIComponent(revision) : "";
      const r = await fetch(base + "/diff" + query, { credentials: "same-origin" });
      const d = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(d.error || r.status + " " + r.statusText);
      box.replaceChildren();
      const head = document.createElement("p");
      const steps = d.steps || [];
      head.textContent = steps.length === 0
        ? "Nothing to do: the host already matches revision " + (d.revision_describe || "") + "."
        : "The plan for " + (d.revision_describe || "the latest revision") + ":";
      box.appendChild(head);
      if (steps.length) {
        const list = document.createElement("ul");
        for (const s of steps) {
          const li = document.createElement("li");
          li.textContent = s.text + (s.reason ? " — " + s.reason : "");
          list.appendChild(li);
        }
        box.appendChild(list);
      }
      box.dataset.digest = d.plan_digest || "";
      box.dataset.state = "ready";
    } catch (e) {
      box.textContent = "The plan could not be computed: " + e.message;
      box.dataset.state = "failed";
    }
  }

  function confirmAction(text, warning, planFrom, revision) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    const w = document.getElementById("confirm-warning");
    w.hidden = !warning;
    w.textContent = warning || "";
    const plan = document.getElementById("confirm-plan");
    plan.hidden = true;
    // Confirming runs the plan shown: not before it is there.
    const ok = document.getElementById("confirm-ok");
    ok.disabled = !!planFrom;
    if (planFrom) showPlan(planFrom, revision).finally(() => { ok.disabled = false; });
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "cancel";
      dialog.showModal();
      document.getElementById("confirm-ok").focus();
    });
  }

  // Sends an action; `null` when the connection dropped and nothing says how it ended.
  async function post(base, action, fields, before) {
    try {
      const res = await fetch(base + "/" + action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-mooring-ui": "1" },
        body: JSON.stringify(fields),
      });
      return { res, data: await res.json().catch(() => ({})) };
    } catch (e) {
      // The connection dropped while the server works on it: the operation's own
      // record says how it ended.
      const op = action === "sync" || action === "rollback" ? await operationAfter(base, before) : null;
      if (!op) return { error: "The request failed: " + e };
      const ok = op.result === "succeeded" || op.result === "no_op";
      return { res: { ok, status: 0, statusText: "" }, data: { ok, error: op.error || "operation #" + op.id + " " + op.result } };
    }
  }

  async function act(form) {
    const action = form.dataset.action;
    const fields = Object.fromEntries(new FormData(form).entries());
    for (const box of form.querySelectorAll("input[type=checkbox]")) fields[box.name] = box.checked;
    const message = form.dataset.confirm;
    // Sync, Sync to revision and Rollback show what they would do before they are
    // confirmed: the plan for the revision they deploy; confirming runs that plan
    // (its digest goes along) and, when the host or the revision changed meanwhile,
    // the new plan is shown to be confirmed in turn.
    const planFrom = action === "sync" || action === "rollback" ? "/api/v1/apps/" + encodeURIComponent(app) : null;
    const revision = fields.revision || fields.to || "";
    let question = message ? message + (fields.revision ? " (" + fields.revision + ")" : "") + (fields.to ? " (" + fields.to.slice(0, 12) + ")" : "") : null;
    const label = form.dataset.busy || { sync: "Syncing", rollback: "Rolling back", pin: "Pinning", unpin: "Unpinning", refresh: "Refreshing" }[action] || action;
    const doneText = (form.dataset.done || label.replace(/ing$/, "")) + " done";
    const base = "/api/v1/apps/" + encodeURIComponent(app);
    let res, data;
    for (let attempt = 0; ; attempt++) {
      if (question && !(await confirmAction(question, form.dataset.warning, planFrom, revision))) {
        if (attempt > 0) { finish("Not run: the plan changed and the new one was not confirmed.", [], true); body.dataset.action = "failed"; }
        return;
      }
      const box = document.getElementById("confirm-plan");
      if (planFrom && box.dataset.state === "ready") fields.expect_plan = box.dataset.digest;
      else delete fields.expect_plan;
      if (attempt === 0) show(label + " " + app + "…");
      body.dataset.action = "running";
      for (const b of document.querySelectorAll(".actions button, form.action button")) b.disabled = true;
      const sent = await post(base, action, fields, await latestOperation(base));
      if (sent.error) {
        finish(sent.error, [], true);
        body.dataset.action = "failed";
        return;
      }
      ({ res, data } = sent);
      if (res.status === 409 && data.kind === "plan_changed" && question && attempt < 3) {
        const note = document.createElement("p");
        note.className = "warning";
        note.dataset.planChanged = String(attempt + 1);
        note.textContent = "The plan changed since it was shown — nothing was applied. The new plan follows.";
        progress.appendChild(note);
        question = "The plan changed since you saw it (the host or the revision moved); nothing was applied. Run the new plan?";
        continue;
      }
      break;
    }
    const warnings = data.data_warning ? [data.data_warning.message] : [];
    if (data.data_warning && data.data_warning.backups && data.data_warning.backups.length) {
      warnings.push("Backups of that time: " + data.data_warning.backups.map((b) => b.id).join(", "));
    }
    if (res.ok && data.ok !== false) {
      const st = data.status ? " — now " + data.status.sync + ", " + data.status.health : "";
      finish(data.message || doneText + st + ".", warnings, false);
      body.dataset.action = "done";
    } else {
      finish(data.message || "Failed: " + (data.error || res.status + " " + res.statusText), warnings, true);
      body.dataset.action = "failed";
    }
    // The buttons come back with the refreshed page.
    await refresh(true);
  }

  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form.action");
    if (!form) return;
    e.preventDefault();
    act(form);
  });

  // Filters apply as they change, keeping the address shareable.
  const filters = document.querySelector("form.filters");
  if (filters) {
    let t = null;
    const apply = () => {
      const q = new URLSearchParams(new FormData(filters));
      for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
      history.replaceState(null, "", "/" + (q.toString() ? "?" + q : ""));
      refresh(false);
    };
    filters.addEventListener("change", apply);
    filters.addEventListener("input", () => { clearTimeout(t); t = setTimeout(apply, 250); });
  }

  // The logs tab: the API's lines as they come, kept to the last few thousand,
  // scrolled along while the reader is at the bottom.
  async function streamLogs(pre) {
    const MAX_CHUNKS = 4000;
    try {
      const r = await fetch(pre.dataset.src, { credentials: "same-origin" });
      if (r.status === 401) { location.reload(); return; }
      if (!r.ok) {
        pre.textContent = "Logs unavailable: " + r.status + " " + (await r.text());
        body.dataset.logs = "failed";
        return;
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      pre.textContent = "";
      body.dataset.logs = "streaming";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
        pre.append(decoder.decode(value, { stream: true }));
        while (pre.childNodes.length > MAX_CHUNKS) pre.firstChild.remove();
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      body.dataset.logs = "ended";
    } catch (_) {
      body.dataset.logs = "lost";
      lost("Log stream lost — reload the page to follow again.");
    }
  }
  if (logLines) streamLogs(logLines);

  // Published ports link to the host the page came from (only a UDP port is plain text).
  function portLinks(root) {
    for (const a of root.querySelectorAll("a.port[data-port]")) {
      if (!a.href && !a.textContent.endsWith("/udp")) a.href = "http://" + location.hostname + ":" + a.dataset.port + "/";
    }
  }
  if (live) {
    portLinks(live);
    new MutationObserver(() => portLinks(live)).observe(live, { childList: true, subtree: true });
  }

  // On a phone the actions are one menu, folded until opened.
  const menu = document.getElementById("action-menu");
  if (menu) {
    const narrow = window.matchMedia("(max-width: 760px)");
    menu.open = !narrow.matches;
    // Wider again (a turned phone): the bar, whose menu button is hidden, shows.
    narrow.addEventListener("change", () => { menu.open = !narrow.matches; });
  }

  if (conn) connect();
})();
