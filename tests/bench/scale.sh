#!/usr/bin/env bash
# scale.sh - endpoints on one host: attach/detach latency, memory per
# endpoint and reachability of every endpoint, up to N (default 4096).
#
#   vxs-h1 (host netns, runs vxwire; underlay 198.18.9.1 on a veth)
#     └─ vxs-c1 … vxs-cN   container namespaces, each attached with `vxwire attach`
#
# Measures, on one host with one network:
#   - attach latency: from starting `vxwire attach` to the first ping from the
#     container to its gateway answered, over the FIRST LAT containers and
#     over the LAST LAT ones (attached when N-LAT are already there), and the
#     time of the `vxwire attach` call alone over the last LAT and over all N;
#   - detach latency: `vxwire detach` until the TAP is gone from the namespace;
#   - daemon memory with 0, 100 and N endpoints attached: RSS, the live Go
#     heap and goroutines from `vxwire status --json`, and per endpoint
#     ((at N - at 0) / N);
#   - reachability: every container pings its gateway, and PAIRS random
#     container pairs ping each other; every ping must answer.
# Prints RESULT lines; exits non-zero if an endpoint is unreachable. Cleans up
# on exit, even on failure; stops the daemon by its pid.
# Env: N (endpoints, default 4096), LAT (latency samples at each end, default
# 100), PAIRS (sampled container pairs, default 64), SEED (of the sample).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-4096} LAT=${LAT:-100} PAIRS=${PAIRS:-64} SEED=${SEED:-1}
BIN=${BIN:-bin/vxwire}
[ "$(id -u)" = 0 ] || { echo "scale.sh: needs root" >&2; exit 1; }
[ "$N" -ge $((2 * LAT)) ] || { echo "scale.sh: N must be at least 2*LAT" >&2; exit 1; }
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/vxwire
# Cleanup deletes the vxs-* namespaces by name: never run beside another run.
if ip netns list | grep -q '^vxs-'; then echo "scale.sh: vxs-* namespaces exist (another run?)" >&2; exit 1; fi
WORK=$(mktemp -d) PID="" MADE=()
# mkns NAME: create a namespace and remember it for cleanup.
mkns() { ip netns add "$1"; MADE+=("$1"); }
# mkns_range A B: create vxs-cA … vxs-cB in one ip process (much faster than
# one `ip netns add` each).
mkns_range() {
  local i
  for i in $(seq "$1" "$2"); do MADE+=("vxs-c$i"); echo "netns add vxs-c$i"; done >"$WORK/mkns"
  ip -batch "$WORK/mkns"
}
cleanup() {
  [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$PID" 2>/dev/null || true; }
  if [ "${#MADE[@]}" -gt 0 ]; then
    printf 'netns delete %s\n' "${MADE[@]}" | ip -force -batch - 2>/dev/null || true
    for ns in "${MADE[@]}"; do rm -rf "/etc/netns/$ns"; done
  fi
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
now() { date +%s%N; }
pct() { sort -n | awk -v p="$1" '{v[NR]=$1} END{i=int(NR*p/100+0.999); if(i<1)i=1; printf "%.1f", v[i]/1e6}'; }
# mem K: RSS (KiB), live heap (KiB) and goroutines as the daemon reports
# them with K endpoints attached; sets RSS HEAP GOR.
mem() {
  read -r RSS HEAP GOR < <("$BIN" status --socket "$WORK/api.sock" --json |
    jq -r '.process | "\(.rss_bytes / 1024 | floor) \(.heap_bytes / 1024 | floor) \(.goroutines)"')
  echo "RESULT metric=rss_kib endpoints=$1 value=$RSS heap_kib=$HEAP goroutines=$GOR"
}
# attach I: attach vxs-cI (which exists); appends the call's time to cli.
cli=()
attach() {
  local t0; t0=$(now)
  "$BIN" attach --socket "$WORK/api.sock" --network scale --netns "/var/run/netns/vxs-c$1" --name "c$1" >/dev/null
  cli+=($(( $(now) - t0 )))
}
# attach_ping I: attach vxs-cI and wait for its first ping to the gateway;
# prints the time from the attach call to the answer in ns.
attach_ping() {
  local t0 ok=0; t0=$(now)
  attach "$1"
  for _ in $(seq 500); do
    ip netns exec "vxs-c$1" ping -c 1 -W 1 -q 10.96.0.1 >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.01
  done
  [ "$ok" = 1 ] || { echo "scale.sh: c$1 never reached its gateway" >&2; exit 1; }
  lat+=($(( $(now) - t0 )))
}
# latline NAME FROM: the RESULT line of the samples in lat, taken from
# endpoint FROM on; value is the p99.
latline() {
  local p99; p99=$(printf '%s\n' "${lat[@]}" | pct 99)
  echo "RESULT metric=$1 samples=${#lat[@]} from=$2 median=$(printf '%s\n' "${lat[@]}" | pct 50) value=$p99 p99=$p99"
}
mem 0
RSS0=$RSS HEAP0=$HEAP GOR0=$GOR
T0=$(now)
mkns_range 1 "$LAT"
lat=()
for i in $(seq "$LAT"); do attach_ping "$i"; done
latline attach_to_ping_ms 1
mem "$LAT"
first=$(( N - LAT + 1 ))
mkns_range $((LAT + 1)) $((first - 1))
for i in $(seq $((LAT + 1)) $((first - 1))); do
  attach "$i"
  [ $((i % 512)) != 0 ] || echo "scale.sh: $i endpoints attached after $(( ($(now) - T0) / 1000000000 )) s" >&2
done
mem $((first - 1))
mkns_range "$first" "$N"
lat=()
for i in $(seq "$first" "$N"); do attach_ping "$i"; done
latline attach_to_ping_last_ms "$first"
lat=("${cli[@]: -$LAT}")
latline attach_call_last_ms "$first"
lat=("${cli[@]}")
latline attach_call_ms 1
echo "RESULT metric=attach_all_s endpoints=$N value=$(( ($(now) - T0) / 1000000000 ))"
mem "$N"
echo "RESULT metric=rss_per_endpoint_kib endpoints=$N value=$(( (RSS - RSS0) / N ))"
echo "RESULT metric=heap_per_endpoint_kib endpoints=$N value=$(( (HEAP - HEAP0) / N ))"
echo "RESULT metric=goroutines_per_endpoint endpoints=$N value=$(awk -v a="$GOR" -v b="$GOR0" -v n="$N" 'BEGIN{printf "%.2f", (a-b)/n}')"
"$BIN" endpoint ls --socket "$WORK/api.sock" --json >"$WORK/eps.json"
echo "RESULT metric=endpoints_listed value=$(jq length "$WORK/eps.json")"
# Reachability: every container pings its gateway (4 at a time), then
# PAIRS random pairs ping each other by address, each way. A ping unanswered in 2 s
# is tried again with 5 more (any answer counts): both counts are printed,
# and only an endpoint that never answers fails the run.
retry() { ip netns exec "vxs-c$1" ping -c 5 -i 0.2 -W 2 -q "$2" >/dev/null 2>&1; }
seq "$N" | timeout 900 xargs -P 4 -I{} sh -c 'ip netns exec vxs-c{} ping -c 1 -W 2 -q 10.96.0.1 >/dev/null 2>&1 || echo {}' >"$WORK/gwfail" || true
gwfirst=$(wc -l <"$WORK/gwfail") gwfail=0
for i in $(sort -n "$WORK/gwfail"); do
  retry "$i" 10.96.0.1 || { gwfail=$((gwfail + 1)); echo "scale.sh: c$i never reached its gateway" >&2; }
done
echo "RESULT metric=gateway_pings_failed endpoints=$N value=$gwfail first_try_failed=$gwfirst"
jq -r '.[] | "\(.name) \(.address | split("/")[0])"' "$WORK/eps.json" >"$WORK/addrs"
RANDOM=$SEED pairfirst=0 pairfail=0
for _ in $(seq "$PAIRS"); do
  a=$(( RANDOM * 32768 + RANDOM )); a=$(( a % N + 1 ))
  b=$(( RANDOM * 32768 + RANDOM )); b=$(( b % N + 1 ))
  [ "$a" != "$b" ] || b=$(( b % N + 1 ))
  for d in "$a $b" "$b $a"; do # each way
    read -r from to <<<"$d"
    ip=$(awk -v n="c$to" '$1 == n {print $2}' "$WORK/addrs")
    ip netns exec "vxs-c$from" ping -c 1 -W 2 -q "$ip" >/dev/null 2>&1 && continue
    pairfirst=$((pairfirst + 1))
    retry "$from" "$ip" || { pairfail=$((pairfail + 1)); echo "scale.sh: c$from never reached c$to ($ip)" >&2; }
  done
done
echo "RESULT metric=pair_pings_failed endpoints=$N pairs=$PAIRS value=$pairfail first_try_failed=$pairfirst"
det=()
for i in $(seq "$LAT"); do
  t0=$(now)
  "$BIN" detach --socket "$WORK/api.sock" --network scale --name "c$i" >/dev/null
  gone=0
  for _ in $(seq 1000); do ip -n "vxs-c$i" link show eth0 >/dev/null 2>&1 || { gone=1; break; }; sleep 0.005; done
  [ "$gone" = 1 ] || { echo "scale.sh: c$i's eth0 still there after detach" >&2; exit 1; }
  det+=($(( $(now) - t0 )))
done
lat=("${det[@]}")
latline detach_ms 1
[ "$gwfail" = 0 ] && [ "$pairfail" = 0 ] || { echo "scale.sh: unreachable endpoints" >&2; exit 1; }
