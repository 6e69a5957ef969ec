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
#   host_busy_pct  % of the whole machine's CPU time (all CPUs) that was
#                busy (not idle or iowait) during tcp1/tcp4, whoever used
#                it: near 100, the figure is bound by CPU, and more threads
#                or queues cannot raise it on this machine
# With DNS=1 (the default), also:
#   dns_qps      dnsperf -l DNST -c 4 -T 1 (UDP) from vxb-c1, REPS times,
#                median kept, queries for the container names (c1, c2,
#                c1.bench, c2.bench), against the gateway address 10.77.0.1:53 on vxb-c1's own host, one hop
#                away, in both cases with the same parameters: in the vxwire
#                run, h1's daemon answers (its switch, from vxb-c1's TAP);
#                in the kernel run, dnsmasq in vxb-h1 serves the same names
#                from a hosts file on 10.77.0.1, an address of h1's bridge
#                vxb-br0, which vxb-c1 reaches over its veth vxb-k1 (added
#                after the kernel's TCP and ping figures). Same address,
#                same host, one hop: the pair differs only in the server.
#                Queries/s, average latency (lost queries on RAW lines), and
#                dns_server_cpu_us: the CPU (µs) the server used per query
#                answered, h1's daemon or dnsmasq (ticks of /proc/PID/stat),
#                and client_cpu_pct: dnsperf's own CPU in % of one core (near
#                100: the client, not the server, set the queries/s)
#   dns_propagation_ms  endpoint c3 (vxb-c3, 10.77.0.30) added to h1 by
#                SIGHUP until `dig @10.77.0.1 c3` in vxb-c2, on h2, answers
#                it (gossip + h2's name table; dig polled back to back)
#
#   vxb-c3 10.77.0.30 (DNS=1, attached to h1 by SIGHUP)
#   kernel run: vxb-h1's vxb-br0 + 10.77.0.1/24, dnsmasq :53 on it
#
# Output: RESULT lines, one per figure, then a table with vxwire/kernel and,
# with DNS=1, one with vxwire/dnsmasq.
#
# With ENC=1 (the default), three encrypted paths, same figures (modes):
#   vxwire_enc   vxwire with network "bench" encrypted: WireGuard inside the
#                daemon, preshared keys at their default 12 h rotation;
#                container MTU 1390 (underlay - 110)
#   kvx_wg       kernel vxlan vxb-vx0 bound to wireguard-go vxb-wg1|2
#                (100.82.0.1|2, MTU 1440), bridge and veth; MTU 1390
#   wg_go        wireguard-go alone, containers routed over it (proxy ARP on
#                vxb-k1|2, no VXLAN); MTU 1440. The reference of vxwire_enc.
#   wg_deb       (only with WG_DEB=path) wg_go with that other wireguard-go,
#                e.g. WG_DEB=/usr/bin/wireguard-go, Debian's 2022 package
#   wireguard-go is, unless WG_GO names one, the version go.mod pins
#   (golang.zx2c4.com/wireguard, the code vxwire embeds), built into the
#   work folder with `go build golang.zx2c4.com/wireguard` (module cache or
#   proxy): its kernel TUN takes offloads (GSO/GRO, checksums), which
#   Debian's 2022 build lacks. dcpu counts the vxwire daemons or the
#   wireguard-go processes. A table with vxwire_enc/kvx_wg and
#   vxwire_enc/wg_go follows the others.
#
# Run as root: bash tests/bench/bench.sh (make bench builds bin/vxwire first).
# Needs ip, bridge, iperf3, ping, jq, timeout, getconf; with DNS=1 also
# dnsperf, dig and dnsmasq (packages dnsperf, dnsutils, dnsmasq-base).
# Env: T=10 (iperf3 seconds), REPS=3, PN=200 (pings per run),
#      DNS=1 (0 leaves the DNS figures out), DNST=10 (dnsperf seconds),
#      VXWIRE=bin/vxwire (binary; built with go build when missing),
#      ENC=1 (0 leaves the encrypted paths out), WG_GO (wireguard-go binary,
#      default: built from go.mod's version), WG_DEB (see wg_deb), PLAIN=1
#      (0 leaves the kernel and vxwire plain modes out); ENC=1 also needs
#      wg (package wireguard-tools) and go.
set -euo pipefail

