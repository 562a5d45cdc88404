#!/usr/bin/env bash
# Benchmark (not a test): backup and restore throughput of a volume of mixed files
# (default 1 GiB: random binary, compressible text, thousands of small files) with
# `mooring backup create/restore` — tar → zstd -3 + sha256 manifest, read back and
# verified; restores check every checksum and flush — by both access paths:
#   mount point  the volume's folder read/written by mooring itself (Docker on this machine)
#   archive API  dockerd's tar stream through a helper container (remote hosts, non-root)
# against, in the same run and on the same data:
#   `tar | zstd -3` and `zstd -d | tar` on the volume's folder (also `... && sync`, which
#   flushes as mooring does), the issue's baselines;
#   `docker cp helper:/v/. - | zstd -3` and `zstd -d | docker cp - helper:/v`, the same
#   Docker archive API with no checks: the floor of the archive-API path.
# ROUNDS rounds (default 3), each step in turn, the page cache dropped before every timed
# step; medians are reported, and every round's times. Target ratio >= 0.8.
# Run as root (reads the volume's mount point for the baseline).   bench/backup.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${ROUNDS:-3}
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
scripts/busybox-image.sh
if [ -n "${MOORING_BIN:-}" ]; then mooring=$MOORING_BIN   # a prebuilt binary (skips the build)
else cargo build --release -q -p mooring --bin mooring; mooring=$PWD/target/release/mooring; fi
image=mooring.local/busybox:latest
app=bbak$$
vol=${app}_data
work=$(mktemp -d)
export MOORING_DATA_DIR=$work/data
vols=("$vol" "${app}_dst")
helpers=()
trap 'docker rm -f "${helpers[@]}" >/dev/null 2>&1; docker volume rm -f "${vols[@]}" >/dev/null 2>&1; rm -rf "$work"' EXIT
docker volume create --label io.mooring.app=$app "$vol" >/dev/null
random=$((mib * 4 / 10)); text=$((mib * 5 / 10))
docker run --rm -v "$vol:/v" $image sh -c "
  dd if=/dev/urandom of=/v/random.bin bs=1M count=$random 2>/dev/null
  yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c $((text * 1024 * 1024)) > /v/text.log
  mkdir -p /v/small; i=0; while [ \$i -lt 20000 ]; do echo \"small file \$i\" > /v/small/f\$i; i=\$((i+1)); done
  dd if=/dev/urandom of=/v/medium.bin bs=1M count=$((mib - random - text)) 2>/dev/null"
