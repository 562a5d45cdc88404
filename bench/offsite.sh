#!/usr/bin/env bash
# Benchmark (not a test): an off-host copy of a backup to an SFTP server — Mooring's
# SFTP target (the archive streamed through ssh, written and hashed by the server in one
# pass, flushed, the manifest read back, renamed) — against `scp` of the same archive (ssh's
# default cipher, and AES-GCM first as Mooring prefers on a CPU with AES instructions),
# and against `scp` then `sync` and `openssl dgst -sha256` on the server (the same
# guarantees by hand), in the same run, to an sshd this script starts on 127.0.0.1
# (loopback: the network is not the limit, ssh's encryption and the disks are).
# Target: scp's time / Mooring's ≥ 0.9.
#   bench/offsite.sh [MiB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${2:-3}
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$work/host" -C bench-host
ssh-keygen -q -t ed25519 -N '' -f "$work/client" -C bench-client
cp "$work/client.pub" "$work/authorized_keys"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $work/host
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
CONF
mkdir -p /run/sshd "$work/remote"
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "[127.0.0.1]:$port $(cat "$work/host.pub")" >"$work/known_hosts"
cargo run --release -q -p mooring-backup --example offsite -- \
  "$(id -un)@127.0.0.1" "$port" "$work/client" "$work/known_hosts" "$work/remote" "$mib" "$rounds"
