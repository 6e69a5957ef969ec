#!/usr/bin/env bash
# laptop.sh - throughput of the laptop doors, SOCKS5 and [[forward]],
# next to socat relaying the same stream, and the memory of a daemon with
# one host endpoint:
#
#   vxl-c1 10.77.0.10 "web": httpd :8000 serves f (SIZE bytes)
#   vxl-h1 198.18.0.1 ============ veth ============ vxl-h2 198.18.0.2 (laptop)
#     httpd :8001 serves the same f               vxwire: host endpoint laptop
#     on the underlay                               10.77.0.50 on blue, socks
#                                                   127.0.0.1:1080, forward
#                                                   127.0.0.1:8080 -> web:8000
#                                                 socat 127.0.0.1:9080 ->
#                                                   198.18.0.1:8001
#
# Each figure REPS times, median kept; curl in vxl-h2 fetches f:
#   direct   from 198.18.0.1:8001, no relay
#   socat    from 127.0.0.1:9080: socat relays to the underlay server
#   forward  from 127.0.0.1:8080: vxwire forward, host endpoint, overlay, c1
#   socks    curl --socks5-hostname 127.0.0.1:1080 http://web.blue:8000/f
#   rss_idle_mib, rss_after_mib: VmRSS of the laptop daemon once up, and
#            after the transfers
#
# Output: RESULT mode=MODE metric=fetch_gbps value=GBIT_S per mode, and
# RESULT mode=laptop metric=rss_{idle,after}_mib (tests/bench/report reads
# them), then a table.
#
# Run as root: bash tests/bench/laptop.sh. Needs ip, curl, socat, busybox.
# Env: SIZE=1G, REPS=3, VXWIRE=bin/vxwire (built when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
SIZE=${SIZE:-1G} REPS=${REPS:-3}
BIN=${VXWIRE:-$PWD/bin/vxwire}
NS=(vxl-h1 vxl-h2 vxl-c1)
WORK="" PIDS=()

NAME="laptop bench"
. tests/bench/lib.sh

cleanup() {
  local rc=$? n
  trap - EXIT INT TERM
  [ ${#PIDS[@]} -eq 0 ] || stop "${PIDS[@]}"
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf /etc/netns/vxl-c1
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces)"
for t in ip curl socat busybox; do command -v "$t" >/dev/null || die "$t is not installed"; done
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/vxwire
trap cleanup EXIT INT TERM
WORK=$(mktemp -d)
mkdir "$WORK/www"
truncate -s "$SIZE" "$WORK/www/f"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/secret" && chmod 600 "$WORK/secret"

for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add vxl-u1 netns vxl-h1 mtu 1500 type veth peer name vxl-u2 netns vxl-h2 mtu 1500
ip -n vxl-h1 addr add 198.18.0.1/24 dev vxl-u1 && ip -n vxl-h1 link set vxl-u1 up
ip -n vxl-h2 addr add 198.18.0.2/24 dev vxl-u2 && ip -n vxl-h2 link set vxl-u2 up

conf() { # conf ID ADDR PEER_ID PEER_ADDR
  cat <<EOF
[host]
name = "$1"
address = "$2"
state_dir = "$WORK/$1-state"
api_socket = "$WORK/$1.sock"
secret_file = "$WORK/secret"
$( [ "$1" = h2 ] && echo 'socks = "127.0.0.1:1080"')

[[peer]]
name = "$3"
address = "$4"

[[network]]
name = "blue"
vni = 256
subnet = "10.77.0.0/24"
EOF
}
{ conf h1 198.18.0.1 h2 198.18.0.2; printf '\n[[endpoint]]\nnetwork = "blue"\nname = "web"\nnetns = "/var/run/netns/vxl-c1"\naddress = "10.77.0.10"\n'; } >"$WORK/h1.toml"
{ conf h2 198.18.0.2 h1 198.18.0.1; printf '\n[[endpoint]]\nnetwork = "blue"\nname = "laptop"\naddress = "10.77.0.50"\n\n[[forward]]\nnetwork = "blue"\nlisten = "127.0.0.1:8080"\nto = "web:8000"\n'; } >"$WORK/h2.toml"

ip netns exec vxl-h1 "$BIN" up -c "$WORK/h1.toml" >"$WORK/h1.log" 2>&1 & PIDS+=($!)
ip netns exec vxl-h2 "$BIN" up -c "$WORK/h2.toml" >"$WORK/h2.log" 2>&1 & PIDS+=($!)
LAPTOP=$!
ip netns exec vxl-c1 busybox httpd -f -p 8000 -h "$WORK/www" & PIDS+=($!)
ip netns exec vxl-h1 busybox httpd -f -p 198.18.0.1:8001 -h "$WORK/www" & PIDS+=($!)
ip netns exec vxl-h2 socat TCP-LISTEN:9080,bind=127.0.0.1,fork,reuseaddr TCP:198.18.0.1:8001 & PIDS+=($!)

# Wait (bounded) until the forward reaches web.
for i in $(seq 60); do
  ip netns exec vxl-h2 curl -s -o /dev/null -r 0-0 --max-time 2 http://127.0.0.1:8080/f && break
  [ "$i" -lt 60 ] || { tail -n 20 "$WORK/h1.log" "$WORK/h2.log" >&2; die "the forward never reached web"; }
  sleep 0.2
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$LAPTOP/status"; }
RSS_IDLE=$(rss)

# fetch ARGS...: Gbit/s of one download of f.
fetch() {
  ip netns exec vxl-h2 curl -s -o /dev/null --max-time 300 -w '%{speed_download}\n' "$@" |
    awk '{printf "%.2f\n", $1 * 8 / 1e9}'
}
declare -A R
for mode in direct socat forward socks; do
  case $mode in
    direct) args=(http://198.18.0.1:8001/f) ;;
    socat) args=(http://127.0.0.1:9080/f) ;;
    forward) args=(http://127.0.0.1:8080/f) ;;
    socks) args=(--socks5-hostname 127.0.0.1:1080 http://web.blue:8000/f) ;;
  esac
  R[$mode]=$(for r in $(seq "$REPS"); do fetch "${args[@]}"; done | median)
  echo "RESULT mode=$mode metric=fetch_gbps value=${R[$mode]}"
done
RSS_AFTER=$(rss)
for w in idle after; do
  kib=RSS_${w^^}
  echo "RESULT mode=laptop metric=rss_${w}_mib value=$(awk -v k="${!kib}" 'BEGIN {printf "%.1f", k / 1024}')"
done
printf '\n%-8s %10s %12s\n' mode Gbit/s "vs socat"
for mode in direct socat forward socks; do
  printf '%-8s %10s %12s\n' "$mode" "${R[$mode]}" "$(ratio "${R[$mode]}" "${R[socat]}")x"
done
printf 'laptop daemon RSS: %s KiB once up, %s KiB after the transfers\n' "$RSS_IDLE" "$RSS_AFTER"
