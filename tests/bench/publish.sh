#!/usr/bin/env bash
# publish.sh - published ports and VIP services of vxwire next to the
# kernel's and docker-proxy's ways, measured in the same run:
#
#                         vxp-sw: bridge br0 (the underlay)
#        /                         |                         \
#   vxp-h1 198.18.0.1         vxp-h2 198.18.0.2         vxp-cl 198.18.0.50 (client)
#     vxwire: c1 10.77.0.10      vxwire (no container)
#             w1 10.77.0.11 (alias web: iperf3 -s, connrate serve :7000, :7001)
#     kernel: veth vxp-kv 10.99.0.1 ── vxp-k1 10.99.0.2 (iperf3 -s, connrate :7000)
#
#   vxwire    [[publish]] 5201 and 7000 -> web (ingress), [[service]] web (VIP)
#   dnat      nftables DNAT on h1: 15201, 17000 -> 10.99.0.2 (the kernel path)
#   socat     on h1: 25201, 27000 -> 10.99.0.2, fork per connection (what
#             docker-proxy does: a userspace proxy)
#   relay     vxwire's 5201 and 7000 on h2, which runs no web: relayed to h1
#
# Figures, each REPS times, median kept:
#   pub_gbps    iperf3 -c HOST -p PORT -t T from vxp-cl, receiver Gbit/s
#   pub_cps     connrate dial HOST:PORT N C from vxp-cl: connections/s, each
#               connect + 1 byte each way + close (failed=: the failures of
#               the last run)
#   vip_gbps, vip_cps   the same from c1 to web's VIP, and to w1's own
#               address (direct; connections to port 7001, see main)
# Each as RESULT mode=MODE metric=METRIC value=V (tests/bench/report reads
# them).
#
# Run as root: bash tests/bench/publish.sh (make bench builds bin/vxwire).
# Needs ip, nft, iperf3, socat, jq, go. Env: T=5, REPS=3, N=3000, C=8,
# VXWIRE=bin/vxwire.
set -euo pipefail

cd "$(dirname "$0")/../.."
T=${T:-5} REPS=${REPS:-3} N=${N:-3000} C=${C:-8}
BIN=${VXWIRE:-$PWD/bin/vxwire}
NS=(vxp-sw vxp-h1 vxp-h2 vxp-cl vxp-c1 vxp-w1 vxp-k1)
WORK="" PIDS=()

NAME="publish bench"
. tests/bench/lib.sh

