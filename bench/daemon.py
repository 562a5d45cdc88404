#!/usr/bin/env python3
"""Daemon benchmarks (not tests): prints figures for the issue "The reconciler daemon".

  bench/daemon.py [push|heal|steady|all] [--runs N] [--apps N] [--seconds S]

push    push-to-converged with a signed webhook: time from `git push` to the new container
        running, minus the raw Docker create+start time of that container (the floor,
        measured in the same run with the bollard example `raw_floor`). Target <= 300 ms.
heal    self-heal latency: `docker stop` returns → the container runs again. Target <= 2 s.
steady  N apps (default 100) of one service each, on one Git repository, at a 30 s interval,
        nothing changing: CPU (% of one core) and RSS of `mooring serve` over S seconds
        (default 120). Targets: CPU < 1 %, RSS < 40 MB.

Uses target/release/mooring and target/release/examples/raw_floor (built if missing),
the local busybox image, `git`, and the machine's Docker daemon. Cleans up after itself.
"""
import hashlib, hmac, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOORING = os.path.join(ROOT, "target/release/mooring")
RAW = os.path.join(ROOT, "target/release/examples/raw_floor")
IMAGE = "mooring.local/busybox:latest"
GITENV = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b", GIT_CONFIG_GLOBAL="/dev/null")


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def prepare():
    sh(os.path.join(ROOT, "scripts/busybox-image.sh"))
    if not (os.path.exists(MOORING) and os.path.exists(RAW)):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mooring", "--bin", "mooring"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mooring-docker", "--example", "raw_floor"], cwd=ROOT, check=True)


def compose(app, value, network=None):
    text = f"name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    environment:\n      VALUE: \"{value}\"\n"
    if network:  # Docker's default address pools hold ~30 bridge networks: share one
        text += f"networks:\n  default:\n    name: {network}\n    external: true\n"
    return text


class Daemon:
    def __init__(self, tmp, config):
        self.port = free_port()
        self.cfg = os.path.join(tmp, "mooring.yaml")
        with open(self.cfg, "w") as f:
            f.write(config.replace("{port}", str(self.port)))
        self.log = open(os.path.join(tmp, "serve.log"), "w")
        self.proc = subprocess.Popen([MOORING, "serve", "--config", self.cfg], stderr=self.log, stdout=subprocess.DEVNULL)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1); break
            except Exception:
                time.sleep(0.1)
        self.token = sh(MOORING, "token", "create", "--role", "admin", "--config", self.cfg)

    def get(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"authorization": f"Bearer {self.token}"})
        return json.load(urllib.request.urlopen(req, timeout=30))

    def wait_synced(self, app, timeout=300):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if self.get(f"/api/v1/apps/{app}")["sync"] == "Synced":
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{app} never synced")

    def stop(self):
        self.proc.terminate(); self.proc.wait(30)


def cleanup(prefix):
    ids = sh("docker", "ps", "-aq", "--filter", f"label=io.mooring.app").split()
    names = sh("docker", "ps", "-a", "--format", "{{.ID}} {{.Label \"io.mooring.app\"}}").splitlines()
    doomed = [l.split()[0] for l in names if len(l.split()) > 1 and l.split()[1].startswith(prefix)]
    if doomed:
        subprocess.run(["docker", "rm", "-f", *doomed], capture_output=True)
    for n in sh("docker", "network", "ls", "--format", "{{.Name}}").split():
        if n.startswith(prefix):
            subprocess.run(["docker", "network", "rm", n], capture_output=True)


def git_repo(tmp, files):
    work, bare = os.path.join(tmp, "work"), os.path.join(tmp, "repo.git")
    os.makedirs(work)
    sh("git", "init", "-q", "--bare", bare)
    sh("git", "init", "-q", "-b", "main", work)
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(work, path)), exist_ok=True)
        open(os.path.join(work, path), "w").write(text)
    sh("git", "-C", work, "add", "-A"); sh("git", "-C", work, "commit", "-qm", "init", env=GITENV)
    sh("git", "-C", work, "push", "-q", bare, "HEAD:main")
    return work, bare


def floor_ms():
    return float(sh(RAW, "1", IMAGE))


