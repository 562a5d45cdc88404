#!/usr/bin/env bash
# The test suite: unit tests, and integration tests against the real Docker daemon,
# real git/svn/hg servers and sshd on 127.0.0.1, SQLite on disk and Chromium. Installs
# and starts what they need first (scripts/test-deps.sh: as root, from Debian's
# packages), then builds the local test image. Extra arguments go to
# `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
scripts/busybox-image.sh
exec cargo nextest run --workspace "$@"