cd "$(dirname "$0")/../.."
T=${T:-10} REPS=${REPS:-3} PN=${PN:-200} DNS=${DNS:-1} DNST=${DNST:-10}
BIN=${VXWIRE:-$PWD/bin/vxwire}
ENC=${ENC:-1} WG_GO=${WG_GO:-} WG_DEB=${WG_DEB:-} PLAIN=${PLAIN:-1}
HOSTS=(vxb-h1 vxb-h2) CTRS=(vxb-c1 vxb-c2) EXTRA=(vxb-c3)
UNDERLAY=(198.18.0.1 198.18.0.2) OVERLAY=(10.77.0.10 10.77.0.20)
DST=${OVERLAY[1]}
GW=10.77.0.1 # the network's gateway: vxwire's resolver, or dnsmasq on h1's bridge
HZ=$(getconf CLK_TCK)
WORK="" PIDS=() DAEMONS=()

NAME="bench"
. tests/bench/lib.sh

teardown() {
  [ ${#PIDS[@]} -eq 0 ] || stop "${PIDS[@]}"
  PIDS=() DAEMONS=()
  local n
  for n in "${EXTRA[@]}" "${CTRS[@]}" "${HOSTS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
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
  [ -s "$WORK/cluster.secret" ] || (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/cluster.secret")
  for i in 0 1; do
    j=$((1 - i)) cfg=$WORK/h$((i + 1)).toml
    cat >"$cfg" <<EOF
[host]
name = "h$((i + 1))"
address = "${UNDERLAY[i]}"
state_dir = "$WORK/h$((i + 1))-state"
api_socket = "$WORK/h$((i + 1)).sock"
secret_file = "$WORK/cluster.secret"

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
  done
  start_vxwire ""
}

# start_vxwire PREFIX: start vxwire in both hosts with $WORK/PREFIXhN.toml
# (api_socket $WORK/PREFIXhN.sock), logging to $WORK/PREFIXdaemonN.log, and
# wait until each lists its container.
start_vxwire() {
  local pre=$1 i n st
  for i in 0 1; do
    ip netns exec "${HOSTS[i]}" "$BIN" up -c "$WORK/${pre}h$((i + 1)).toml" 2>"$WORK/${pre}daemon$((i + 1)).log" &
    PIDS+=($!) DAEMONS+=($!)
  done
  for i in 0 1; do
    for n in $(seq 100); do
      st=$(timeout 5 "$BIN" status --socket "$WORK/${pre}h$((i + 1)).sock" --json 2>/dev/null) &&
        jq -e --arg c "c$((i + 1))" 'any(.endpoints[]?; .name == $c)' <<<"$st" >/dev/null && break
      kill -0 "${DAEMONS[i]}" 2>/dev/null || { cat "$WORK/${pre}daemon$((i + 1)).log" >&2; die "vxwire ${pre%-} on h$((i + 1)) exited"; }
      [ "$n" -lt 100 ] || die "vxwire ${pre%-} on h$((i + 1)) not ready after 20 s"
      sleep 0.2
    done
  done
}

# tcp STREAMS: "GBPS DCPU BUSY" of one iperf3 run: receiver Gbit/s, the %
# of one core the daemons used meanwhile, and the % of the machine's CPU
# time that was busy.
tcp() {
  local t0 t1 s0 s1 out b0 c0 b1 c1
  read -r b0 c0 < <(cpustat)
  t0=$(ticks "${DAEMONS[@]}") s0=$(date +%s.%N)
  out=$(timeout $((T + 30)) ip netns exec vxb-c1 iperf3 -c "$DST" -t "$T" -P "$1" -J --connect-timeout 3000 |
    jq -er '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000') || out=nan
  t1=$(ticks "${DAEMONS[@]}") s1=$(date +%s.%N)
  read -r b1 c1 < <(cpustat)
  awk -v g="$out" -v d=$((t1 - t0)) -v hz="$HZ" -v s="$s0" -v e="$s1" -v b=$((b1 - b0)) -v c=$((c1 - c0)) \
    'BEGIN {printf "%s %.0f %s\n", g, 100 * d / hz / (e - s), (c > 0 ? sprintf("%.0f", 100 * b / c) : "nan")}'
}

# pingrtt: "AVG P99" of PN pings at 10 ms intervals, in ms.
pingrtt() {
  timeout $((PN / 50 + 30)) ip netns exec vxb-c1 ping -c "$PN" -i 0.01 -W 1 "$DST" |
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -g |
    awk '{v[n++] = $1; s += $1} END {if (!n) {print "nan nan"; exit} i = int(n * 0.99 + 0.999) - 1; printf "%.3f %.3f\n", s / n, v[i]}'
}

declare -A R

measure() { # measure MODE
  local mode=$1 rep v d u n streams metric avgs="" p99s="" a p vals dcpus busys
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
    metric=tcp${streams}_gbps vals="" dcpus="" busys=""
    for rep in $(seq "$REPS"); do
      read -r v d u < <(tcp "$streams")
      log "RAW mode=$mode metric=$metric rep=$rep value=$v daemon_cpu_pct=$d host_busy_pct=$u"
      vals+="$v"$'\n' dcpus+="$d"$'\n' busys+="$u"$'\n'
    done
    R[$mode,$metric]=$(median <<<"$vals")
    R[$mode,${metric}_dcpu]=$(median <<<"$dcpus")
    R[$mode,${metric}_busy]=$(median <<<"$busys")
    [ ${#DAEMONS[@]} -gt 0 ] || R[$mode,${metric}_dcpu]=-
    echo "RESULT mode=$mode metric=$metric value=${R[$mode,$metric]} daemon_cpu_pct=${R[$mode,${metric}_dcpu]} host_busy_pct=${R[$mode,${metric}_busy]}"
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

# dnsperf_run SERVER: "QPS AVG_MS LOST_PCT COMPLETED CLIENT_CPU_PCT" of one
# dnsperf run from vxb-c1. CLIENT_CPU_PCT is dnsperf's user and system CPU
# over DNST seconds, in % of one core, read from `times` in the subshell
# that waited for it (its second line: the children). Near 100, dnsperf's
# one thread sends as fast as it can, and the queries/s are the client's
# limit rather than the server's.
dnsperf_run() {
  local out
  out=$(
    timeout $((DNST + 30)) ip netns exec vxb-c1 dnsperf -s "$1" -p 53 -d "$WORK/queries.txt" \
      -l "$DNST" -c 4 -T 1 2>&1
    rc=$?
    times
    exit $rc
  ) || { log "$out"; echo "nan nan nan 0 nan"; return; }
  awk -v secs="$DNST" '/Queries per second:/ {q = $4}
    /Average Latency \(s\):/ {l = $4 * 1000}
    /Queries lost:/ {gsub(/[()%]/, "", $4); p = $4}
    /Queries completed:/ {c = $3}
    /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ {
      split($1, u, /[ms]/); split($2, k, /[ms]/)
      cpu = (u[1] * 60 + u[2] + k[1] * 60 + k[2]) / secs * 100
    }
    END {if (q == "") print "nan nan nan 0 nan"; else printf "%.0f %.3f %s %d %.0f\n", q, l, p, c, cpu}' <<<"$out"
}

# digs NS NAME: the answers of `dig @GW NAME +short` in NS, on one line.
digs() {
  timeout 5 ip netns exec "$1" dig @"$GW" "$2" +short +tries=1 +time=1 2>/dev/null | paste -sd' ' || true
}

# dns_files: the query list of dnsperf and the hosts file of dnsmasq, the
# names vxwire serves for c1 and c2.
dns_files() {
  printf 'c1 A\nc2 A\nc1.bench A\nc2.bench A\n' >"$WORK/queries.txt"
  printf '%s c1 c1.bench\n%s c2 c2.bench\n' "${OVERLAY[0]}" "${OVERLAY[1]}" >"$WORK/dns.hosts"
}

# dns_wait: until `dig @GW c2` in vxb-c1 answers c2's address.
dns_wait() {
  local n
  for n in $(seq 100); do
    [ "$(digs vxb-c1 c2)" = "${OVERLAY[1]}" ] && break
    [ "$n" -lt 100 ] || die "dns: c2 does not resolve on $GW in vxb-c1 ($1)"
    sleep 0.2
  done
}

# dns_result MODE PID...: dnsperf from vxb-c1 against GW, REPS times, a RAW
# line each; RESULT lines for MODE with the medians, and the CPU the
# server's PIDs used per answered query (µs): on a shared machine
# queries/s move with the load, CPU per query much less.
dns_result() {
  local rep q l p c cc t0 t1 us qs="" ls="" uss="" ccs=""
  for rep in $(seq "$REPS"); do
    t0=$(ticks "${@:2}")
    read -r q l p c cc < <(dnsperf_run "$GW")
    t1=$(ticks "${@:2}")
    us=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v c="$c" 'BEGIN {if (c > 0) printf "%.2f", d / hz * 1e6 / c; else print "nan"}')
    log "RAW mode=$1 metric=dns_qps rep=$rep value=$q avg_latency_ms=$l lost_pct=$p queries=$c server_cpu_us=$us client_cpu_pct=$cc"
    qs+="$q"$'\n' ls+="$l"$'\n' uss+="$us"$'\n' ccs+="$cc"$'\n'
  done
  q=$(median <<<"$qs") l=$(median <<<"$ls") us=$(median <<<"$uss") cc=$(median <<<"$ccs")
  R[$1,dns_qps]=$q R[$1,dns_avg_ms]=$l R[$1,dns_cpu_us]=$us R[$1,dns_client_pct]=$cc
  echo "RESULT mode=$1 metric=dns_qps value=$q avg_latency_ms=$l client_cpu_pct=$cc server=$GW:53"
  echo "RESULT mode=$1 metric=dns_avg_latency_ms value=$l"
  echo "RESULT mode=$1 metric=dns_server_cpu_us value=$us"
}

# measure_dnsmasq: in the kernel run, dnsmasq on vxb-h1 at GW, an address
# of the bridge vxb-c1's veth is attached to: one hop from the container,
# where vxwire's resolver answers in the vxwire run.
measure_dnsmasq() {
  local kid
  dns_files
  ip -n vxb-h1 addr add "$GW/24" dev vxb-br0
  timeout $((REPS * (DNST + 30) + 120)) ip netns exec vxb-h1 dnsmasq --no-daemon --conf-file=/dev/null --no-resolv \
    --no-hosts --addn-hosts="$WORK/dns.hosts" --port=53 --listen-address="$GW" --bind-interfaces \
    --log-facility="$WORK/dnsmasq.log" &
  PIDS+=($!)
  dns_wait dnsmasq
  kid=$(<"/proc/$!/task/$!/children") # dnsmasq, timeout's child, answering by now
  dns_result dnsmasq "${kid%% *}"
}

measure_dns() {
  local t0 t1
  dns_files
  dns_wait vxwire
  dns_result vxwire "${DAEMONS[0]}"

  # Propagation: attach c3 on h1 by SIGHUP, poll dig in h2's container.
  ip netns add vxb-c3
  ip -n vxb-c3 link set lo up
  printf '\n[[endpoint]]\nnetwork = "bench"\nname = "c3"\nnetns = "/var/run/netns/vxb-c3"\naddress = "10.77.0.30"\n' \
    >>"$WORK/h1.toml"
  t0=$(date +%s%N)
  kill -HUP "${DAEMONS[0]}"
  R[vxwire,dns_propagation_ms]=nan
  while [ $(($(date +%s%N) - t0)) -lt 30000000000 ]; do
    if [ "$(digs vxb-c2 c3)" = 10.77.0.30 ]; then
      t1=$(date +%s%N)
      R[vxwire,dns_propagation_ms]=$(((t1 - t0) / 1000000))
      break
    fi
  done
  echo "RESULT metric=dns_propagation_ms value=${R[vxwire,dns_propagation_ms]}"
}

# --- Encrypted paths (ENC=1) -------------------------------------------------
# Three encrypted data paths between the same containers, measured like the
# others: vxwire with the network encrypted, kernel vxlan over wireguard-go
# (the nearest measurable stand-in for an encrypted kernel overlay), and
# wireguard-go alone as a routed L3 tunnel (no L2, no VXLAN). wireguard-go
# is WG_GO, by default the version vxwire embeds (wggo_build).

TUNNEL=(100.82.0.1 100.82.0.2) # tunnel addresses, as vxwire derives them from UNDERLAY

# enc_keys TOOL NAME: a key pair per host from `TOOL genkey` and `TOOL pubkey`,
# in $WORK/NAME0.key, NAME0.pub, NAME1.key, NAME1.pub (keys mode 0600).
enc_keys() {
  local i
  for i in 0 1; do
    (umask 077 && "$1" genkey >"$WORK/$2$i.key")
    "$1" pubkey <"$WORK/$2$i.key" >"$WORK/$2$i.pub"
  done
}

# enc_ctr I MTU: container I's eth0, a veth to vxb-k(I+1) in host I, both at MTU.
enc_ctr() {
  local i=$1
  ip link add "vxb-k$((i + 1))" netns "${HOSTS[i]}" mtu "$2" type veth peer name eth0 netns "${CTRS[i]}" mtu "$2"
  ip -n "${CTRS[i]}" addr add "${OVERLAY[i]}/24" dev eth0
  ip -n "${CTRS[i]}" link set eth0 up
  ip -n "${HOSTS[i]}" link set "vxb-k$((i + 1))" up
}

up_vxwire_enc() {
  local i j cfg n st
  enc_keys "$BIN" vxk
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/cluster.secret")
  for i in 0 1; do
    j=$((1 - i)) cfg=$WORK/enc-h$((i + 1)).toml
    cat >"$cfg" <<EOF
[host]
name = "h$((i + 1))"
address = "${UNDERLAY[i]}"
state_dir = "$WORK/enc-h$((i + 1))-state"
api_socket = "$WORK/enc-h$((i + 1)).sock"
private_key_file = "$WORK/vxk$i.key"
secret_file = "$WORK/cluster.secret"
wg_name = "vxb-vxw$((i + 1))"

[[peer]]
name = "h$((j + 1))"
address = "${UNDERLAY[j]}"
public_key = "$(cat "$WORK/vxk$j.pub")"

[[network]]
name = "bench"
vni = 256
subnet = "10.77.0.0/24"
gateway = "10.77.0.1"
encrypted = true

[[endpoint]]
network = "bench"
name = "c$((i + 1))"
netns = "/var/run/netns/${CTRS[i]}"
address = "${OVERLAY[i]}"
EOF
  done
  start_vxwire enc-
}

# wggo_build: unless WG_GO names a binary, build the wireguard-go that go.mod
# pins into $WORK/wireguard-go (the main package of the module vxwire embeds,
# with vxwire's versions of its dependencies) and point WG_GO at it.
wggo_build() {
  [ -z "$WG_GO" ] || return 0
  log "bench: building wireguard-go $(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)"
  timeout 600 go build -o "$WORK/wireguard-go" golang.zx2c4.com/wireguard || die "cannot build wireguard-go"
  WG_GO=$WORK/wireguard-go
}

# wggo_up [routed [BINARY]]: wireguard-go (WG_GO, or BINARY) vxb-wg1|2 in the
# hosts, peered over the underlay on udp/51820, tunnel addresses TUNNEL/24,
# MTU 1440 (1500 - 60, the inner MTU vxwire uses). With "routed", each
# peer's allowed-ips also hold its container's address.
wggo_up() {
  local i j n allowed bin=${2:-$WG_GO}
  enc_keys wg wgk
  for i in 0 1; do
    rm -f "/var/run/wireguard/vxb-wg$((i + 1)).sock" # this script's name, left by a killed run
    ip netns exec "${HOSTS[i]}" "$bin" -f "vxb-wg$((i + 1))" >"$WORK/wg$((i + 1)).log" 2>&1 &
    PIDS+=($!) DAEMONS+=($!)
  done
  for i in 0 1; do
    j=$((1 - i)) allowed=${TUNNEL[j]}/32
    [ "${1:-}" != routed ] || allowed+=,${OVERLAY[j]}/32
    for n in $(seq 100); do
      [ -S "/var/run/wireguard/vxb-wg$((i + 1)).sock" ] && break
      [ "$n" -lt 100 ] || { cat "$WORK/wg$((i + 1)).log" >&2; die "wireguard-go on h$((i + 1)) did not start"; }
      sleep 0.1
    done
    ip netns exec "${HOSTS[i]}" wg set "vxb-wg$((i + 1))" listen-port 51820 private-key "$WORK/wgk$i.key" \
      peer "$(cat "$WORK/wgk$j.pub")" endpoint "${UNDERLAY[j]}:51820" allowed-ips "$allowed"
    ip -n "${HOSTS[i]}" addr add "${TUNNEL[i]}/24" dev "vxb-wg$((i + 1))"
    ip -n "${HOSTS[i]}" link set "vxb-wg$((i + 1))" mtu 1440 up
  done
}

# Kernel vxlan bound to the wireguard-go interface: what a stock host joining
# a vxwire encrypted network runs (docs/wireguard-interop.md).
up_kvx_wg() {
  local i h
  wggo_up
  for i in 0 1; do
    h=${HOSTS[i]}
    ip -n "$h" link add vxb-br0 type bridge
    ip -n "$h" link add vxb-vx0 type vxlan id 256 dstport 4789 local "${TUNNEL[i]}" remote "${TUNNEL[1 - i]}" \
      dev "vxb-wg$((i + 1))"
    ip -n "$h" link set vxb-vx0 mtu 1390 master vxb-br0 up
    enc_ctr "$i" 1390
    ip -n "$h" link set "vxb-k$((i + 1))" master vxb-br0
    ip -n "$h" link set vxb-br0 up
  done
}

# wireguard-go alone: no bridge; each host routes its container's /32 to the
# veth (answering ARP for the other one by proxy) and the other's to wg.
up_wg_go() {
  local i h
  wggo_up routed "${1:-}"
  for i in 0 1; do
    h=${HOSTS[i]}
    enc_ctr "$i" 1440
    ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=1 "net.ipv4.conf.vxb-k$((i + 1)).proxy_arp=1" \
      "net.ipv4.neigh.vxb-k$((i + 1)).proxy_delay=0"
    ip -n "$h" route add "${OVERLAY[i]}/32" dev "vxb-k$((i + 1))"
    ip -n "$h" route add "${OVERLAY[1 - i]}/32" dev "vxb-wg$((i + 1))"
  done
}

# wg_deb: wg_go with WG_DEB's wireguard-go.
up_wg_deb() { up_wg_go "$WG_DEB"; }

ENC_MODES=(vxwire_enc kvx_wg wg_go)
[ -z "$WG_DEB" ] || ENC_MODES+=(wg_deb)

run_enc() {
  local mode
  wggo_build
  for mode in "${ENC_MODES[@]}"; do
    log "### $mode: T=$T s, REPS=$REPS, PN=$PN (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
    underlay
    "up_$mode"
    measure "$mode"
    teardown
  done
}

enc_table() {
  local metric m ref v row
  declare -A ratio
  echo
  for ref in kvx_wg wg_go; do
    for metric in tcp1_gbps tcp4_gbps ping_avg_ms ping_p99_ms; do
      v=${R[vxwire_enc,$metric]:-nan}
      ratio[$ref,$metric]=$(ratio "$v" "${R[$ref,$metric]:-nan}")
      echo "RESULT mode=vxwire_enc metric=${metric}_vs_${ref} value=${ratio[$ref,$metric]}"
    done
  done
  printf '%-14s' metric
  printf ' %12s' "${ENC_MODES[@]}"
  printf ' %18s %18s\n' vxwire_enc/kvx_wg vxwire_enc/wg_go
  for metric in tcp1_gbps tcp4_gbps ping_avg_ms ping_p99_ms; do
    printf '%-14s' "$metric"
    for m in "${ENC_MODES[@]}"; do printf ' %12s' "${R[$m,$metric]:-nan}"; done
    printf ' %18s %18s\n' "${ratio[kvx_wg,$metric]}" "${ratio[wg_go,$metric]}"
  done
  row=()
  for m in "${ENC_MODES[@]}"; do row+=("${R[$m,tcp1_gbps_dcpu]:-nan}/${R[$m,tcp4_gbps_dcpu]:-nan}"); done
  printf '%-14s' daemon_cpu_pct
  printf ' %12s' "${row[@]}"
  echo
  row=()
  for m in "${ENC_MODES[@]}"; do row+=("${R[$m,tcp1_gbps_busy]:-nan}/${R[$m,tcp4_gbps_busy]:-nan}"); done
  printf '%-14s' host_busy_pct
  printf ' %12s' "${row[@]}"
  echo
  echo "(vxwire_enc: vxwire, network encrypted, MTU 1390; kvx_wg: kernel vxlan over wireguard-go, MTU 1390;"
  echo " wg_go: wireguard-go routed, no VXLAN, MTU 1440; wireguard-go: $("$WG_GO" --version 2>/dev/null | head -1);"
  echo " daemon_cpu_pct: vxwire or wireguard-go, tcp1/tcp4; host_busy_pct: % of all CPUs busy, tcp1/tcp4)"
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, veth, TAP)"
for t in ip bridge iperf3 ping jq timeout getconf awk; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install iproute2 iperf3 iputils-ping jq)"
done
if [ "$DNS" = 1 ]; then
  for t in dnsperf dig dnsmasq paste; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install dnsperf dnsutils dnsmasq-base), or run with DNS=0"
  done
fi
if [ "$ENC" = 1 ]; then
  for t in wg od ${WG_GO:-go} $WG_DEB; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install wireguard-tools; go builds wireguard-go), or run with ENC=0"
  done
fi
if [ ! -x "$BIN" ]; then
  log "bench: building $BIN"
  timeout 600 go build -o "$BIN" ./cmd/vxwire
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vxb.XXXXXX")
teardown # namespaces left over from an interrupted run

PLAIN_MODES=(kernel vxwire)
[ "$PLAIN" = 1 ] || PLAIN_MODES=()
for mode in "${PLAIN_MODES[@]}"; do
  log "### $mode: T=$T s, REPS=$REPS, PN=$PN (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  underlay
  "up_$mode"
  measure "$mode"
  if [ "$DNS" = 1 ]; then
    if [ "$mode" = kernel ]; then measure_dnsmasq; else measure_dns; fi
  fi
  teardown
done
[ "$ENC" != 1 ] || run_enc

if [ "$PLAIN" = 1 ]; then
echo
printf '%-14s %12s %12s %16s\n' metric kernel vxwire vxwire/kernel
for metric in tcp1_gbps tcp4_gbps ping_avg_ms ping_p99_ms; do
  k=${R[kernel,$metric]} v=${R[vxwire,$metric]}
  ratio=$(ratio "$v" "$k")
  printf '%-14s %12s %12s %16s\n' "$metric" "$k" "$v" "$ratio"
done
printf '%-14s %12s %12s\n' daemon_cpu_pct - "${R[vxwire,tcp1_gbps_dcpu]}/${R[vxwire,tcp4_gbps_dcpu]}"
printf '%-14s %12s %12s\n' host_busy_pct "${R[kernel,tcp1_gbps_busy]}/${R[kernel,tcp4_gbps_busy]}" "${R[vxwire,tcp1_gbps_busy]}/${R[vxwire,tcp4_gbps_busy]}"
echo "(Gbit/s: higher is better; ms: lower is better; daemon_cpu_pct: % of one core, tcp1/tcp4;"
echo " host_busy_pct: % of all $(getconf _NPROCESSORS_ONLN) CPUs busy, tcp1/tcp4: near 100 the figure is bound by CPU)"
fi
if [ "$DNS" = 1 ] && [ "$PLAIN" = 1 ]; then
  echo
  printf '%-18s %12s %12s %16s\n' metric dnsmasq vxwire vxwire/dnsmasq
  for metric in dns_qps dns_avg_ms dns_cpu_us; do
    k=${R[dnsmasq,$metric]:-nan} v=${R[vxwire,$metric]:-nan}
    ratio=$(ratio "$v" "$k")
    printf '%-18s %12s %12s %16s\n' "$metric" "$k" "$v" "$ratio"
  done
  printf '%-18s %12s %12s\n' dns_client_pct "${R[dnsmasq,dns_client_pct]:-nan}" "${R[vxwire,dns_client_pct]:-nan}"
  printf '%-18s %12s %12s\n' dns_propagation_ms - "${R[vxwire,dns_propagation_ms]:-nan}"
  echo "(dns_qps: higher is better; dns_avg_ms, dns_cpu_us (server CPU per query), dns_propagation_ms: lower is better; both answer on 10.77.0.1 on vxb-c1's host, one hop;"
  echo " dns_client_pct: dnsperf's CPU, % of one core: near 100 the client, not the server, sets dns_qps)"
fi
[ "$ENC" != 1 ] || enc_table
