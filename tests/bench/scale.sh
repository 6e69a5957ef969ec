#!/usr/bin/env bash
# scale.sh - attach/detach latency and daemon memory per endpoint on one host.
#
#   vxs-h1 (host netns, runs vxwire; underlay 198.18.9.1 on a dummy-less veth)
#     └─ vxs-c1 … vxs-cN   container namespaces, each attached with `vxwire attach`
#
# Measures, on one host with one network:
#   - attach latency: from starting `vxwire attach` to the first ping from the
#     container to its gateway answered (median and p99 over LAT containers);
#   - detach latency: `vxwire detach` until the TAP is gone from the namespace;
#   - daemon RSS with 0, 100 and N (default 1000) endpoints attached.
# Prints RESULT lines. Cleans up on exit; stops the daemon by its pid.
# Env: N (endpoints, default 1000), LAT (latency samples, default 100).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000} LAT=${LAT:-100}
BIN=${BIN:-bin/vxwire}
[ "$(id -u)" = 0 ] || { echo "scale.sh: needs root" >&2; exit 1; }
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/vxwire
WORK=$(mktemp -d) PID="" MADE=()
# mkns NAME: create a namespace and remember it for cleanup.
mkns() { ip netns add "$1"; MADE+=("$1"); }
cleanup() {
  [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$PID" 2>/dev/null || true; }
  for ns in "${MADE[@]}"; do ip netns delete "$ns" 2>/dev/null || true; rm -rf "/etc/netns/$ns"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
mkns vxs-h1; ip -n vxs-h1 link set lo up
mkns vxs-peer
ip link add vxs-u1 netns vxs-h1 type veth peer name vxs-u2 netns vxs-peer
ip -n vxs-h1 addr add 198.18.9.1/24 dev vxs-u1; ip -n vxs-h1 link set vxs-u1 up
cat >"$WORK/h1.toml" <<EOT
[host]
name = "h1"
address = "198.18.9.1"
state_dir = "$WORK/state"
api_socket = "$WORK/api.sock"
[[network]]
name = "scale"
vni = 4000
subnet = "10.96.0.0/16"
EOT
ip netns exec vxs-h1 "$BIN" up -c "$WORK/h1.toml" 2>"$WORK/daemon.log" &
PID=$!
up=0
for _ in $(seq 100); do "$BIN" status --socket "$WORK/api.sock" >/dev/null 2>&1 && { up=1; break; }; sleep 0.1; done
[ "$up" = 1 ] || { cat "$WORK/daemon.log" >&2; echo "scale.sh: daemon not up" >&2; exit 1; }
rss() { awk '/VmRSS/{print $2}' "/proc/$PID/status"; }
now() { date +%s%N; }
pct() { sort -n | awk -v p="$1" '{v[NR]=$1} END{i=int(NR*p/100+0.999); if(i<1)i=1; printf "%.1f", v[i]/1e6}'; }
echo "RESULT metric=rss_kib endpoints=0 value=$(rss)"
attached=0 lat=() det=()
attach() { # attach I: create vxs-cI and attach it
  mkns "vxs-c$1"
  "$BIN" attach --socket "$WORK/api.sock" --network scale --netns "/var/run/netns/vxs-c$1" --name "c$1" >/dev/null
}
for i in $(seq "$LAT"); do
  mkns "vxs-c$i"
  t0=$(now)
  "$BIN" attach --socket "$WORK/api.sock" --network scale --netns "/var/run/netns/vxs-c$i" --name "c$i" >/dev/null
  ok=0
  for _ in $(seq 500); do
    ip netns exec "vxs-c$i" ping -c 1 -W 1 -q 10.96.0.1 >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.01
  done
  [ "$ok" = 1 ] || { echo "scale.sh: c$i never reached its gateway" >&2; exit 1; }
  lat+=($(( $(now) - t0 )))
done
attached=$LAT
echo "RESULT metric=attach_to_ping_ms samples=$LAT median=$(printf '%s\n' "${lat[@]}" | pct 50) p99=$(printf '%s\n' "${lat[@]}" | pct 99)"
mid=$(( N < 100 ? N : 100 ))
for i in $(seq $((attached + 1)) "$mid"); do attach "$i"; attached=$i; done
echo "RESULT metric=rss_kib endpoints=$attached value=$(rss)"
for i in $(seq $((attached + 1)) "$N"); do attach "$i"; done
attached=$N
sleep 1
echo "RESULT metric=rss_kib endpoints=$N value=$(rss)"
ok=$("$BIN" endpoint ls --socket "$WORK/api.sock" --json | jq length)
echo "RESULT metric=endpoints_listed value=$ok"
# All endpoints still forward: ping the gateway from a sample of containers.
fail=0
for i in 1 $((N / 4)) $((N / 2)) "$N"; do ip netns exec "vxs-c$i" ping -c 1 -W 2 -q 10.96.0.1 >/dev/null 2>&1 || fail=$((fail + 1)); done
echo "RESULT metric=sample_pings_failed_at_${N} value=$fail"
for i in $(seq "$LAT"); do
  t0=$(now)
  "$BIN" detach --socket "$WORK/api.sock" --network scale --name "c$i" >/dev/null
  gone=0
  for _ in $(seq 1000); do ip -n "vxs-c$i" link show eth0 >/dev/null 2>&1 || { gone=1; break; }; sleep 0.005; done
  [ "$gone" = 1 ] || { echo "scale.sh: c$i's eth0 still there after detach" >&2; exit 1; }
  det+=($(( $(now) - t0 )))
done
echo "RESULT metric=detach_ms samples=$LAT median=$(printf '%s\n' "${det[@]}" | pct 50) p99=$(printf '%s\n' "${det[@]}" | pct 99)"
