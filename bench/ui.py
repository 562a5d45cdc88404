#!/usr/bin/env python3
"""Web UI benchmark (not a test): prints figures for the issue "The web UI".

  bench/ui.py [--apps N] [--runs R] [--save FILE]

Starts `mooring serve` with N apps (default 500) on one local Git repository: 3 of them
are synced for real on the machine's Docker, the others are observed (`auto: false`)
and get a deployed revision and one recorded operation each (with three actions)
written into the daemon's SQLite store, then the daemon restarts, so every overview row
is as full as a deployed app's (revision, message, author, age, last operation). Then, over R runs
(default 30), on loopback:

- the overview `GET /` (its first page: 100 rows whatever N is) — server time (the
  daemon's own `Server-Timing` header) and the bytes transferred (uncompressed).
  Targets (issue 15, at 500 and 5,000 apps): < 50 ms, < 200 KB.
- an app page `GET /apps/NAME` of a synced app (includes a fresh Docker observation).
  Target: < 30 ms.
- `GET /api/v1/apps` (the JSON the overview renders) as the floor, measured the same way.

Uses target/release/mooring (built if missing), git, the local busybox image and Docker.
"""
import argparse, json, os, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOORING = os.path.join(ROOT, "target/release/mooring")
IMAGE = "mooring.local/busybox:latest"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def request(port, path, token, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
                                 data=b"{}" if method == "POST" else None)
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
        wall = (time.perf_counter() - started) * 1000
        timing = r.headers.get("server-timing", "")
    server = float(timing.split("dur=")[1]) if "dur=" in timing else None
    return body, wall, server


