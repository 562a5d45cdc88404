#!/usr/bin/env bash
# Benchmark (not a test): an app-consistent backup of a SQLite database of MiB (default
# 1024) through the daemon — `data.consistent`: `sqlite3 .dump` run in the service's
# running container, its output streamed into a verified backup (tar of parts, zstd -3,
# sha256 manifest, read back) — against, in the same run and on the same database, the
# engine's own dump tool piped to zstd: `docker exec … sqlite3 .dump | zstd -3 > file`
# (and `… && sync`, which flushes as Mooring does). ROUNDS rounds (default 3), the order
# alternating, the page cache dropped before every timed step; medians are reported, and
# every round's times. Target: the peer's time / Mooring's ≥ 0.9.
# Run as root (drops the page cache).   bench/dump.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${ROUNDS:-3}
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
scripts/sqlite-image.sh
if [ -n "${MOORING_BIN:-}" ]; then mooring=$MOORING_BIN   # a prebuilt binary (skips the build)
else cargo build --release -q -p mooring --bin mooring; mooring=$PWD/target/release/mooring; fi
app=bdump$$
db=$app-db-1
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; wait 2>/dev/null; docker rm -f "$db" >/dev/null 2>&1; docker network rm "${app}_default" >/dev/null 2>&1; docker volume rm -f "${app}_data" >/dev/null 2>&1; rm -rf "$work"' EXIT
mkdir "$work/app"
cat >"$work/app/compose.yaml" <<YAML
name: $app
services:
  db:
    image: mooring.local/sqlite:latest
    init: true
    command: [sleep, "86400"]
    volumes: [data:/data]
volumes:
  data: {}
YAML
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/mooring.yaml" <<YAML
server: { listen: 127.0.0.1:$port, data_dir: $work/state }
apps:
  - name: $app
    source: { dir: $work/app }
    sync: { interval: 1h }
    data:
      consistent:
        data: { service: db, dump: [sqlite3, /data/app.db, .dump], load: [sqlite3, /data/loaded.db] }
YAML
"$mooring" serve --config "$work/mooring.yaml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
token=$("$mooring" token create --role admin --config "$work/mooring.yaml")
api() { curl -fsS -H "authorization: Bearer $token" "$@"; }
for _ in $(seq 300); do
  api "http://127.0.0.1:$port/api/v1/apps/$app" 2>/dev/null | grep -q '"sync":"Synced"' && break; sleep 0.5
done
# Rows of about 420 bytes: a name, 100 random bytes as hex, 200 characters of text.
rows=$((mib * 1024 * 1024 / 420))
echo "filling the database: $rows rows"
docker exec "$db" sqlite3 /data/app.db "create table t(id integer primary key, name text, body text);
  with recursive n(i) as (select 1 union all select i + 1 from n where i < $rows)
  insert into t(name, body) select printf('name %d', i), hex(randomblob(100)) || ' ' || printf('%.*c', 200, 'x') from n;"
size=$(docker exec "$db" stat -c %s /data/app.db)
cold() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep 1; }
ms() {
  local t0 t1; cold; t0=$(date +%s%N)
  "$@" >/dev/null 2>>"$work/commands.log" || { echo "failed: $*" >&2; tail -5 "$work/commands.log" >&2; exit 1; }
  t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))
}
# (`set -e` does not hold inside a function called as `f || …`: each step is chained.)
mooring_dump() {
  api -X POST -H 'content-type: application/json' -d "{\"volume\": \"${app}_data\"}" \
    "http://127.0.0.1:$port/api/v1/apps/$app/backups" >"$work/outcome.json" \
    && grep -q '"dump":"db"' "$work/outcome.json" \
    && rm -f "$work"/state/backups/*.tar.zst   # the disk for the next round (manifests stay)
}
peer() { docker exec "$db" sqlite3 /data/app.db .dump | zstd -3 -q -f -o "$work/peer.sql.zst"; }
peer_sync() { peer && sync; }
m=(); p=(); ps=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    m+=("$(ms mooring_dump)"); p+=("$(ms peer)"); ps+=("$(ms peer_sync)")
  else
    ps+=("$(ms peer_sync)"); p+=("$(ms peer)"); m+=("$(ms mooring_dump)")
  fi
  echo "round $r: mooring ${m[-1]} ms, dump | zstd ${p[-1]} ms, … && sync ${ps[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mm=$(median "${m[@]}"); pm=$(median "${p[@]}"); psm=$(median "${ps[@]}")
dumped=$(zstd -dc "$work/peer.sql.zst" | wc -c)
echo "database $((size / 1048576)) MiB, dump $((dumped / 1048576)) MiB, ${rounds} rounds, medians:"
echo "  mooring (dump in the service, verified backup)  $mm ms  ($((dumped / 1048576 * 1000 / mm)) MiB/s of dump)"
echo "  sqlite3 .dump | zstd -3                          $pm ms  ratio $(python3 -c "print(f'{$pm / $mm:.2f}')")"
echo "  sqlite3 .dump | zstd -3 && sync                  $psm ms  ratio $(python3 -c "print(f'{$psm / $mm:.2f}')")"
