#!/usr/bin/env bash
# The Debian package end to end (as root; run by .ci/run): builds it
# (scripts/package-deb.sh), installs it, starts the systemd unit's command line as
# systemd would — its User, Group, SupplementaryGroups, StateDirectory,
# WorkingDirectory and Environment read from the installed unit — checks that the daemon
# answers, reaches Docker and takes a token, stops it with SIGTERM, then removes and
# purges the package. Leaves the machine as it found it (the state directory included).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/package-test.sh installs a package: run it as root" >&2; exit 1; }
if dpkg -s mooring >/dev/null 2>&1; then
  echo "a mooring package is installed already; not touching it" >&2
  exit 1
fi
deb=$(scripts/package-deb.sh)
echo "== installing $deb"
dpkg -i "$deb" >/dev/null
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true
  dpkg -P mooring >/dev/null 2>&1 || true
  rm -rf /var/lib/mooring
}
trap cleanup EXIT

for f in /usr/bin/mooring /lib/systemd/system/mooring.service /etc/mooring/mooring.yaml \
  /usr/share/man/man1/mooring.1.gz /usr/share/bash-completion/completions/mooring \
  /usr/share/zsh/vendor-completions/_mooring /usr/share/fish/vendor_completions.d/mooring.fish; do
  [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
id mooring | grep -q '(docker)' || { echo "user mooring is not in the docker group: $(id mooring)" >&2; exit 1; }
[ "$(stat -c '%U:%G %a' /etc/mooring/mooring.yaml)" = "root:mooring 640" ] \
  || { echo "/etc/mooring/mooring.yaml: $(stat -c '%U:%G %a' /etc/mooring/mooring.yaml)" >&2; exit 1; }
zcat /usr/share/man/man1/mooring.1.gz | grep -q '^\.TH mooring' || { echo "the man page is not roff" >&2; exit 1; }
bash -n /usr/share/bash-completion/completions/mooring

unit=/lib/systemd/system/mooring.service
# The unit as systemd reads it (a missing `man` for Documentation= is not the unit's fault).
complaints=$(systemd-analyze verify "$unit" 2>&1 | grep -v "Command 'man mooring(1)' failed" || true)
[ -z "$complaints" ] || { echo "systemd-analyze verify $unit:" >&2; echo "$complaints" >&2; exit 1; }
key() { sed -n "s/^$1=//p" "$unit" | tail -1; }
user=$(key User) group=$(key Group) groups=$(key SupplementaryGroups)
state=/var/lib/$(key StateDirectory) workdir=$(key WorkingDirectory) exec_start=$(key ExecStart)
environment=$(key Environment)
echo "== starting as systemd would: $exec_start (user $user, groups $group,$groups, state $state)"
install -d -m "$(key StateDirectoryMode)" -o "$user" -g "$group" "$state"
log=$(mktemp)
# shellcheck disable=SC2086 # ExecStart's words, as systemd splits them
setpriv --reuid "$user" --regid "$group" --groups "$groups" \
  env -i PATH=/usr/bin:/bin $environment sh -c "cd '$workdir' && exec $exec_start" >"$log" 2>&1 &
pid=$!
listen=$(sed -n 's/^ *listen: *\([^ ]*\).*/\1/p' /etc/mooring/mooring.yaml)
ready=""
for _ in $(seq 60); do
  if curl -fsS "http://$listen/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
[ -n "$ready" ] || { echo "the daemon did not become ready:" >&2; cat "$log" >&2; exit 1; }
token=$(setpriv --reuid "$user" --regid "$group" --groups "$groups" \
  env -i PATH=/usr/bin:/bin $environment mooring token create --config /etc/mooring/mooring.yaml --role viewer)
MOORING_TOKEN=$token mooring app list --server "http://$listen" >/dev/null
[ -n "$(find "$state" -name '*.db' -user "$user")" ] || { echo "the daemon wrote no store in $state" >&2; exit 1; }
kill -TERM "$pid"
wait "$pid" || { echo "the daemon did not stop cleanly on SIGTERM:" >&2; cat "$log" >&2; exit 1; }
pid=""
echo "== the daemon answered as $user, reached Docker, took a token and stopped on SIGTERM"

dpkg -r mooring >/dev/null
[ ! -e /usr/bin/mooring ] || { echo "/usr/bin/mooring is still there after removal" >&2; exit 1; }
[ -e /etc/mooring/mooring.yaml ] || { echo "removal took the configuration (a conffile stays until purge)" >&2; exit 1; }
dpkg -P mooring >/dev/null
[ ! -e /etc/mooring/mooring.yaml ] || { echo "purge left /etc/mooring/mooring.yaml" >&2; exit 1; }
! getent passwd mooring >/dev/null || { echo "purge left the user mooring" >&2; exit 1; }
echo "== removed and purged; the package test passed"
