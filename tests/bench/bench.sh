#!/usr/bin/env bash
# bench.sh - container-to-container throughput and latency of vxwire next to
# Linux kernel VXLAN, measured in the same run on the same topology:
#
#   vxb-c1 10.77.0.10/24                                    vxb-c2 10.77.0.20/24
#     eth0 ─┐                                                  ┌─ eth0
#           │  kernel: veth vxb-k1 - bridge vxb-br0 - vxlan vxb-vx0 (VNI 256)
#           │  vxwire: eth0 is vxwire's TAP, no veth, no bridge
#   vxb-h1 ─┴─ vxb-u1 198.18.0.1/24 ====== veth ====== vxb-u2 198.18.0.2/24 ─┴─ vxb-h2
#
#   container MTU 1450 in both modes; underlay MTU 1500. Kernel to kernel
#   over veth, GSO super-packets cross the underlay whole and no checksum is
#   computed, which no real NIC offers: read the kernel row as an upper bound.
#
# For each mode, from vxb-c1 to vxb-c2, each figure REPS times, median kept:
#   tcp1, tcp4   iperf3 -c 10.77.0.20 -t T [-P 4] -J, receiver Gbit/s
#   ping         ping -c PN -i 0.01: average and 99th percentile RTT (ms)
#   dcpu         % of one core used by the two vxwire daemons during tcp1/tcp4
# Output: RESULT lines, one per figure, then a table with vxwire/kernel.
#
# Run as root: bash tests/bench/bench.sh (make bench builds bin/vxwire first).
# Needs ip, bridge, iperf3, ping, jq, timeout, getconf.
# Env: T=10 (iperf3 seconds), REPS=3, PN=200 (pings per run),
#      VXWIRE=bin/vxwire (binary; built with go build when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
T=${T:-10} REPS=${REPS:-3} PN=${PN:-200}
BIN=${VXWIRE:-$PWD/bin/vxwire}
HOSTS=(vxb-h1 vxb-h2) CTRS=(vxb-c1 vxb-c2)
UNDERLAY=(198.18.0.1 198.18.0.2) OVERLAY=(10.77.0.10 10.77.0.20)
DST=${OVERLAY[1]}
HZ=$(getconf CLK_TCK)
WORK="" PIDS=() DAEMONS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# stop PID...: SIGTERM, up to 5 s, then SIGKILL; only processes this script started.
stop() {
  local pid i
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

teardown() {
  [ ${#PIDS[@]} -eq 0 ] || stop "${PIDS[@]}"
  PIDS=() DAEMONS=()
  local n
  for n in "${CTRS[@]}" "${HOSTS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  teardown
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

# underlay: hosts, containers, and the underlay veth.
underlay() {
  local n i
  for n in "${HOSTS[@]}" "${CTRS[@]}"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
  done
  ip link add vxb-u1 netns vxb-h1 mtu 1500 type veth peer name vxb-u2 netns vxb-h2 mtu 1500
  for i in 0 1; do
    ip -n "${HOSTS[i]}" addr add "${UNDERLAY[i]}/24" dev "vxb-u$((i + 1))"
    ip -n "${HOSTS[i]}" link set "vxb-u$((i + 1))" up
  done
}

up_kernel() {
  local i h
  for i in 0 1; do
    h=${HOSTS[i]}
    ip -n "$h" link add vxb-br0 type bridge
    ip -n "$h" link add vxb-vx0 type vxlan id 256 dstport 4789 local "${UNDERLAY[i]}" \
      remote "${UNDERLAY[1 - i]}" dev "vxb-u$((i + 1))"
    ip -n "$h" link set vxb-vx0 mtu 1450 master vxb-br0 up
    ip link add "vxb-k$((i + 1))" netns "$h" mtu 1450 type veth peer name eth0 netns "${CTRS[i]}" mtu 1450
    ip -n "$h" link set "vxb-k$((i + 1))" master vxb-br0 up
    ip -n "$h" link set vxb-br0 up
    ip -n "${CTRS[i]}" addr add "${OVERLAY[i]}/24" dev eth0
    ip -n "${CTRS[i]}" link set eth0 up
  done
}

up_vxwire() {
  local i j cfg st n
  for i in 0 1; do
    j=$((1 - i)) cfg=$WORK/h$((i + 1)).toml
    cat >"$cfg" <<EOF
[host]
name = "h$((i + 1))"
address = "${UNDERLAY[i]}"
state_dir = "$WORK/h$((i + 1))-state"
api_socket = "$WORK/h$((i + 1)).sock"

[[peer]]
name = "h$((j + 1))"
address = "${UNDERLAY[j]}"

[[network]]
name = "bench"
vni = 256
subnet = "10.77.0.0/24"
gateway = "10.77.0.1"

[[endpoint]]
network = "bench"
name = "c$((i + 1))"
netns = "/var/run/netns/${CTRS[i]}"
address = "${OVERLAY[i]}"
EOF
    ip netns exec "${HOSTS[i]}" "$BIN" up -c "$cfg" 2>"$WORK/daemon$((i + 1)).log" &
    PIDS+=($!) DAEMONS+=($!)
  done
  for i in 0 1; do
    for n in $(seq 100); do
      st=$(timeout 5 "$BIN" status --socket "$WORK/h$((i + 1)).sock" --json 2>/dev/null) &&
        jq -e --arg c "c$((i + 1))" 'any(.endpoints[]?; .name == $c)' <<<"$st" >/dev/null && break
      kill -0 "${DAEMONS[i]}" 2>/dev/null || { cat "$WORK/daemon$((i + 1)).log" >&2; die "vxwire on h$((i + 1)) exited"; }
      [ "$n" -lt 100 ] || die "vxwire on h$((i + 1)) not ready after 20 s"
      sleep 0.2
    done
  done
}

# ticks: CPU ticks (user + system) used so far by the vxwire daemons.
ticks() {
  local pid sum=0 t
  for pid in "${DAEMONS[@]}"; do
    t=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}

# median: the median of the numbers on stdin ("nan" if none).
median() {
  sort -g | awk 'NF && $1 != "nan" {v[n++] = $1}
    END {if (!n) print "nan"; else if (n % 2) print v[(n - 1) / 2]; else print (v[n / 2 - 1] + v[n / 2]) / 2}'
}

# tcp STREAMS: "GBPS DCPU" of one iperf3 run: receiver Gbit/s, and the % of
# one core the daemons used meanwhile.
tcp() {
  local t0 t1 s0 s1 out
  t0=$(ticks) s0=$(date +%s.%N)
  out=$(timeout $((T + 30)) ip netns exec vxb-c1 iperf3 -c "$DST" -t "$T" -P "$1" -J --connect-timeout 3000 |
    jq -er '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000') || out=nan
  t1=$(ticks) s1=$(date +%s.%N)
  awk -v g="$out" -v d=$((t1 - t0)) -v hz="$HZ" -v s="$s0" -v e="$s1" 'BEGIN {printf "%s %.0f\n", g, 100 * d / hz / (e - s)}'
}

# pingrtt: "AVG P99" of PN pings at 10 ms intervals, in ms.
pingrtt() {
  timeout $((PN / 50 + 30)) ip netns exec vxb-c1 ping -c "$PN" -i 0.01 -W 1 "$DST" |
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -g |
    awk '{v[n++] = $1; s += $1} END {if (!n) {print "nan nan"; exit} i = int(n * 0.99 + 0.999) - 1; printf "%.3f %.3f\n", s / n, v[i]}'
}

declare -A R

measure() { # measure MODE
  local mode=$1 rep v d n streams metric avgs="" p99s="" a p vals dcpus
  timeout $((REPS * 2 * (T + 30) + 120)) ip netns exec vxb-c2 iperf3 -s -B "$DST" >"$WORK/iperf3-$mode.log" 2>&1 &
  PIDS+=($!)
  for n in $(seq 100); do
    timeout 2 ip netns exec vxb-c2 ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && break
    [ "$n" -lt 100 ] || die "$mode: iperf3 server not listening"
    sleep 0.1
  done
  for n in $(seq 100); do
    timeout 5 ip netns exec vxb-c1 ping -c 1 -W 1 "$DST" >/dev/null 2>&1 && break
    [ "$n" -lt 100 ] || die "$mode: no connectivity from vxb-c1 to $DST"
  done
  for streams in 1 4; do
    metric=tcp${streams}_gbps vals="" dcpus=""
    for rep in $(seq "$REPS"); do
      read -r v d < <(tcp "$streams")
      log "RAW mode=$mode metric=$metric rep=$rep value=$v daemon_cpu_pct=$d"
      vals+="$v"$'\n' dcpus+="$d"$'\n'
    done
    R[$mode,$metric]=$(median <<<"$vals")
    R[$mode,${metric}_dcpu]=$(median <<<"$dcpus")
    [ "$mode" = vxwire ] || R[$mode,${metric}_dcpu]=-
    echo "RESULT mode=$mode metric=$metric value=${R[$mode,$metric]} daemon_cpu_pct=${R[$mode,${metric}_dcpu]}"
  done
  for rep in $(seq "$REPS"); do
    read -r a p < <(pingrtt)
    log "RAW mode=$mode metric=ping_ms rep=$rep avg=$a p99=$p"
    avgs+="$a"$'\n' p99s+="$p"$'\n'
  done
  R[$mode,ping_avg_ms]=$(median <<<"$avgs")
  R[$mode,ping_p99_ms]=$(median <<<"$p99s")
  echo "RESULT mode=$mode metric=ping_avg_ms value=${R[$mode,ping_avg_ms]}"
  echo "RESULT mode=$mode metric=ping_p99_ms value=${R[$mode,ping_p99_ms]}"
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, veth, TAP)"
for t in ip bridge iperf3 ping jq timeout getconf awk; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install iproute2 iperf3 iputils-ping jq)"
done
if [ ! -x "$BIN" ]; then
  log "bench: building $BIN"
  timeout 600 go build -o "$BIN" ./cmd/vxwire
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vxb.XXXXXX")
teardown # namespaces left over from an interrupted run

for mode in kernel vxwire; do
  log "### $mode: T=$T s, REPS=$REPS, PN=$PN (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  underlay
  "up_$mode"
  measure "$mode"
  teardown
done

echo
printf '%-14s %12s %12s %16s\n' metric kernel vxwire vxwire/kernel
for metric in tcp1_gbps tcp4_gbps ping_avg_ms ping_p99_ms; do
  k=${R[kernel,$metric]} v=${R[vxwire,$metric]}
  ratio=$(awk -v k="$k" -v v="$v" 'BEGIN {if (k + 0 > 0 && v != "nan") printf "%.2f", v / k; else print "n/a"}')
  printf '%-14s %12s %12s %16s\n' "$metric" "$k" "$v" "$ratio"
done
printf '%-14s %12s %12s\n' daemon_cpu_pct - "${R[vxwire,tcp1_gbps_dcpu]}/${R[vxwire,tcp4_gbps_dcpu]}"
echo "(Gbit/s: higher is better; ms: lower is better; daemon_cpu_pct: % of one core, tcp1/tcp4)"
