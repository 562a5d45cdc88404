#!/usr/bin/env bash
# Benchmark (not a test): a project of 3 services built from the repository, measured in
# the same run against Docker Compose v2 on this machine:
#   - first build: `mooring sync` (builds and starts) against `docker compose up -d --build`
#     and `docker compose build` alone; both use the Engine's BuildKit (the classic
#     builder, `DOCKER_BUILDKIT=0 docker compose build`, is a second row); every build
#     starts without cache (the images and the build cache are removed first);
#   - no-change: `mooring sync` against `docker compose up -d --build` on the same,
#     unchanged project (Mooring must not call the builder).
#   bench/build.sh [RUNS]        (default 5 runs; prints medians in ms and ratios)
# Targets (issue 13): no-change <= 0.1x `docker compose up -d --build`; first build
# <= 1.1x `docker compose build`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/test-deps.sh   # installs Compose v2
scripts/busybox-image.sh
cargo build --release -q -p mooring --bin mooring
mooring=target/release/mooring

work=$(mktemp -d)
export MOORING_DATA_DIR="$work/data"
proj="$work/bench"
mkdir -p "$proj"
{
  echo "services:"
  for i in 1 2 3; do
    mkdir -p "$proj/s$i"
    printf 'FROM mooring.local/busybox:latest\nARG N=%s\nRUN mkdir -p /app && for j in $(seq 1 200); do echo "$N $j" > /app/f$j; done\nCOPY . /src\nCMD ["sleep", "3600"]\n' "$i" >"$proj/s$i/Dockerfile"
    head -c 2000000 /dev/urandom >"$proj/s$i/blob"
    printf '  s%s:\n    build: ./s%s\n    init: true\n' "$i" "$i"
  done
} >"$proj/compose.yaml"

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
fresh() {
  docker ps -aq --filter label=io.mooring.app=benchm | xargs -r docker rm -f >/dev/null
  docker network rm benchm_default >/dev/null 2>&1 || true
  (cd "$proj" && docker compose -p benchv down -t 1 >/dev/null 2>&1) || true
  docker rmi -f benchm-s1 benchm-s2 benchm-s3 >/dev/null 2>&1 || true
  docker rmi -f benchv-s1 benchv-s2 benchv-s3 >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || true
  docker image prune -f >/dev/null 2>&1 || true
}
trap 'fresh; rm -rf "$work"' EXIT

declare -a m_first m_phase m_noop v_up v_build v_noop v_classic
for r in $(seq 1 "$runs"); do
  fresh
  t0=$(now); $mooring sync "$proj" --app benchm >"$work/first.out" 2>&1; t1=$(now); m_first+=("$(ms "$t0" "$t1")")
  # The build phase alone: the builds run side by side, so the longest of them, from
  # Mooring's own timing of each action ("✓ build image … 1.2s").
  m_phase+=("$(grep -o 'build image [^ ]* (service [^)]*)  [0-9.]*s' "$work/first.out" | awk '{gsub("s","",$NF); if ($NF*1000 > m) m = $NF*1000} END {printf "%d", m}')")
  t0=$(now); $mooring sync "$proj" --app benchm >/dev/null; t1=$(now); m_noop+=("$(ms "$t0" "$t1")")
  fresh
  t0=$(now); (cd "$proj" && docker compose -p benchv build >/dev/null 2>&1); t1=$(now); v_build+=("$(ms "$t0" "$t1")")
  fresh
  t0=$(now); (cd "$proj" && DOCKER_BUILDKIT=0 docker compose -p benchv build >/dev/null 2>&1); t1=$(now); v_classic+=("$(ms "$t0" "$t1")")
  fresh
  t0=$(now); (cd "$proj" && docker compose -p benchv up -d --build >/dev/null 2>&1); t1=$(now); v_up+=("$(ms "$t0" "$t1")")
  t0=$(now); (cd "$proj" && docker compose -p benchv up -d --build >/dev/null 2>&1); t1=$(now); v_noop+=("$(ms "$t0" "$t1")")
done

med() { printf '%s\n' "$@" | median; }
mf=$(med "${m_first[@]}"); mp=$(med "${m_phase[@]}"); mn=$(med "${m_noop[@]}"); vb=$(med "${v_build[@]}"); vu=$(med "${v_up[@]}"); vn=$(med "${v_noop[@]}"); vc=$(med "${v_classic[@]}")
echo "3 built services, $runs runs, medians on $(nproc) cores; Compose $(docker compose version --short), engine $(docker version --format '{{.Server.Version}}')"
printf '%-48s %8s\n' "measure" "ms"
printf '%-48s %8s\n' "first build + start: mooring sync" "$mf"
printf '%-48s %8s\n' "first build + start: docker compose up -d --build" "$vu"
printf '%-48s %8s\n' "first build only: mooring (longest parallel build)" "$mp"
printf '%-48s %8s\n' "first build only: docker compose build" "$vb"
printf '%-48s %8s\n' "first build only: compose build, classic builder" "$vc"
printf '%-48s %8s\n' "no change: mooring sync" "$mn"
printf '%-48s %8s\n' "no change: docker compose up -d --build" "$vn"
awk -v mf="$mf" -v mp="$mp" -v mn="$mn" -v vb="$vb" -v vu="$vu" -v vn="$vn" -v vc="$vc" 'BEGIN {
  printf "ratio no change   mooring/compose up --build = %.3f (target <= 0.1)\n", mn/vn
  printf "ratio first build mooring build phase/compose build = %.3f (target <= 1.1)\n", mp/vb
  printf "ratio first build mooring sync/compose build = %.3f (Mooring also starts the containers)\n", mf/vb
  printf "ratio first build mooring sync/compose up --build = %.3f\n", mf/vu
  printf "ratio first build mooring sync/compose build (classic builder) = %.3f\n", mf/vc
}'