def summary(name, samples, target=None, unit="ms"):
    med = statistics.median(samples)
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    verdict = "" if target is None else ("  (target < %g %s: %s)" % (target, unit, "met" if med < target else "MISSED"))
    print(f"  {name:<34} median {med:8.2f} {unit}   p95 {p95:8.2f} {unit}{verdict}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=500)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--save", help="write the overview's HTML to this file")
    args = ap.parse_args()
    subprocess.run([os.path.join(ROOT, "scripts/busybox-image.sh")], check=True, capture_output=True)
    if not os.path.exists(MOORING):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mooring", "--bin", "mooring"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="mooring-bench-ui-")
    prefix = f"bui{os.getpid()}"
    names = [f"{prefix}-{i:04d}" for i in range(args.apps)]
    real = names[:3]
    proc = None
    try:
        # One Git repository (the usual monorepo) holding the app; every app uses it.
        repo = os.path.join(tmp, "repo")
        os.makedirs(os.path.join(repo, "app"))
        with open(os.path.join(repo, "app/compose.yaml"), "w") as f:
            f.write(f"services:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n"
                    f"    environment: {{ GREETING: hello }}\n    volumes: [data:/data]\n  worker:\n    image: {IMAGE}\n"
                    f"    init: true\n    command: [sleep, \"3600\"]\nvolumes:\n  data:\n")
        env = dict(os.environ, GIT_AUTHOR_NAME="Jane Doe", GIT_AUTHOR_EMAIL="jane.doe@example.com",
                   GIT_COMMITTER_NAME="Jane Doe", GIT_COMMITTER_EMAIL="jane.doe@example.com", GIT_CONFIG_GLOBAL="/dev/null")
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Bump the web image to 1.27.3 for the CVE fix"]):
            subprocess.run(["git", *cmd], cwd=repo, env=env, check=True, capture_output=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        port = free_port()
        lines = [f"server: {{ listen: 127.0.0.1:{port}, data_dir: ./state, workers: 4 }}", "apps:"]
        for n in names:
            auto = "true" if n in real else "false"
            lines.append(f"  - name: {n}\n    source: {{ git: file://{repo}, ref: main, path: app }}\n    sync: {{ auto: {auto}, self_heal: false, interval: 1h }}")
        cfg = os.path.join(tmp, "mooring.yaml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(os.path.join(tmp, "serve.log"), "w")
        token = None

        def start():
            return subprocess.Popen([MOORING, "serve", "--config", cfg], stderr=log, stdout=subprocess.DEVNULL)

        def wait_observed(ready_when):
            nonlocal token
            if token is None:
                token = subprocess.run([MOORING, "token", "create", "--role", "operator", "--config", cfg],
                                       check=True, capture_output=True, text=True).stdout.strip()
            deadline = time.time() + 300
            while True:
                try:
                    apps = json.loads(request(port, "/api/v1/apps", token)[0])["apps"]
                    ready = sum(1 for a in apps if ready_when(a))
                    synced = sum(1 for a in apps if a["name"] in real and a["sync"] == "Synced")
                    if ready == len(names) and synced == len(real):
                        return
                except Exception:
                    pass
                if time.time() > deadline:
                    sys.exit("the daemon did not observe every app in time; see " + log.name)
                time.sleep(0.5)

        proc = start()
        wait_observed(lambda a: a.get("updated_at"))
        proc.terminate(); proc.wait(timeout=60)
        # As if every app had been deployed: its revision in the status, and one recorded
        # operation with three actions, in the daemon's SQLite store.
        db = sqlite3.connect(os.path.join(tmp, "state/mooring.db"), timeout=30)
        now = int(time.time() * 1000)
        for n in names[len(real):]:
            db.execute("UPDATE apps SET revision = ?, revision_describe = ? WHERE name = ?",
                       (commit, "main@%s (Bump the web image to 1.27.3 for the CVE fix)" % commit[:7], n))
            cur = db.execute("INSERT INTO operations (app, \"trigger\", revision, dry_run, started_at, finished_at, result) "
                             "VALUES (?, 'webhook', ?, 0, ?, ?, 'succeeded')", (n, commit, now - 60_000, now - 58_000))
            for seq, what in enumerate(["pull image " + IMAGE, f"recreate container {n}-web-1", f"recreate container {n}-worker-1"]):
                db.execute("INSERT INTO actions (operation_id, seq, kind, resource, reason, started_at, duration_ms) "
                           "VALUES (?, ?, 'recreate container', ?, 'environment GREETING changed', ?, 700)",
                           (cur.lastrowid, seq, what, now - 59_000))
        db.commit(); db.close()
        # The restart reconciles every app once (that also reads each revision's author).
        proc = start()
        wait_observed(lambda a: a.get("revision_info"))

        print(f"mooring web UI, {len(names)} apps ({len(real)} deployed on Docker), {args.runs} runs, "
              f"{os.cpu_count()} cores; server time from the daemon's Server-Timing header")
        for label, path, target in [("overview GET /", "/", 50), (f"app page GET /apps/{real[0]}", f"/apps/{real[0]}", 30),
                                    ("JSON GET /api/v1/apps (floor)", "/api/v1/apps", None)]:
            request(port, path, token)  # warm
            server, wall, size = [], [], 0
            for _ in range(args.runs):
                body, w, s = request(port, path, token)
                wall.append(w); size = len(body)
                if s is not None:
                    server.append(s)
            if path == "/" and args.save:
                with open(args.save, "wb") as f:
                    f.write(body)
            print(f"{label}: {size / 1024:.1f} KiB" + ("  (target < 200 KB: %s)" % ("met" if size < 200_000 else "MISSED") if path == "/" else ""))
            if server:
                summary("server time", server, target)
            summary("client wall time (loopback)", wall)
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.mooring.app"], capture_output=True, text=True).stdout.split()
        for cid in ids:
            name = subprocess.run(["docker", "inspect", "-f", "{{.Name}}", cid], capture_output=True, text=True).stdout.strip("/\n")
            if name.startswith(prefix):
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        for n in real:
            subprocess.run(["docker", "network", "rm", f"{n}_default"], capture_output=True)
            subprocess.run(["docker", "volume", "rm", f"{n}_data"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
