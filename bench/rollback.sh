#!/usr/bin/env bash
# Benchmark (not a test): how long an automatic rollback takes — from the end of a
# failed revision's probation (`sync.rollback`, its health check failing) to the
# revision before running again with its data restored (`data.restore_on_rollback`) —
# with a volume of MiB (default 1024) of random data, through the daemon and a Git
# repository on this machine. Reported: that time, and the rollback's two operations
# (the restore, the deploy) as its history records them. ROUNDS rounds (default 3).
# Run as root.   bench/rollback.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${ROUNDS:-3}
scripts/busybox-image.sh >/dev/null
if [ -n "${MOORING_BIN:-}" ]; then mooring=$MOORING_BIN   # a prebuilt binary (skips the build)
else cargo build --release -q -p mooring --bin mooring; mooring=$PWD/target/release/mooring; fi
app=brb$$
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; wait 2>/dev/null; docker rm -f "$app-db-1" >/dev/null 2>&1; docker network rm "${app}_default" >/dev/null 2>&1; docker volume rm -f "${app}_data" >/dev/null 2>&1; rm -rf "$work"' EXIT
git init -q -b main "$work/repo"
revision() {  # NAME HEALTHY(true|false)
  cat >"$work/repo/compose.yaml" <<YAML
name: $app
services:
  db:
    image: mooring.local/busybox:latest
    init: true
    environment: { REVISION: $1 }
    command: ["sh", "-c", "[ -f /data/blob ] || dd if=/dev/urandom of=/data/blob bs=1M count=$mib 2>/dev/null; exec sleep 86400"]
    volumes: ["data:/data"]
    healthcheck: { test: ["CMD", "$2"], interval: 1s, retries: 1 }
volumes:
  data: {}
YAML
  git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=b -c user.email=b@b commit -qm "$1"
  git -C "$work/repo" rev-parse HEAD
}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/mooring.yaml" <<YAML
server: { listen: 127.0.0.1:$port, data_dir: $work/state }
apps:
  - name: $app
    source: { git: file://$work/repo, ref: main }
    sync: { interval: 1s, rollback: { on_failure: true, health_timeout: 5s } }
    data: { restore_on_rollback: [data] }
YAML
good=$(revision good true)
"$mooring" serve --config "$work/mooring.yaml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
token=$("$mooring" token create --role admin --config "$work/mooring.yaml")
status() { curl -fsS -H "authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/apps/$app"; }
field() { python3 -c "import json,sys; a=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
until status 2>/dev/null | field 'a["revision"] == "'"$good"'" and a["health"] == "Healthy"' | grep -q True; do sleep 0.2; done
echo "volume: $mib MiB; good revision running"
for r in $(seq "$rounds"); do
  bad=$(revision "bad$r" false)
  # The bad revision on probation: its deadline.
  until=""
  while [ -z "$until" ]; do
    until=$(status | field 'a.get("probation", {}).get("until", "") if a.get("probation", {}).get("revision") == "'"$bad"'" else ""' 2>/dev/null || true)
    sleep 0.05
  done
  while ! status | field 'a["revision"] == "'"$good"'" and a["health"] == "Healthy" and "RolledBack" in json.dumps(a["conditions"])' 2>/dev/null | grep -q True; do
    sleep 0.05
  done
  done_ms=$(date +%s%3N)
  ops=$(curl -fsS -H "authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/apps/$app/operations?limit=4" \
    | python3 -c 'import json,sys
ops = [o for o in json.load(sys.stdin)["operations"] if o["trigger"] == "auto-rollback"][:2]
def one(o):
    kind = (o["actions"] or [{}])[0].get("kind", "?")
    return "%s %d ms" % (kind, o["finished_at"] - o["started_at"])
print(", ".join(one(o) for o in reversed(ops)))')
  echo "round $r: back to the good revision, data restored and Healthy $((done_ms - until)) ms after the deadline ($ops)"
  # The next round starts from the good revision again, as the source's newest.
  good=$(revision "good$r" true)
  until status | field 'a["revision"] == "'"$good"'" and a["health"] == "Healthy"' | grep -q True; do sleep 0.2; done
done
