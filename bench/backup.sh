#!/usr/bin/env bash
# Benchmark (not a test): backup and restore throughput of a volume of mixed files
# (default 1 GiB: random binary, compressible text, thousands of small files), with
# `mooring backup create/restore` (Docker archive API → tar → zstd + sha256 manifest,
# read back and verified) against `tar | zstd -3` and `zstd -d | tar` run directly on the
# volume's folder, in the same run. Target ratio >= 0.8. Run as root (reads the volume's
# mount point for the baseline).   bench/backup.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
scripts/busybox-image.sh
cargo build --release -q -p mooring --bin mooring
mooring=$PWD/target/release/mooring
app=bbak$$
vol=${app}_data
copy=${app}_copy
work=$(mktemp -d)
export MOORING_DATA_DIR=$work/data
trap 'docker volume rm -f "$vol" "$copy" >/dev/null 2>&1; rm -rf "$work"' EXIT
docker volume create --label io.mooring.app=$app "$vol" >/dev/null
random=$((mib * 4 / 10)); text=$((mib * 5 / 10))
docker run --rm -v "$vol:/v" mooring.local/busybox:latest sh -c "
  dd if=/dev/urandom of=/v/random.bin bs=1M count=$random 2>/dev/null
  yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c $((text * 1024 * 1024)) > /v/text.log
  mkdir -p /v/small; i=0; while [ \$i -lt 20000 ]; do echo \"small file \$i\" > /v/small/f\$i; i=\$((i+1)); done
  dd if=/dev/urandom of=/v/medium.bin bs=1M count=$((mib - random - text)) 2>/dev/null"
src=$(docker volume inspect -f '{{.Mountpoint}}' "$vol")
bytes=$(du -sb "$src" | cut -f1)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
now() { date +%s%N; }
t0=$(now); $mooring backup create $app --volume "$vol" >/dev/null; t1=$(now)
id=$($mooring backup list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
t2=$(now); tar -C "$src" -cf - . | zstd -3 -q -o "$work/base.tar.zst"; t3=$(now)
t4=$(now); $mooring backup restore "$id" --to-volume "$copy" >/dev/null; t5=$(now)
dst=$(mktemp -d "$work/restore.XXXX")
t6=$(now); zstd -dc -q "$work/base.tar.zst" | tar -C "$dst" -xf -; t7=$(now)
awk -v b="$bytes" -v mb="$(( (t1-t0)/1000000 ))" -v tb="$(( (t3-t2)/1000000 ))" -v mr="$(( (t5-t4)/1000000 ))" -v tr="$(( (t7-t6)/1000000 ))" -v cores="$(nproc)" 'BEGIN {
  m = b / 1048576
  printf "volume: %.0f MiB of mixed files; %d cores\n", m, cores
  printf "backup : mooring %6.1f MiB/s (%d ms, includes read-back verification) · tar|zstd -3 %6.1f MiB/s (%d ms) · ratio %.2f (target >= 0.8)\n", m/(mb/1000), mb, m/(tb/1000), tb, (m/(mb/1000))/(m/(tb/1000))
  printf "restore: mooring %6.1f MiB/s (%d ms, verifies first) · zstd -d|tar %6.1f MiB/s (%d ms) · ratio %.2f (target >= 0.8)\n", m/(mr/1000), mr, m/(tr/1000), tr, (m/(mr/1000))/(m/(tr/1000))
}'
