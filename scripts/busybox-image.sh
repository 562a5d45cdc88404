#!/usr/bin/env bash
# Builds the local image `mooring.local/busybox:latest` (and optional extra tags given as
# arguments) from Debian's busybox-static: no registry is needed. Idempotent.
set -euo pipefail
image=mooring.local/busybox:latest
if ! docker image inspect "$image" >/dev/null 2>&1; then
  if [ ! -x /bin/busybox ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    else
      echo "busybox-static is missing: sudo apt-get install busybox-static" >&2
      exit 1
    fi
  fi
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs"/{bin,etc,tmp,var/www,proc,sys,dev,run}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["sh"]' \
    - "$image" >/dev/null
  echo "built $image"
fi
for tag in "$@"; do docker tag "$image" "$tag"; done
