#!/usr/bin/env bash
# Builds the local image `mooring.local/sqlite:latest`: the busybox image
# (scripts/busybox-image.sh) with Debian's sqlite3 and the libraries it links, copied
# from this machine — a real database engine for the app-consistent backup tests, with
# no registry. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
image=mooring.local/sqlite:latest
docker image inspect "$image" >/dev/null 2>&1 && exit 0
command -v sqlite3 >/dev/null || { echo "sqlite3 is missing: sudo apt-get install sqlite3" >&2; exit 1; }
scripts/busybox-image.sh >/dev/null
root=$(mktemp -d)
cid=""
trap 'rm -rf "$root"; [ -z "$cid" ] || docker rm -f "$cid" >/dev/null' EXIT
sqlite=$(readlink -f "$(command -v sqlite3)")
mkdir -p "$root/bin"
cp "$sqlite" "$root/bin/sqlite3"
# The libraries it links, and the dynamic loader, at the paths it looks them up by.
for lib in $(ldd "$sqlite" | grep -o '/[^ ]*'); do
  cp -L --parents "$lib" "$root"
done
cid=$(docker create mooring.local/busybox:latest)
docker cp "$root/." "$cid:/"
docker commit --change 'CMD ["sh"]' "$cid" "$image" >/dev/null
echo "built $image"
