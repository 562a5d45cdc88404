#!/usr/bin/env bash
# Benchmark (not a test): backup and restore throughput of a volume of mixed files
# (default 1 GiB: random binary, compressible text, thousands of small files) with
# `mooring backup create/restore` — tar → zstd -3 + sha256 manifest, read back and
# verified; restores check every checksum and flush — by both access paths:
#   mount point  the volume's folder read/written by mooring itself (Docker on this machine)
#   archive API  dockerd's tar stream through a helper container (remote hosts, non-root)
# against `tar | zstd -3` and `zstd -d | tar` run directly on the volume's folder, in the
# same run. Target ratio >= 0.8. The page cache is dropped before every timed step.
# Run as root (reads the volume's mount point for the baseline).   bench/backup.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
scripts/busybox-image.sh
if [ -n "${MOORING_BIN:-}" ]; then mooring=$MOORING_BIN   # a prebuilt binary (skips the build)
else cargo build --release -q -p mooring --bin mooring; mooring=$PWD/target/release/mooring; fi
app=bbak$$
vol=${app}_data
work=$(mktemp -d)
export MOORING_DATA_DIR=$work/data
vols=("$vol" "${app}_m" "${app}_a" "${app}_t")
trap 'docker volume rm -f "${vols[@]}" >/dev/null 2>&1; rm -rf "$work"' EXIT
docker volume create --label io.mooring.app=$app "$vol" >/dev/null
random=$((mib * 4 / 10)); text=$((mib * 5 / 10))
docker run --rm -v "$vol:/v" mooring.local/busybox:latest sh -c "
  dd if=/dev/urandom of=/v/random.bin bs=1M count=$random 2>/dev/null
  yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c $((text * 1024 * 1024)) > /v/text.log
  mkdir -p /v/small; i=0; while [ \$i -lt 20000 ]; do echo \"small file \$i\" > /v/small/f\$i; i=\$((i+1)); done
  dd if=/dev/urandom of=/v/medium.bin bs=1M count=$((mib - random - text)) 2>/dev/null"
src=$(docker volume inspect -f '{{.Mountpoint}}' "$vol")
bytes=$(du -sb "$src" | cut -f1)
cold() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
ms() {
  local t0 t1; cold; t0=$(date +%s%N)
  "$@" >/dev/null 2>>"$work/commands.log" || { echo "failed: $*" >&2; tail -5 "$work/commands.log" >&2; exit 1; }
  t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))
}
newest() { $mooring backup list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
mount_dir() { docker volume create "$1" >/dev/null; docker volume inspect -f '{{.Mountpoint}}' "$1"; }

bm=$(MOORING_VOLUME_ACCESS=mount-point ms $mooring backup create $app --volume "$vol"); idm=$(newest)
ba=$(MOORING_VOLUME_ACCESS=archive-api ms $mooring backup create $app --volume "$vol")
bt=$(ms sh -c "tar -C '$src' -cf - . | zstd -3 -q -o '$work/base.tar.zst'")
rsm=$(MOORING_VOLUME_ACCESS=mount-point ms $mooring backup restore "$idm" --to-volume "${app}_m")
ra=$(MOORING_VOLUME_ACCESS=archive-api ms $mooring backup restore "$idm" --to-volume "${app}_a")
dst=$(mount_dir "${app}_t")
rt=$(ms sh -c "zstd -dc -q '$work/base.tar.zst' | tar -C '$dst' -xf -")
sync
rm -rf "${dst:?}"/* && rs=$(ms sh -c "zstd -dc -q '$work/base.tar.zst' | tar -C '$dst' -xf - && sync -f '$dst'")
for v in "${app}_m" "${app}_a"; do
  [ "$(cd "$(docker volume inspect -f '{{.Mountpoint}}' "$v")" && find . -type f | sort | xargs -d '\n' sha256sum | sha256sum)" = \
    "$(cd "$src" && find . -type f | sort | xargs -d '\n' sha256sum | sha256sum)" ] || { echo "restore into $v differs!"; exit 1; }
done
grep -h "read volume\|wrote volume" "$work/commands.log" | sed 's/^ */mooring: /'
awk -v b="$bytes" -v bm="$bm" -v ba="$ba" -v bt="$bt" -v rm="$rsm" -v ra="$ra" -v rt="$rt" -v rs="$rs" \
    -v cores="$(nproc)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  m = b / 1048576
  printf "volume: %.0f MiB of mixed files; %d cores; load average %s\n", m, cores, load
  printf "backup  mount point %6.1f MiB/s (%5d ms) · archive API %6.1f MiB/s (%5d ms) · tar|zstd -3 %6.1f MiB/s (%5d ms)\n", m/(bm/1000), bm, m/(ba/1000), ba, m/(bt/1000), bt
  printf "        ratio: mount point %.2f · archive API %.2f (target >= 0.8; mooring also reads back, verifies and fsyncs)\n", bt/bm, bt/ba
  printf "restore mount point %6.1f MiB/s (%5d ms) · archive API %6.1f MiB/s (%5d ms) · zstd -d|tar %6.1f MiB/s (%5d ms), with sync %6.1f MiB/s (%5d ms)\n", m/(rm/1000), rm, m/(ra/1000), ra, m/(rt/1000), rt, m/(rs/1000), rs
  printf "        ratio: mount point %.2f (%.2f vs tar+sync) · archive API %.2f (target >= 0.8; mooring checks every checksum and flushes)\n", rt/rm, rs/rm, rt/ra
}'