src=$(docker volume inspect -f '{{.Mountpoint}}' "$vol")
bytes=$(du -sb "$src" | cut -f1)
sums() { (cd "$1" && find . -type f | sort | xargs -d '\n' sha256sum | sha256sum); }
want=$(sums "$src")
cold() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; sleep 1; }
ms() {
  local t0 t1; cold; t0=$(date +%s%N)
  "$@" >/dev/null 2>>"$work/commands.log" || { echo "failed: $*" >&2; tail -5 "$work/commands.log" >&2; exit 1; }
  t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))
}
newest() { $mooring backup list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
# An empty restore target: its mount point, and a stopped container that mounts it.
dst=""; dst_helper=""
fresh() {
  [ -n "$dst_helper" ] && docker rm -f "$dst_helper" >/dev/null
  docker volume rm -f "${app}_dst" >/dev/null 2>&1 || true
  docker volume create "${app}_dst" >/dev/null
  dst=$(docker volume inspect -f '{{.Mountpoint}}' "${app}_dst")
  dst_helper=$(docker create -v "${app}_dst:/v" $image true); helpers+=("$dst_helper")
}
check() { [ "$(sums "$dst")" = "$want" ] || { echo "restore by $1 differs!" >&2; exit 1; }; }
src_helper=$(docker create -v "$vol:/v:ro" $image true); helpers+=("$src_helper")

declare -A t
add() { t[$1]="${t[$1]:-} $2"; }
for round in $(seq "$rounds"); do
  rm -rf "$MOORING_DATA_DIR"
  add bm "$(MOORING_VOLUME_ACCESS=mount-point ms $mooring backup create $app --volume "$vol")"; id=$(newest)
  add ba "$(MOORING_VOLUME_ACCESS=archive-api ms $mooring backup create $app --volume "$vol")"
  add bt "$(ms sh -c "tar -C '$src' -cf - . | zstd -3 -q -f -o '$work/base.tar.zst'")"
  add bd "$(ms sh -c "docker cp '$src_helper:/v/.' - | zstd -3 -q -f -o '$work/cp.tar.zst'")"
  fresh; add rm "$(MOORING_VOLUME_ACCESS=mount-point ms $mooring backup restore "$id" --to-volume "${app}_dst")"; check "mooring (mount point)"
  fresh; add ra "$(MOORING_VOLUME_ACCESS=archive-api ms $mooring backup restore "$id" --to-volume "${app}_dst")"; check "mooring (archive API)"
  fresh; add rt "$(ms sh -c "zstd -dc -q '$work/base.tar.zst' | tar -C '$dst' -xf -")"; check "zstd -d | tar"
  fresh; add rs "$(ms sh -c "zstd -dc -q '$work/base.tar.zst' | tar -C '$dst' -xf - && sync -f '$dst'")"
  fresh; add rd "$(ms sh -c "zstd -dc -q '$work/cp.tar.zst' | docker cp - '$dst_helper:/v'")"; check "docker cp"
  echo "round $round done" >&2
done
grep -h "read volume\|wrote volume" "$work/commands.log" | sort -u | sed 's/^ */mooring: /'
python3 - "$bytes" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "${t[bm]}" "${t[ba]}" "${t[bt]}" "${t[bd]}" "${t[rm]}" "${t[ra]}" "${t[rt]}" "${t[rs]}" "${t[rd]}" <<'EOF'
import statistics, sys
b, cores, load = int(sys.argv[1]), sys.argv[2], sys.argv[3]
names = ["bm", "ba", "bt", "bd", "rm", "ra", "rt", "rs", "rd"]
runs = {n: [int(x) for x in v.split()] for n, v in zip(names, sys.argv[4:])}
med = {n: statistics.median(v) for n, v in runs.items()}
mib = b / 1048576
def rate(n): return f"{mib / (med[n] / 1000):6.1f} MiB/s ({med[n]:5.0f} ms; runs {' '.join(map(str, runs[n]))})"
print(f"volume: {mib:.0f} MiB of mixed files; {cores} cores; load average {load}; medians of {len(runs['bm'])} rounds")
print("backup")
print(f"  mooring, mount point      {rate('bm')}")
print(f"  mooring, archive API      {rate('ba')}")
print(f"  tar | zstd -3             {rate('bt')}")
print(f"  docker cp | zstd -3       {rate('bd')}")
print(f"  ratio: mount point / tar|zstd {med['bt']/med['bm']:.2f} · archive API / tar|zstd {med['bt']/med['ba']:.2f}, "
      f"/ docker cp|zstd {med['bd']/med['ba']:.2f} (target >= 0.8; mooring also reads back, verifies and fsyncs)")
print("restore")
print(f"  mooring, mount point      {rate('rm')}")
print(f"  mooring, archive API      {rate('ra')}")
print(f"  zstd -d | tar             {rate('rt')}")
print(f"  zstd -d | tar && sync     {rate('rs')}")
print(f"  zstd -d | docker cp       {rate('rd')}")
print(f"  ratio: mount point / zstd|tar {med['rt']/med['rm']:.2f} (/ with sync {med['rs']/med['rm']:.2f}) · "
      f"archive API / zstd|tar {med['rt']/med['ra']:.2f}, / zstd|docker cp {med['rd']/med['ra']:.2f} "
      f"(target >= 0.8; mooring checks every checksum and flushes)")
EOF
