#!/usr/bin/env bash
# soak.sh - DURATION seconds of mixed traffic, churn, reloads and key
# rotation on two hosts, with each daemon's RSS, live heap, goroutines and
# file descriptors before and after:
#
#   vxsk-pa 10.201.0.10  vxsk-ea 10.202.0.10      vxsk-pb 10.201.0.20  vxsk-eb 10.202.0.20
#   vxsk-r1 plain (reloads)                       vxsk-r2 secret (reloads)
#          └──────── vxsk-h1 ────────┘               └──────── vxsk-h2 ────────┘
#                    vxsk-u1 198.18.1.1/24 ══ veth ══ vxsk-u2 198.18.1.2/24
#   vxsk-x1, vxsk-x2: attached and detached through the API, on either host
#
#   network "plain"  VNI 301, 10.201.0.0/24, gateway 10.201.0.1
#   network "secret" VNI 302, 10.202.0.0/24, gateway 10.202.0.1, encrypted,
#                    preshared keys rotated every ROTATE seconds
#
# A warm-up of WARMUP seconds runs the same mix once (handshakes, pools,
# first attaches), then the start figures are taken with the hosts quiet.
# For DURATION seconds, at once:
#   streams  iperf3 --bidir at RATE each way: pa <-> pb (plain), eb <-> ea
#            (secret); broken if iperf3 fails or reports no end; Mbit/s
#            each way and the seconds in which either way moved nothing
#   pings    pa -> pb and ea -> eb once a second each, 2 s to answer
#   lookups  dig @gateway for the other host's container by name, once a
#            second on each network (name and name.network alternately)
#   churn    attach x<N> through the API on h1 or h2 to plain or secret,
#            ping the other host's container from it, detach, check its
#            eth0 is gone; one cycle after another, CHURN_GAP apart
#   reloads  RELOADS SIGHUPs spread over the run, alternately to h1 and h2,
#            each adding or removing the host's [[endpoint]] r1|r2 in its
#            config; checked by the daemon's "reloaded" line and its status
# Then, once the loops have ended and the churned endpoints are gone, the
# end figures. Between the two, each daemon must have rotated its
# preshared keys at least DURATION/ROTATE - 1 times ("preshared keys
# rotated" in its log), and be alive, with no recovered panic.
#
# Output: RESULT lines (tests/bench/report reads them): per host and phase
# (mode=h1_start ...) rss_mib, heap_mib, goroutines, fds; per check
# (mode=soak) the failures and how many ran; then a table. During the run,
# a RAW line per host every SAMPLE seconds with the same figures. Exits non-zero
# when a stream broke or any check failed.
#
# Run as root: bash tests/bench/soak.sh (make soak builds bin/vxwire first).
# Needs ip, iperf3, ping, dig, jq, timeout, od.
# Env: DURATION=600 (seconds of soak), WARMUP=20, RATE=20M (iperf3 -b, each
#      direction of each stream), ROTATE=30 (rotate_every, seconds),
#      RELOADS=6, CHURN_GAP=0.5 (seconds between churn cycles),
#      SAMPLE=60 (seconds between RAW lines of the process figures, 0: none),
#      VXWIRE=bin/vxwire (binary; built with go build when missing),
#      LOG_LEVEL=info (the daemons' --log-level; debug adds WireGuard's
#      handshake events), KEEP= (a directory: the daemons' logs and configs
#      are copied there at the end, pass or fail).
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-600} WARMUP=${WARMUP:-20} RATE=${RATE:-20M} ROTATE=${ROTATE:-30}
RELOADS=${RELOADS:-6} CHURN_GAP=${CHURN_GAP:-0.5} SAMPLE=${SAMPLE:-60}
LOG_LEVEL=${LOG_LEVEL:-info} KEEP=${KEEP:-}
BIN=${VXWIRE:-$PWD/bin/vxwire}
HOSTS=(vxsk-h1 vxsk-h2) CTRS=(vxsk-pa vxsk-pb vxsk-ea vxsk-eb vxsk-r1 vxsk-r2 vxsk-x1 vxsk-x2)
UNDERLAY=(198.18.1.1 198.18.1.2)
WORK="" PIDS=() DAEMONS=()

