#!/usr/bin/env bash
# Benchmark (not a test): a 10-service project deployed by `mooring sync`, by Docker
# Compose v2 (`docker compose up -d`, the peer) and by Debian's old v1 (`docker-compose`,
# a second row), measured in the same run on this machine, plus the raw Docker API
# floor (bollard create+start of the same containers, in parallel).
#   bench/deploy.sh [RUNS]        (default 5 runs; prints medians in ms and ratios)
# Targets (issue 12): cold deploy <= 0.8x of Compose v2, no-op <= 0.1x, overhead over
# the raw API floor <= 10%.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
scripts/test-deps.sh   # installs Compose v2
scripts/busybox-image.sh
cargo build --release -q -p mooring --bin mooring
cargo build --release -q -p mooring-docker --example raw_floor
mooring=target/release/mooring
raw=target/release/examples/raw_floor

work=$(mktemp -d)
export MOORING_DATA_DIR="$work/data"
proj="$work/bench"
mkdir -p "$proj"
{
  echo "services:"
  for i in $(seq 1 10); do
    printf '  s%s:\n    image: mooring.local/busybox:latest\n    init: true\n    command: ["sleep", "3600"]\n    environment:\n      INDEX: "%s"\n' "$i" "$i"
  done
} >"$proj/compose.yaml"

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
down_mooring() { docker ps -aq --filter label=io.mooring.app=benchm | xargs -r docker rm -f >/dev/null; docker network rm benchm_default >/dev/null 2>&1 || true; }
down_compose() { (cd "$proj" && docker-compose -p benchc down -t 1 >/dev/null 2>&1) || true; }
down_v2() { (cd "$proj" && docker compose -p benchv down -t 1 >/dev/null 2>&1) || true; }
trap 'down_mooring; down_compose; down_v2; rm -rf "$work"' EXIT

declare -a m_cold m_noop c_cold c_noop v_cold v_noop floor
for r in $(seq 1 "$runs"); do
  down_mooring; down_compose; down_v2
  t0=$(now); $mooring sync "$proj" --app benchm >/dev/null; t1=$(now); m_cold+=("$(ms "$t0" "$t1")")
  t0=$(now); $mooring sync "$proj" --app benchm >/dev/null; t1=$(now); m_noop+=("$(ms "$t0" "$t1")")
  down_mooring
  t0=$(now); (cd "$proj" && docker-compose -p benchc up -d >/dev/null 2>&1); t1=$(now); c_cold+=("$(ms "$t0" "$t1")")
  t0=$(now); (cd "$proj" && docker-compose -p benchc up -d >/dev/null 2>&1); t1=$(now); c_noop+=("$(ms "$t0" "$t1")")
  down_compose
  t0=$(now); (cd "$proj" && docker compose -p benchv up -d >/dev/null 2>&1); t1=$(now); v_cold+=("$(ms "$t0" "$t1")")
  t0=$(now); (cd "$proj" && docker compose -p benchv up -d >/dev/null 2>&1); t1=$(now); v_noop+=("$(ms "$t0" "$t1")")
  down_v2
  floor+=("$($raw 10 mooring.local/busybox:latest | cut -d. -f1)")
done

med() { printf '%s\n' "$@" | median; }
mc=$(med "${m_cold[@]}"); mn=$(med "${m_noop[@]}"); cc=$(med "${c_cold[@]}"); cn=$(med "${c_noop[@]}"); fl=$(med "${floor[@]}")
vc=$(med "${v_cold[@]}"); vn=$(med "${v_noop[@]}")
echo "10 services, $runs runs, medians on $(nproc) cores; Compose $(docker compose version --short), docker-compose $(docker-compose version --short), engine $(docker version --format '{{.Server.Version}}')"
printf '%-36s %8s\n' "measure" "ms"
printf '%-36s %8s\n' "cold deploy: mooring sync" "$mc"
printf '%-36s %8s\n' "cold deploy: docker compose up -d (v2)" "$vc"
printf '%-36s %8s\n' "cold deploy: docker-compose up -d (v1)" "$cc"
printf '%-36s %8s\n' "no-op: mooring sync" "$mn"
printf '%-36s %8s\n' "no-op: docker compose up -d (v2)" "$vn"
printf '%-36s %8s\n' "no-op: docker-compose up -d (v1)" "$cn"
printf '%-36s %8s\n' "floor: raw API create+start" "$fl"
awk -v mc="$mc" -v cc="$cc" -v mn="$mn" -v cn="$cn" -v vc="$vc" -v vn="$vn" -v fl="$fl" 'BEGIN {
  printf "ratio cold  mooring/compose v2 = %.3f (target <= 0.8); v1 %.3f\n", mc/vc, mc/cc
  printf "ratio no-op mooring/compose v2 = %.3f (target <= 0.1); v1 %.3f\n", mn/vn, mn/cn
  printf "mooring cold overhead over the raw floor = %d ms (%.0f%%, target <= 10%%)\n", mc-fl, (mc-fl)*100/fl
}'
