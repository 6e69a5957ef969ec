#!/usr/bin/env bash
# demo.sh - two vxwire hosts and four containers on one machine, as network
# namespaces, using examples/h1.toml and examples/h2.toml:
#
#   vxdemo-c1 web 10.77.0.10  vxdemo-c2 db 10.77.0.11   vxdemo-c3 api 10.77.0.20  vxdemo-c4 cache 10.77.0.21
#            \                 /                                  \                 /
#             vxwire (vxdemo-h1)                                   vxwire (vxdemo-h2)
#             vxdemo-u1 198.18.0.1/24 ============ veth ============ vxdemo-u2 198.18.0.2/24
#
#   network blue: VNI 256, 10.77.0.0/24; each container's eth0 is a TAP
#   device that vxwire creates in its namespace.
#
# Run as root from anywhere: bash examples/demo.sh (or make demo). It builds
# bin/vxwire if missing, shows status, pings and an iperf3 transfer across
# the hosts, and removes everything it made when it exits, also on Ctrl-C.
# Needs: ip (iproute2), ping (iputils-ping), iperf3, jq, timeout; go to build.
# Env: T (iperf3 seconds, default 3).
set -euo pipefail

cd "$(dirname "$0")/.."
T=${T:-3}
BIN=$PWD/bin/vxwire
HOSTS=(vxdemo-h1 vxdemo-h2)
CTRS=(vxdemo-c1 vxdemo-c2 vxdemo-c3 vxdemo-c4)
WORK=""
PIDS=()

step() { printf '\n==> %s\n' "$*"; }
run() { printf '    $ %s\n' "$*"; "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  step "cleaning up"
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for n in "${CTRS[@]}" "${HOSTS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  [ -z "$WORK" ] || rm -rf "$WORK"
  echo "    removed namespaces ${HOSTS[*]} ${CTRS[*]}, stopped the daemons"
  exit "$rc"
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces and TAP devices need it)"
for t in ip ping iperf3 jq timeout; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install iproute2 iputils-ping iperf3 jq)"
done
for n in "${HOSTS[@]}" "${CTRS[@]}"; do
  busy=$(ip netns pids "$n" 2>/dev/null | tr '\n' ' ' || true)
  [ -z "$busy" ] || die "namespace $n is in use by processes $busy; stop them first"
done

if [ ! -x "$BIN" ]; then
  step "building $BIN"
  run timeout 600 go build -o "$BIN" ./cmd/vxwire
fi

trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vxdemo.XXXXXX")

step "creating host namespaces ${HOSTS[*]} and container namespaces ${CTRS[*]}"
for n in "${HOSTS[@]}" "${CTRS[@]}"; do
  ip netns del "$n" 2>/dev/null || true   # left over from an interrupted run
  ip netns add "$n"
  ip -n "$n" link set lo up
done
run ip link add vxdemo-u1 netns vxdemo-h1 mtu 1500 type veth peer name vxdemo-u2 netns vxdemo-h2 mtu 1500
for i in 1 2; do
  run ip -n "vxdemo-h$i" addr add "198.18.0.$i/24" dev "vxdemo-u$i"
  ip -n "vxdemo-h$i" link set "vxdemo-u$i" up
done
echo "    the containers have no link yet:"
ip -n vxdemo-c1 -br link | sed 's/^/      vxdemo-c1: /'

step "starting vxwire on both hosts (configs from examples/, state and sockets in $WORK)"
run sh -c "umask 077; $BIN gensecret > $WORK/secret"
for i in 1 2; do
  sed -e "s#^state_dir = .*#state_dir = \"$WORK/h$i-state\"#" \
      -e "s#^api_socket = .*#api_socket = \"$WORK/h$i.sock\"#" \
      -e "s#^secret_file = .*#secret_file = \"$WORK/secret\"#" "examples/h$i.toml" >"$WORK/h$i.toml"
  run timeout 10 "$BIN" config check -c "$WORK/h$i.toml"
  echo "    \$ ip netns exec vxdemo-h$i $BIN up -c $WORK/h$i.toml 2>$WORK/h$i.log &"
  ip netns exec "vxdemo-h$i" "$BIN" up -c "$WORK/h$i.toml" 2>"$WORK/h$i.log" &
  PIDS+=($!)
done

step "waiting until both daemons list their endpoints"
ready() { # ready I NAME...: host hI's status lists every NAME
  local st
  st=$(timeout 5 "$BIN" status --socket "$WORK/h$1.sock" --json 2>/dev/null) || return 1
  shift
  for n in "$@"; do jq -e --arg n "$n" 'any(.endpoints[]?; .name == $n)' <<<"$st" >/dev/null || return 1; done
}
for i in 1 2; do
  names=(web db); [ "$i" = 1 ] || names=(api cache)
  for n in $(seq 150); do
    ready "$i" "${names[@]}" && break
    kill -0 "${PIDS[i-1]}" 2>/dev/null || { cat "$WORK/h$i.log" >&2; die "vxwire on h$i exited"; }
    [ "$n" -lt 150 ] || { cat "$WORK/h$i.log" >&2; die "vxwire on h$i not ready after 30 s"; }
    sleep 0.2
  done
  echo "    h$i ready: ${names[*]}"
done

step "status of each host"
for i in 1 2; do run timeout 5 "$BIN" status --socket "$WORK/h$i.sock"; echo; done

step "the containers' eth0, made by vxwire"
for c in vxdemo-c1 vxdemo-c3; do run ip -n "$c" -br addr show eth0; run ip -n "$c" route; done

step "pings across hosts (and one on the same host)"
pingc() { run timeout 20 ip netns exec "$1" ping -c 3 -W 1 "$2"; }
pingc vxdemo-c1 10.77.0.20   # web -> api
pingc vxdemo-c3 10.77.0.10   # api -> web
pingc vxdemo-c2 10.77.0.21   # db -> cache
pingc vxdemo-c1 10.77.0.11   # web -> db, same host

step "names: every container resolves the others through its host's gateway (DNS on 10.77.0.1)"
run timeout 10 ip netns exec vxdemo-c1 ping -c 2 -W 1 api        # web -> api on h2, by name
run timeout 10 ip netns exec vxdemo-c4 ping -c 2 -W 1 web.blue   # cache -> web on h1, NAME.NETWORK
if command -v dig >/dev/null; then run timeout 10 ip netns exec vxdemo-c2 dig +short @10.77.0.1 cache; fi

step "TCP throughput across hosts: iperf3 from web (h1) to api (h2) for $T s"
ip netns exec vxdemo-c3 timeout $((T + 30)) iperf3 -s -1 -B 10.77.0.20 >"$WORK/iperf3-server.log" 2>&1 &
PIDS+=($!)
for n in $(seq 50); do
  timeout 2 ip netns exec vxdemo-c3 ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && break
  sleep 0.1
done
run timeout $((T + 20)) ip netns exec vxdemo-c1 iperf3 -c 10.77.0.20 -t "$T" -f m --connect-timeout 3000

step "counters of h1 after the transfer"
timeout 5 "$BIN" status --socket "$WORK/h1.sock" --json |
  jq -r '(.peers[] | "    peer \(.name) \(.address): \(.counters.rx_frames) frames received, \(.counters.tx_frames) sent"),
         "    drops by reason: \(.counters.drops // {} | tostring)"'

step "done"
