#!/usr/bin/env bash
# The container image end to end, without a registry (run by .ci/run): builds an image
# equivalent to ./Dockerfile's — the same stripped binary and configuration, with the
# Dockerfile's runtime lines (below its "# runtime" mark) — from a root filesystem made
# here (the binary and the shared libraries it links), runs the daemon in it against the
# host's Docker socket with the example app (examples/hello, as app hello-image on a
# free port; the example's folder and the data directory mounted at their host paths,
# as Compose bind mounts point into them), waits until the site is served and the app is Synced and Healthy, then
# removes everything it made (the example's volume included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/busybox-image.sh >/dev/null
cargo build --release --locked -p mooring >&2
work=$(mktemp -d)
image=mooring.local/mooring:image-test
name=mooring-image-test-$$
app=hello-image-$$
cleanup() {
  docker rm -f "$name" "$app-web-1" "$app-counter-1" >/dev/null 2>&1 || true
  docker network rm "${app}_default" >/dev/null 2>&1 || true
  docker volume rm "${app}_data" >/dev/null 2>&1 || true
  docker rmi "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rootfs=$work/rootfs
mkdir -p "$rootfs"/{usr/bin,etc/mooring,tmp,var/lib/mooring}
strip -o "$rootfs/usr/bin/mooring" target/release/mooring
# The Dockerfile installs Debian's tini; its static build here.
cp /usr/bin/tini-static "$rootfs/usr/bin/tini"
for lib in $(ldd target/release/mooring | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cp packaging/container.yaml "$rootfs/etc/mooring/mooring.yaml"
echo 'root:x:0:0:root:/var/lib/mooring:/usr/bin/mooring' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
{
  echo "FROM scratch"
  echo "COPY rootfs/ /"
  sed -n '/^# runtime$/,$p' Dockerfile | grep -v '^#'
} >"$work/Dockerfile"
grep -q '^ENTRYPOINT' "$work/Dockerfile" || { echo "no runtime lines found in ./Dockerfile" >&2; exit 1; }
build_log=$work/build.log
docker build -q -t "$image" "$work" >"$build_log" 2>&1 || { cat "$build_log" >&2; exit 1; }
echo "== built $image from a local root filesystem with ./Dockerfile's runtime lines"

api=$(free_port)
site=$(free_port)
state=$work/state
mkdir -p "$state"
cat >"$work/mooring.yaml" <<YAML
server: { listen: 0.0.0.0:7420, data_dir: $state }
hosts:
  local: { docker: unix:///var/run/docker.sock }
apps:
  - name: $app
    source: { dir: $PWD/examples/hello }
    variables: { HELLO_PORT: "$site" }
YAML
docker run -d --name "$name" -p "127.0.0.1:$api:7420" \
  -v /var/run/docker.sock:/var/run/docker.sock \
  -v "$state:$state" \
  -v "$PWD/examples:$PWD/examples:ro" \
  -v "$work/mooring.yaml:/etc/mooring/mooring.yaml:ro" \
  "$image" >/dev/null
served=""
for _ in $(seq 120); do
  if curl -fsS "http://127.0.0.1:$site/" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$api/readyz" >/dev/null 2>&1; then
    served=1
    break
  fi
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || break
  sleep 1
done
[ -n "$served" ] || { echo "the example was not served by the daemon in the image:" >&2; docker logs "$name" >&2; exit 1; }
token=$(docker exec "$name" mooring token create --config /etc/mooring/mooring.yaml --role viewer)
status=""
for _ in $(seq 60); do
  status=$(MOORING_TOKEN=$token target/release/mooring app list --server "http://127.0.0.1:$api" -o json)
  if echo "$status" | python3 -c 'import json,sys; a=json.load(sys.stdin)["apps"][0]; sys.exit(0 if (a["sync"], a["health"]) == ("Synced", "Healthy") else 1)'; then
    echo "== the daemon in the image serves $app on 127.0.0.1:$site: Synced, Healthy"
    init=$(docker top "$name" -o pid,comm | awk 'NR == 2 { print $2 }')
    [ "$init" = tini ] || { echo "PID 1 in the image is $init, not tini" >&2; exit 1; }
    docker stop -t 60 "$name" >/dev/null
    code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || { echo "the daemon exited $code on docker stop" >&2; docker logs "$name" >&2; exit 1; }
    echo "== stopped cleanly; the image test passed"
    exit 0
  fi
  sleep 1
done
echo "the app did not become Synced and Healthy: $status" >&2
docker logs "$name" >&2
exit 1
