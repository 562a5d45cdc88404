#!/usr/bin/env bash
# Benchmark (not a test): the cost of one poll when nothing changed, per source kind,
# against the raw CLI doing the same check, in the same run, on servers on 127.0.0.1:
#   git  (git daemon): mooring's fetch vs `git ls-remote` and vs `git fetch` in a clone
#   svn  (svnserve):   mooring's fetch vs `svn info`
#   hg   (hg serve):   mooring's fetch vs `hg pull` in a clone and vs `hg identify URL`
#   dir:               mooring's content hash vs `tar -c | sha256sum`
# Medians of N polls (default 20), milliseconds. Bytes on the wire are not measured.
#   bench/sources.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
cargo build --release -q -p mooring-bench --bin poll
poll=target/release/poll
export GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b HGRCPATH= HGUSER=b
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_cmd() { # median ms of N runs of a command
  for _ in $(seq "$n"); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 ))
  done | median | awk '{printf "%.1f", $1/1000}'
}
files() { mkdir -p "$1/apps/blog"; for i in $(seq 200); do echo "file $i" >"$1/apps/blog/f$i.txt"; done; printf 'services:\n  web:\n    image: x\n' >"$1/apps/blog/compose.yaml"; }

# git
mkdir -p "$work/git/w" && files "$work/git/w" && git -C "$work/git/w" init -q -b main && git -C "$work/git/w" add -A && git -C "$work/git/w" commit -qm one
git clone -q --bare "$work/git/w" "$work/git/srv/repo.git"
gp=$(port); "$(git --exec-path)/git-daemon" --reuseaddr --export-all --listen=127.0.0.1 --port="$gp" --base-path="$work/git/srv" "$work/git/srv" & pids+=($!); wait_port "$gp"
gurl="git://127.0.0.1:$gp/repo.git"
git clone -q "$gurl" "$work/git/clone"
g_m=$($poll "$gurl" main "$n"); g_ls=$(time_cmd git ls-remote "$gurl" main); g_f=$(time_cmd git -C "$work/git/clone" fetch -q origin)

# svn
svnadmin create "$work/svn/repo" 2>/dev/null || { mkdir -p "$work/svn"; svnadmin create "$work/svn/repo"; }
mkdir -p "$work/svn/imp/trunk" && files "$work/svn/imp/trunk" && svn import -q -m one "$work/svn/imp" "file://$work/svn/repo"
sp=$(port); svnserve -d --foreground --listen-host 127.0.0.1 --listen-port "$sp" -r "$work/svn" & pids+=($!); wait_port "$sp"
surl="svn://127.0.0.1:$sp/repo"
s_m=$($poll "$surl" trunk "$n"); s_i=$(time_cmd svn info --non-interactive "$surl/trunk")

# hg
mkdir -p "$work/hg/repo" && files "$work/hg/repo" && hg init "$work/hg/repo" && hg -R "$work/hg/repo" commit -q -A -m one
hp=$(port); hg -R "$work/hg/repo" serve -a 127.0.0.1 -p "$hp" -q & pids+=($!); wait_port "$hp"
hurl="http://127.0.0.1:$hp/"
hg clone -q -U "$hurl" "$work/hg/clone"
h_m=$($poll "hg+$hurl" default "$n"); h_p=$(time_cmd hg -R "$work/hg/clone" pull -q); h_i=$(time_cmd hg identify -r default "$hurl")

# dir
mkdir -p "$work/dir" && files "$work/dir"
d_m=$($poll "$work/dir" "" "$n"); d_t=$(time_cmd sh -c "tar -C '$work/dir' -cf - . | sha256sum")

echo "one poll with nothing changed, median of $n (ms), $(nproc) cores:"
printf '%-5s %-9s %s\n' kind mooring "raw CLI doing the same check"
printf '%-5s %-9s git ls-remote %s · git fetch (clone) %s\n' git "$g_m" "$g_ls" "$g_f"
printf '%-5s %-9s svn info %s\n' svn "$s_m" "$s_i"
printf '%-5s %-9s hg pull (clone) %s · hg identify URL %s\n' hg "$h_m" "$h_p" "$h_i"
printf '%-5s %-9s tar | sha256sum %s\n' dir "$d_m" "$d_t"