NAME="soak"
. tests/bench/lib.sh

# descendants PID: the PIDs of PID's children, grandchildren, and so on.
descendants() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    descendants "$c"
    echo "$c"
  done
}

cleanup() {
  local rc=$? p all=() n
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do all+=($(descendants "$p") "$p"); done
  [ ${#all[@]} -eq 0 ] || stop "${all[@]}"
  if [ "$rc" != 0 ] && [ -n "$WORK" ]; then
    for n in 1 2; do
      [ ! -s "$WORK/daemon$n.log" ] || { log "soak: h$n's warnings, errors and peer re-joins:"; grep -E 'level=(WARN|ERROR)|msg="peer alive' "$WORK/daemon$n.log" | grep -v component=raft | tail -10 >&2 || true; }
    done
  fi
  if [ -n "$KEEP" ] && [ -n "$WORK" ]; then
    mkdir -p "$KEEP" && cp "$WORK"/*.log "$WORK"/*.toml "$KEEP"/ 2>/dev/null || true
  fi
  for n in "${CTRS[@]}" "${HOSTS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -f /var/run/wireguard/vxsk-wg1.sock /var/run/wireguard/vxsk-wg2.sock
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

# sock I: the API socket of host I (0 or 1).
sock() { echo "$WORK/h$(($1 + 1)).sock"; }

# conf I RELOADED: write host I's config, with its reload endpoint when
# RELOADED is 1; written aside and renamed, so a reload never reads half.
conf() {
  local i=$1 j=$((1 - $1)) f=$WORK/h$(($1 + 1)).toml
  cat >"$f.new" <<EOF
[host]
name = "h$((i + 1))"
address = "${UNDERLAY[i]}"
state_dir = "$WORK/h$((i + 1))-state"
api_socket = "$(sock "$i")"
secret_file = "$WORK/cluster.secret"
private_key_file = "$WORK/h$i.key"
wg_name = "vxsk-wg$((i + 1))"
rotate_every = "${ROTATE}s"

[[peer]]
name = "h$((j + 1))"
address = "${UNDERLAY[j]}"
public_key = "$(cat "$WORK/h$j.pub")"

[[network]]
name = "plain"
vni = 301
subnet = "10.201.0.0/24"
gateway = "10.201.0.1"

[[network]]
name = "secret"
vni = 302
subnet = "10.202.0.0/24"
gateway = "10.202.0.1"
encrypted = true
EOF
  if [ "$i" = 0 ]; then
    endpoint plain pa 10.201.0.10 >>"$f.new"
    endpoint secret ea 10.202.0.10 >>"$f.new"
    [ "$2" = 0 ] || endpoint plain r1 >>"$f.new"
  else
    endpoint plain pb 10.201.0.20 >>"$f.new"
    endpoint secret eb 10.202.0.20 >>"$f.new"
    [ "$2" = 0 ] || endpoint secret r2 >>"$f.new"
  fi
  mv "$f.new" "$f"
}

# endpoint NETWORK NAME [ADDRESS]: an [[endpoint]] table in namespace
# vxsk-NAME; without ADDRESS, the daemon allocates one.
endpoint() {
  printf '\n[[endpoint]]\nnetwork = "%s"\nname = "%s"\nnetns = "/var/run/netns/vxsk-%s"\n' "$1" "$2" "$2"
  [ -z "${3:-}" ] || printf 'address = "%s"\n' "$3"
}

setup() {
  local n i
  for n in "${HOSTS[@]}" "${CTRS[@]}"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
  done
  ip link add vxsk-u1 netns vxsk-h1 type veth peer name vxsk-u2 netns vxsk-h2
  for i in 0 1; do
    ip -n "${HOSTS[i]}" addr add "${UNDERLAY[i]}/24" dev "vxsk-u$((i + 1))"
    ip -n "${HOSTS[i]}" link set "vxsk-u$((i + 1))" up
    (umask 077 && "$BIN" genkey >"$WORK/h$i.key")
    "$BIN" pubkey <"$WORK/h$i.key" >"$WORK/h$i.pub"
  done
  (umask 077 && "$BIN" gensecret >"$WORK/cluster.secret")
  for i in 0 1; do conf "$i" 0; done
  for i in 0 1; do
    ip netns exec "${HOSTS[i]}" "$BIN" up --log-level "$LOG_LEVEL" -c "$WORK/h$((i + 1)).toml" 2>"$WORK/daemon$((i + 1)).log" &
    PIDS+=($!) DAEMONS+=($!)
  done
  for i in 0 1; do
    for n in $(seq 100); do
      timeout 5 "$BIN" status --socket "$(sock "$i")" --json 2>/dev/null |
        jq -e '(.endpoints | length) == 2' >/dev/null && break
      kill -0 "${DAEMONS[i]}" 2>/dev/null || { cat "$WORK/daemon$((i + 1)).log" >&2; die "vxwire on h$((i + 1)) exited"; }
      [ "$n" -lt 100 ] || die "vxwire on h$((i + 1)) not ready after 20 s"
      sleep 0.2
    done
  done
}

# count FILE OK FAIL: record a loop's tallies.
count() { echo "$2 $3" >"$WORK/$1.count"; }

# pings SECONDS: ping pa -> pb and ea -> eb once a second each.
pings() {
  local end=$((SECONDS + $1)) ok=0 fail=0 src dst
  while [ "$SECONDS" -lt "$end" ]; do
    for src in pa:10.201.0.20 ea:10.202.0.20; do
      dst=${src#*:} src=${src%%:*}
      if timeout 5 ip netns exec "vxsk-$src" ping -c 1 -W 2 -q "$dst" >/dev/null 2>&1; then
        ok=$((ok + 1))
      else
        fail=$((fail + 1)) && log "soak: $(date -u +%T) ping $src -> $dst failed$(wgstate "$src")"
      fi
    done
    sleep 1
  done
  count pings "$ok" "$fail"
}

# lookups SECONDS: resolve the other host's container on each network.
lookups() {
  local end=$((SECONDS + $1)) ok=0 fail=0 n=0 q want got
  while [ "$SECONDS" -lt "$end" ]; do
    n=$((n + 1))
    for q in pa:10.201.0.1:pb:plain:10.201.0.20 eb:10.202.0.1:ea:secret:10.202.0.10; do
      IFS=: read -r src gw name net want <<<"$q"
      [ $((n % 2)) = 0 ] || name=$name.$net
      got=$(timeout 5 ip netns exec "vxsk-$src" dig @"$gw" "$name" +short +tries=1 +time=2 2>/dev/null | paste -sd' ' || true)
      if [ "$got" = "$want" ]; then
        ok=$((ok + 1))
      else
        fail=$((fail + 1)) && log "soak: $(date -u +%T) lookup of $name from $src got '$got'"
      fi
    done
    sleep 1
  done
  count lookups "$ok" "$fail"
}

# cycle N: one attach, ping, detach of x<N>; fails with a message. It
# detaches even when the ping failed, so one failure does not block the
# namespace for the cycles after it.
cycle() {
  local n=$1 h=$(($1 % 2)) ns=vxsk-x$(($1 % 2 + 1)) net=plain sub=10.201.0 dst i reached=0
  [ $((n / 2 % 2)) = 0 ] || net=secret sub=10.202.0
  dst=$sub.$((20 - 10 * h)) # the other host's container: .20 on h2, .10 on h1
  timeout 20 "$BIN" attach --socket "$(sock "$h")" --network "$net" --netns "/var/run/netns/$ns" \
    --name "x$n" >/dev/null || { log "soak: attach x$n to $net on h$((h + 1)) failed"; return 1; }
  for i in $(seq 10); do
    timeout 5 ip netns exec "$ns" ping -c 1 -W 1 -q "$dst" >/dev/null 2>&1 && { reached=1 && break; }
  done
  [ "$reached" = 1 ] || unreached "$n" "$h" "$ns" "$net" "$dst"
  timeout 20 "$BIN" detach --socket "$(sock "$h")" --network "$net" --name "x$n" >/dev/null ||
    { log "soak: detach x$n failed"; return 1; }
  for i in $(seq 100); do
    ip -n "$ns" link show eth0 >/dev/null 2>&1 || return $((1 - reached))
    sleep 0.05
  done
  log "soak: x$n's eth0 still in $ns after detach"
  return 1
}

# wgstate NAME: for the encrypted network (NAME secret or one of its
# containers, e*), each host's seconds since its last WireGuard handshake,
# and the bytes WireGuard received from and sent to the other host (one
# direction dead shows as one host's received bytes standing still while
# the other's sent bytes grow).
wgstate() {
  local i t x
  case $1 in secret | e*) ;; *) return 0 ;; esac
  printf '; last handshake'
  for i in 0 1; do
    t=$(timeout 5 ip netns exec "${HOSTS[i]}" wg show "vxsk-wg$((i + 1))" latest-handshakes 2>/dev/null | awk '{print $2}')
    printf ' h%d %ss ago' $((i + 1)) "$([ -n "$t" ] && [ "$t" != 0 ] && echo $(($(date +%s) - t)) || echo "?")"
  done
  printf '; wireguard bytes received/sent'
  for i in 0 1; do
    x=$(timeout 5 ip netns exec "${HOSTS[i]}" wg show "vxsk-wg$((i + 1))" transfer 2>/dev/null | awk '{print $2 "/" $3}')
    printf ' h%d %s' $((i + 1)) "${x:-?}"
  done
}

# unreached N H NS NETWORK DST: say that x<N> could not reach DST, with
# the neighbour entries on both sides and both hosts' drop counters.
unreached() {
  local peer=p i
  [ "$4" = plain ] || peer=e
  [ "$2" = 1 ] && peer+=a || peer+=b
  log "soak: $(date -u +%T) x$1 on h$(($2 + 1)) cannot reach $5 on $4$(wgstate "$4");" \
    "x$1: $(ip -n "$3" -4 -br addr show eth0 2>&1 | paste -sd' '), neighbours: $(ip -n "$3" neigh 2>&1 | paste -sd';');" \
    "$peer neighbours: $(ip -n "vxsk-$peer" neigh 2>&1 | paste -sd';')"
  for i in 0 1; do
    log "soak: h$((i + 1)) drops: $(timeout 5 "$BIN" status --socket "$(sock "$i")" --json 2>/dev/null |
      jq -c '{host: .counters.drops, networks: [.networks[] | {(.name): .counters.drops}] | add, wireguard: .wireguard.drops}')"
  done
}

# churn SECONDS FIRST: cycles numbered from FIRST until SECONDS are up.
churn() {
  local end=$((SECONDS + $1)) n=$2 ok=0 fail=0
  while [ "$SECONDS" -lt "$end" ]; do
    if cycle "$n"; then ok=$((ok + 1)); else fail=$((fail + 1)); fi
    n=$((n + 1))
    sleep "$CHURN_GAP"
  done
  count churn "$ok" "$fail"
}

# reloads SECONDS COUNT: COUNT SIGHUPs spread over SECONDS.
reloads() {
  local gap=$(($1 / ($2 + 1))) k i want before ok=0 fail=0 on=(0 0) n
  for k in $(seq 0 $(($2 - 1))); do
    sleep "$gap"
    i=$((k % 2)) on[i]=$((1 - on[i]))
    conf "$i" "${on[i]}"
    before=$(grep -c ' msg=reloaded ' "$WORK/daemon$((i + 1)).log" || true)
    want=$((2 + on[i]))
    kill -HUP "${DAEMONS[i]}"
    for n in $(seq 75); do
      [ "$(grep -c ' msg=reloaded ' "$WORK/daemon$((i + 1)).log" || true)" -gt "$before" ] &&
        timeout 5 "$BIN" status --socket "$(sock "$i")" --json 2>/dev/null |
        jq -e --argjson w "$want" '[.endpoints[] | select(.name | test("^x") | not)] | length == $w' >/dev/null &&
        { ok=$((ok + 1)); break; }
      [ "$n" -lt 75 ] || { fail=$((fail + 1)) && log "soak: reload $k of h$((i + 1)) not applied in 15 s"; }
      sleep 0.2
    done
  done
  count reloads "$ok" "$fail"
}

# stream NAME CLIENT SERVER ADDR SECONDS: iperf3 --bidir at RATE; writes
# NAME.count "1 0" when it ended with a summary, "0 1" when it broke, and
# NAME.figs: Mbit/s received each way and the 1 s intervals in which
# either way moved nothing.
stream() {
  local out=$WORK/$1.json srv
  timeout $(($5 + 60)) ip netns exec "vxsk-$3" iperf3 -s -1 -B "$4" >"$WORK/$1-server.log" 2>&1 &
  srv=$!
  for _ in $(seq 100); do
    timeout 2 ip netns exec "vxsk-$3" ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  if timeout $(($5 + 30)) ip netns exec "vxsk-$2" iperf3 -c "$4" --bidir -b "$RATE" -t "$5" -J \
    --connect-timeout 3000 >"$out" 2>&1 && jq -e '.end.sum_received.bytes > 0' "$out" >/dev/null; then
    count "$1" 1 0
    jq -r '[.end.sum_received.bits_per_second, .end.sum_received_bidir_reverse.bits_per_second | . / 1e6 * 10 | round / 10]
      + [[.intervals[] | select(.sum.bytes == 0 or .sum_bidir_reverse.bytes == 0)] | length] | @tsv' "$out" >"$WORK/$1.figs"
  else
    count "$1" 0 1 && log "soak: stream $1 broke: $(jq -r '.error // empty' "$out" 2>/dev/null)"
  fi
  stop "$srv"
}

# phase SECONDS FIRST: run the whole mix for SECONDS; churn numbers its
# endpoints from FIRST. Returns when every part has ended.
phase() {
  local p=()
  stream plain pa pb 10.201.0.20 "$1" &
  p+=($!)
  stream secret eb ea 10.202.0.10 "$1" &
  p+=($!)
  pings "$1" &
  p+=($!)
  lookups "$1" &
  p+=($!)
  churn "$1" "$2" &
  p+=($!)
  [ "$RELOADS" = 0 ] || { reloads "$1" "$RELOADS" & p+=($!); }
  [ "$SAMPLE" = 0 ] || { sampler "$1" & p+=($!); }
  PIDS+=("${p[@]}")
  wait "${p[@]}" || true
}

# sampler SECONDS: a RAW line of each daemon's process figures every
# SAMPLE seconds.
sampler() {
  local end=$((SECONDS + $1)) t0=$SECONDS i
  while [ $((SECONDS + SAMPLE)) -lt "$end" ] && sleep "$SAMPLE"; do
    for i in 0 1; do
      timeout 10 "$BIN" status --socket "$(sock "$i")" --json 2>/dev/null | jq -r --arg h "h$((i + 1))" --arg t $((SECONDS - t0)) \
        '.process | "RAW mode=\($h) t_s=\($t) rss_mib=\(.rss_bytes / 1048576 * 10 | round / 10) heap_mib=\(.heap_bytes / 1048576 * 10 | round / 10) goroutines=\(.goroutines) fds=\(.fds)"' || true
    done
  done
}

# quiet: wait until only the configured endpoints are attached on both hosts.
quiet() {
  local i n
  for i in 0 1; do
    for n in $(seq 100); do
      timeout 5 "$BIN" status --socket "$(sock "$i")" --json 2>/dev/null |
        jq -e '[.endpoints[] | select(.name | test("^x"))] | length == 0' >/dev/null && break
      [ "$n" -lt 100 ] || die "h$((i + 1)) still has churned endpoints"
      sleep 0.2
    done
  done
  sleep 2 # let closed flows and connections wind down
}

declare -A R

# figures PHASE: RESULT lines of each daemon's process figures.
figures() {
  local i st h
  for i in 0 1; do
    h=h$((i + 1))
    kill -0 "${DAEMONS[i]}" 2>/dev/null || die "vxwire on $h died"
    st=$(timeout 10 "$BIN" status --socket "$(sock "$i")" --json) || die "status of $h failed"
    R[$h,$1,rss]=$(jq '.process.rss_bytes / 1048576 * 10 | round / 10' <<<"$st")
    R[$h,$1,heap]=$(jq '.process.heap_bytes / 1048576 * 10 | round / 10' <<<"$st")
    R[$h,$1,gor]=$(jq '.process.goroutines' <<<"$st")
    R[$h,$1,fds]=$(jq '.process.fds' <<<"$st")
    R[$h,$1,rec]=$(jq '[.recovered // {} | .[]] | add // 0' <<<"$st")
    R[$h,$1,rot]=$(grep -c 'msg="preshared keys rotated"' "$WORK/daemon$((i + 1)).log" || true)
    echo "RESULT mode=${h}_$1 metric=rss_mib value=${R[$h,$1,rss]}"
    echo "RESULT mode=${h}_$1 metric=heap_mib value=${R[$h,$1,heap]}"
    echo "RESULT mode=${h}_$1 metric=goroutines value=${R[$h,$1,gor]}"
    echo "RESULT mode=${h}_$1 metric=fds value=${R[$h,$1,fds]}"
  done
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, veth, TAP)"
for t in ip iperf3 ping dig jq timeout od ss paste; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install iproute2 iperf3 iputils-ping dnsutils jq)"
done
[ "$DURATION" -ge 30 ] || die "DURATION must be at least 30 s"
if [ ! -x "$BIN" ]; then
  log "soak: building $BIN"
  timeout 600 go build -o "$BIN" ./cmd/vxwire
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vxsk.XXXXXX")
for n in "${CTRS[@]}" "${HOSTS[@]}"; do ip netns del "$n" 2>/dev/null || true; done # left by a killed run

setup
log "### warm-up: $WARMUP s (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
RELOADS_MAIN=$RELOADS SAMPLE_MAIN=$SAMPLE RELOADS=0 SAMPLE=0
phase "$WARMUP" 1000000
for c in plain secret pings lookups churn; do
  read -r ok fail <"$WORK/$c.count"
  [ "$fail" = 0 ] || die "warm-up: $fail of $((ok + fail)) $c failed"
done
quiet
figures start
RELOADS=$RELOADS_MAIN SAMPLE=$SAMPLE_MAIN
log "### soak: $DURATION s, RATE=$RATE, ROTATE=${ROTATE}s, RELOADS=$RELOADS (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
rm -f "$WORK"/*.count "$WORK"/*.figs
phase "$DURATION" 1
quiet
figures end
log "### done (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"

failed=0
checks=(plain secret pings lookups churn)
[ "$RELOADS" = 0 ] || checks+=(reloads)
for c in "${checks[@]}"; do
  read -r ok fail <"$WORK/$c.count" || { ok=0 fail=1; }
  case $c in plain | secret) what=broken_streams ;; churn) what=failed_attaches ;; *) what=failed_$c ;; esac
  echo "RESULT mode=soak metric=$what value=$fail of=$((ok + fail)) check=$c"
  failed=$((failed + fail))
done
for c in plain secret; do
  [ -s "$WORK/$c.figs" ] || continue
  read -r fwd rev stalls <"$WORK/$c.figs"
  echo "RESULT mode=$c metric=stream_mbps value=$fwd reverse_mbps=$rev stalled_s=$stalls"
done
for h in h1 h2; do
  rot=$((R[$h,end,rot] - R[$h,start,rot])) want=$((DURATION / ROTATE - 1))
  echo "RESULT mode=soak metric=key_rotations value=$rot host=$h want_at_least=$want"
  [ "$rot" -ge "$want" ] || { failed=$((failed + 1)) && log "soak: $h rotated its keys $rot times, want $want"; }
  echo "RESULT mode=soak metric=recovered_panics value=${R[$h,end,rec]} host=$h"
  failed=$((failed + R[$h,end,rec]))
done

echo
printf '%-10s %10s %10s %10s %10s %10s %10s\n' metric h1_start h1_end h1_change h2_start h2_end h2_change
for m in rss heap gor fds; do
  row=()
  for h in h1 h2; do
    row+=("${R[$h,start,$m]}" "${R[$h,end,$m]}" "$(awk -v a="${R[$h,start,$m]}" -v b="${R[$h,end,$m]}" \
      'BEGIN {if (a > 0) printf "%+.1f%%", 100 * (b - a) / a; else print "n/a"}')")
  done
  printf '%-10s %10s %10s %10s %10s %10s %10s\n' "$m" "${row[@]}"
done
echo "(rss, heap: MiB, heap is live after the last GC; gor: goroutines; fds: open file descriptors;"
echo " start after a ${WARMUP} s warm-up, end after ${DURATION} s of the mix, both with the hosts quiet)"
[ "$failed" = 0 ] || die "$failed failures"
