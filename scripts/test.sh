#!/usr/bin/env bash
# The test suite: unit tests, and integration tests against the real Docker daemon,
# real git repositories and `git daemon` on 127.0.0.1. Builds the local test image
# first (installing Debian's busybox-static when run as root). Extra arguments go to
# `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/busybox-image.sh
exec cargo nextest run --workspace "$@"