cleanup() {
  local rc=$? n
  trap - EXIT INT TERM
  [ ${#PIDS[@]} -eq 0 ] || stop "${PIDS[@]}"
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

# bg NS CMD...: run CMD in namespace NS in the background, remembered for cleanup.
bg() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@" >>"$WORK/$ns.log" 2>&1 &
  PIDS+=($!)
}

topology() {
  local n i
  for n in "${NS[@]}"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
  done
  ip -n vxp-sw link add br0 type bridge
  ip -n vxp-sw link set br0 up
  i=0
  for n in vxp-h1:198.18.0.1 vxp-h2:198.18.0.2 vxp-cl:198.18.0.50; do
    i=$((i + 1))
    ip link add "vxp-u$i" netns "${n%%:*}" type veth peer name "vxp-s$i" netns vxp-sw
    ip -n vxp-sw link set "vxp-s$i" master br0 up
    ip -n "${n%%:*}" addr add "${n#*:}/24" dev "vxp-u$i"
    ip -n "${n%%:*}" link set "vxp-u$i" up
  done
  # The kernel's container on h1, routed, as Docker's bridge does.
  ip link add vxp-kv netns vxp-h1 type veth peer name eth0 netns vxp-k1
  ip -n vxp-h1 addr add 10.99.0.1/24 dev vxp-kv
  ip -n vxp-h1 link set vxp-kv up
  ip -n vxp-k1 addr add 10.99.0.2/24 dev eth0
  ip -n vxp-k1 link set eth0 up
  ip -n vxp-k1 route add default via 10.99.0.1
  ip netns exec vxp-h1 sysctl -qw net.ipv4.ip_forward=1
  ip netns exec vxp-h1 nft -f - <<'EOF2'
table ip vxp {
  chain pre { type nat hook prerouting priority -100; tcp dport 15201 dnat to 10.99.0.2:5201; tcp dport 17000 dnat to 10.99.0.2:7000; }
}
EOF2
}

config() {
  local i=$1 peer=$2 eps=$3
  cat <<EOF2
[host]
name = "h$i"
address = "198.18.0.$i"
state_dir = "$WORK/h$i-state"
api_socket = "$WORK/h$i.sock"
secret_file = "$WORK/cluster.secret"

[[peer]]
name = "h$peer"
address = "198.18.0.$peer"

[[network]]
name = "blue"
vni = 256
subnet = "10.77.0.0/24"
$eps
[[publish]]
network = "blue"
port = 5201
to = "web:5201"

[[publish]]
network = "blue"
port = 7000
to = "web:7000"

[[service]]
network = "blue"
name = "web"
EOF2
}

up_vxwire() {
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/cluster.secret")
  config 1 2 '
[[endpoint]]
network = "blue"
name = "c1"
netns = "/var/run/netns/vxp-c1"
address = "10.77.0.10"

[[endpoint]]
network = "blue"
name = "w1"
netns = "/var/run/netns/vxp-w1"
address = "10.77.0.11"
aliases = ["web"]
' >"$WORK/h1.toml"
  config 2 1 '' >"$WORK/h2.toml"
  bg vxp-h1 "$BIN" up -c "$WORK/h1.toml"
  bg vxp-h2 "$BIN" up -c "$WORK/h2.toml"
  local n
  for n in $(seq 100); do
    VIP=$(timeout 5 "$BIN" service ls --socket "$WORK/h1.sock" --json 2>/dev/null | jq -r '.[0].address // empty' || true)
    [ -n "$VIP" ] && timeout 5 "$BIN" publish ls --socket "$WORK/h2.sock" --json 2>/dev/null | jq -e 'all(.[]; .address != null)' >/dev/null && break
    [ "$n" -lt 100 ] || die "vxwire not ready after 20 s"
    sleep 0.2
  done
}

servers() {
  local n
  for n in vxp-w1 vxp-k1; do
    bg "$n" iperf3 -s
    bg "$n" "$WORK/connrate" serve :7000
  done
  bg vxp-w1 "$WORK/connrate" serve :7001
  bg vxp-h1 socat TCP-LISTEN:25201,bind=198.18.0.1,fork,reuseaddr TCP:10.99.0.2:5201
  bg vxp-h1 socat TCP-LISTEN:27000,bind=198.18.0.1,fork,reuseaddr TCP:10.99.0.2:7000
  for n in $(seq 100); do
    ip netns exec vxp-cl "$WORK/connrate" dial 198.18.0.1:7000 1 1 >/dev/null 2>&1 &&
      ip netns exec vxp-cl "$WORK/connrate" dial 198.18.0.1:27000 1 1 >/dev/null 2>&1 && return
    sleep 0.2
  done
  die "servers not reachable"
}

# gbps NS HOST PORT: median receiver Gbit/s of REPS iperf3 runs.
gbps() {
  local r
  for r in $(seq "$REPS"); do
    timeout $((T + 30)) ip netns exec "$1" iperf3 -c "$2" -p "$3" -t "$T" -J --connect-timeout 3000 |
      jq -er '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000' || echo nan
  done | median
}

# cps NS HOST:PORT: median connections/s of REPS connrate runs (and the
# failures of the last).
cps() {
  local r out fail=0
  for r in $(seq "$REPS"); do
    out=$(timeout 120 ip netns exec "$1" "$WORK/connrate" dial "$2" "$N" "$C") || out="nan 0"
    fail=${out#* }
    echo "${out%% *}"
  done | median | tr -d '\n'
  echo " failed=$fail"
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
  for t in ip nft iperf3 socat jq go; do command -v "$t" >/dev/null || die "$t is not installed"; done
  WORK=$(mktemp -d)
  trap cleanup EXIT INT TERM
  [ -x "$BIN" ] || go build -o "$BIN" ./cmd/vxwire
  go build -o "$WORK/connrate" ./tests/bench/connrate
  topology
  up_vxwire
  servers
  log "VIP of web on h1: $VIP"
  echo "RESULT mode=vxwire metric=pub_gbps value=$(gbps vxp-cl 198.18.0.1 5201)"
  echo "RESULT mode=relay metric=pub_gbps value=$(gbps vxp-cl 198.18.0.2 5201)"
  echo "RESULT mode=dnat metric=pub_gbps value=$(gbps vxp-cl 198.18.0.1 15201)"
  echo "RESULT mode=socat metric=pub_gbps value=$(gbps vxp-cl 198.18.0.1 25201)"
  echo "RESULT mode=vxwire metric=pub_cps value=$(cps vxp-cl 198.18.0.1:7000)"
  echo "RESULT mode=relay metric=pub_cps value=$(cps vxp-cl 198.18.0.2:7000)"
  echo "RESULT mode=dnat metric=pub_cps value=$(cps vxp-cl 198.18.0.1:17000)"
  echo "RESULT mode=socat metric=pub_cps value=$(cps vxp-cl 198.18.0.1:27000)"
  # Direct connections go to another port of w1 (7001): w1 holds the
  # TIME_WAIT of thousands of connections under c1's ports, and c1's TCP
  # timestamps for w1's own address start elsewhere than for the VIP's,
  # so a SYN of one kind reusing a port the other left in TIME_WAIT on the
  # same server port meets PAWS and waits for a retransmission (as behind
  # any destination NAT, IPVS included).
  echo "RESULT mode=direct metric=vip_gbps value=$(gbps vxp-c1 10.77.0.11 5201)"
  echo "RESULT mode=vip metric=vip_gbps value=$(gbps vxp-c1 "$VIP" 5201)"
  echo "RESULT mode=direct metric=vip_cps value=$(cps vxp-c1 10.77.0.11:7001)"
  echo "RESULT mode=vip metric=vip_cps value=$(cps vxp-c1 "$VIP:7000")"
}

main "$@"