def bench_push(runs):
    app = f"bpush{os.getpid()}"
    tmp = tempfile.mkdtemp()
    try:
        work, bare = git_repo(tmp, {"compose.yaml": compose(app, 0)})
        url = f"file://{bare}"
        d = Daemon(tmp, f"server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nwebhooks:\n  generic: {{ secret: bench }}\napps:\n  - name: {app}\n    source: {{ git: {url}, ref: main }}\n    sync: {{ interval: 1h }}\n")
        d.wait_synced(app)
        totals, floors = [], []
        for i in range(1, runs + 1):
            open(os.path.join(work, "compose.yaml"), "w").write(compose(app, i))
            sh("git", "-C", work, "commit", "-qam", f"v{i}", env=GITENV)
            t0 = time.perf_counter()
            sh("git", "-C", work, "push", "-q", bare, "HEAD:main")
            body = json.dumps({"repository": url, "ref": "refs/heads/main"}).encode()
            sig = hmac.new(b"bench", body, hashlib.sha256).hexdigest()
            req = urllib.request.Request(f"http://127.0.0.1:{d.port}/hooks/generic", data=body, method="POST",
                                         headers={"x-mooring-signature": f"sha256={sig}", "x-mooring-delivery": f"{app}-{i}"})
            urllib.request.urlopen(req, timeout=10)
            while True:
                out = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}} {{range .Config.Env}}{{.}} {{end}}", f"{app}-web-1"], capture_output=True, text=True).stdout
                if out.startswith("true") and f"VALUE={i} " in out:
                    break
                time.sleep(0.005)
            totals.append((time.perf_counter() - t0) * 1000)
            floors.append(floor_ms())
        d.stop()
        t, f = statistics.median(totals), statistics.median(floors)
        print(f"push-to-converged: median {t:.0f} ms over {runs} pushes; raw create+start of that container {f:.0f} ms; overhead {t - f:.0f} ms (target <= 300 ms)")
    finally:
        cleanup(app); shutil.rmtree(tmp, ignore_errors=True)


def bench_heal(runs):
    app = f"bheal{os.getpid()}"
    tmp = tempfile.mkdtemp()
    try:
        proj = os.path.join(tmp, "proj"); os.makedirs(proj)
        open(os.path.join(proj, "compose.yaml"), "w").write(compose(app, 0))
        d = Daemon(tmp, f"server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {app}\n    source: {{ dir: {proj} }}\n    sync: {{ interval: 1h }}\n")
        d.wait_synced(app)
        times = []
        for _ in range(runs):
            started = sh("docker", "inspect", "--format", "{{.State.StartedAt}}", f"{app}-web-1")
            sh("docker", "stop", "-t", "1", f"{app}-web-1")
            t0 = time.perf_counter()
            while True:
                out = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", f"{app}-web-1"], capture_output=True, text=True).stdout.split()
                if out and out[0] == "true" and out[1] != started:
                    break
                time.sleep(0.005)
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.5)
        d.stop()
        print(f"self-heal latency: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {runs} stops (target <= 2000 ms)")
    finally:
        cleanup(app); shutil.rmtree(tmp, ignore_errors=True)


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    return ticks, rss


def bench_steady(apps, seconds):
    prefix = f"bst{os.getpid()}"
    tmp = tempfile.mkdtemp()
    try:
        sh("docker", "network", "create", f"{prefix}-net")
        files = {f"apps/a{i}/compose.yaml": compose(f"{prefix}-a{i}", 0, f"{prefix}-net") for i in range(apps)}
        _, bare = git_repo(tmp, files)
        cfg = "server: { listen: 127.0.0.1:{port}, data_dir: ./state, workers: 4 }\napps:\n"
        for i in range(apps):
            cfg += f"  - name: {prefix}-a{i}\n    source: {{ git: file://{bare}, ref: main, path: apps/a{i} }}\n    sync: {{ interval: 30s }}\n"
        t0 = time.time()
        d = Daemon(tmp, cfg)
        for i in range(apps):
            d.wait_synced(f"{prefix}-a{i}", timeout=600)
        print(f"steady state: {apps} apps deployed in {time.time() - t0:.0f} s; measuring {seconds} s with nothing changing…")
        time.sleep(35)  # let the start-up settle, one full interval
        hz = os.sysconf("SC_CLK_TCK")
        t_a, _ = proc_stats(d.proc.pid); w_a = time.time()
        peak = 0
        while time.time() - w_a < seconds:
            time.sleep(1)
            peak = max(peak, proc_stats(d.proc.pid)[1])
        t_b, rss = proc_stats(d.proc.pid); w_b = time.time()
        cpu = (t_b - t_a) / hz / (w_b - w_a) * 100
        metrics = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{d.port}/metrics", headers={"authorization": f"Bearer {d.token}"})).read().decode()
        fetches = sum(int(l.rsplit(" ", 1)[1]) for l in metrics.splitlines() if l.startswith("mooring_source_fetch_total"))
        reconciles = sum(int(l.rsplit(" ", 1)[1]) for l in metrics.splitlines() if l.startswith("mooring_reconcile_duration_seconds_count"))
        d.stop()
        print(f"steady state: CPU {cpu:.2f} % of one core (target < 1 %), RSS {rss} MB, peak {peak} MB (target < 40 MB); "
              f"{fetches} fetches of the shared repository and {reconciles} reconciles since start")
    finally:
        cleanup(prefix); shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = sys.argv[1:]
    what = args[0] if args and not args[0].startswith("--") else "all"
    opt = lambda name, default: int(args[args.index(name) + 1]) if name in args else default
    prepare()
    print(f"machine: {os.cpu_count()} cores; docker {sh('docker', 'version', '--format', '{{.Server.Version}}')}")
    if what in ("push", "all"):
        bench_push(opt("--runs", 5))
    if what in ("heal", "all"):
        bench_heal(opt("--runs", 5))
    if what in ("steady", "all"):
        bench_steady(opt("--apps", 100), opt("--seconds", 120))


if __name__ == "__main__":
    main()
