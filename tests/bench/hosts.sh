#!/usr/bin/env bash
# hosts.sh - H hosts (default 32), one vxwire daemon each, on one machine.
#
#   vxh-u      underlay namespace: bridge br0, one port per host
#   vxh-hI     host I's namespace: ul0 198.18.1.I/24, the daemon, which
#              lists the H-1 others as [[peer]]s (gossip seeds and Raft
#              voters, with the defaults a user gets)
#   vxh-cI     host I's container c$I (10.98.I.10, from the config file)
#   vxh-nK     the K-th new endpoint, attached through the API
#
# Measures, with every host on the one network "hosts" (10.98.0.0/16):
#   - start-up: from starting every daemon at once until each lists the
#     H containers of the cluster;
#   - convergence: REPS times, a new endpoint is attached on one host while
#     every other daemon's API is polled every EVERY; the time from the
#     attach's answer (the attach itself, which commits the name in the
#     Raft log, is reported apart) until each lists the name, found up to
#     EVERY late (median, p90 and max over all REPS x (H-1) samples, and
#     the median of each attach's slowest host), checked by DNS from
#     containers on two other hosts (up to 3 tries of 1 s each; tries
#     that time out are counted);
#   - PINGS random cross-host container pairs, which must all answer
#     (echoes lost and the slowest round trip of each pair reported);
#   - per daemon: RSS, CPU while idle, and the bytes per second it sends
#     on the gossip port (UDP and TCP 7946) and the Raft port (TCP 7948)
#     while idle (IDLE seconds), gossip also while the new endpoints come;
#     counted by nftables in its namespace (the daemon exports no such
#     counter).
# Prints RESULT lines; exits 1 when a ping or DNS check fails. Cleans up
# on exit, even on failure; stops the daemons by their pids.
# Env: H (hosts, 2..250), REPS (new endpoints, default 5), PINGS (default
# 32), EVERY (poll interval, default 50ms), IDLE (seconds, default 16),
# UP (start-up deadline in seconds, default 300), SEED (pair choice),
# LOGS (a directory to keep the daemons' logs in).
set -euo pipefail
cd "$(dirname "$0")/../.."
NAME=hosts.sh
. tests/bench/lib.sh
H=${H:-32} REPS=${REPS:-5} PINGS=${PINGS:-32} EVERY=${EVERY:-50ms} IDLE=${IDLE:-16} UP=${UP:-300}
SEED=${SEED:-$$}
BIN=${BIN:-bin/vxwire}
[ "$(id -u)" = 0 ] || die "needs root"
[ "$H" -ge 2 ] && [ "$H" -le 250 ] || die "H=$H: want 2..250"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/vxwire
WORK=$(mktemp -d) MADE=() PIDS=()
go build -o "$WORK/hostswatch" ./tests/bench/hostswatch
W=$WORK/hostswatch

# mkns NAME: create a namespace and remember it for cleanup.
mkns() { ip netns add "$1"; MADE+=("$1"); ip -n "$1" link set lo up; }
# stopall: SIGTERM every daemon at once, wait up to 10 s, then SIGKILL.
stopall() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 100); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1 && break; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stopall
  [ -z "${LOGS:-}" ] || { mkdir -p "$LOGS"; cp "$WORK"/h*.log "$LOGS"/ 2>/dev/null || true; }
  for ns in "${MADE[@]}"; do ip netns delete "$ns" 2>/dev/null || true; rm -rf "/etc/netns/$ns"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# fail MSG: show the end of the first daemons' logs, then die.
fail() {
  local i
  for i in 1 2; do [ -f "$WORK/h$i.log" ] && { log "--- h$i.log"; tail -n 15 "$WORK/h$i.log" >&2; }; done
  die "$*"
}

mkns vxh-u
ip -n vxh-u link add br0 type bridge
ip -n vxh-u link set br0 up
(umask 077; head -c 32 /dev/urandom | base64 >"$WORK/secret")
for i in $(seq "$H"); do
  mkns "vxh-h$i"; mkns "vxh-c$i"
  ip link add ul0 netns "vxh-h$i" type veth peer name "p$i" netns vxh-u
  ip -n vxh-u link set "p$i" master br0 up
  ip -n "vxh-h$i" addr add "198.18.1.$i/24" dev ul0
  ip -n "vxh-h$i" link set ul0 up
  # Bytes this host sends to the gossip and Raft ports of others, and
  # answers from those ports (TCP push/pull and Raft replies).
  ip netns exec "vxh-h$i" nft -f - <<EOT
table inet vxh {
  counter gossip {}
  counter raft {}
  chain out {
    type filter hook output priority 0;
    meta l4proto { tcp, udp } th dport 7946 counter name gossip
    meta l4proto { tcp, udp } th sport 7946 counter name gossip
    tcp dport 7948 counter name raft
    tcp sport 7948 counter name raft
  }
}
EOT
  {
    cat <<EOT
[host]
name = "h$i"
address = "198.18.1.$i"
state_dir = "$WORK/state$i"
api_socket = "$WORK/h$i.sock"
secret_file = "$WORK/secret"
[[network]]
name = "hosts"
vni = 4100
subnet = "10.98.0.0/16"
[[endpoint]]
network = "hosts"
name = "c$i"
netns = "/var/run/netns/vxh-c$i"
address = "10.98.$i.10"
EOT
    for j in $(seq "$H"); do
      [ "$j" = "$i" ] || printf '[[peer]]\nname = "h%d"\naddress = "198.18.1.%d"\n' "$j" "$j"
    done
  } >"$WORK/h$i.toml"
done
SOCKS=()
for i in $(seq "$H"); do SOCKS+=("$WORK/h$i.sock"); done

now() { date +%s%N; }
t0=$(now)
for i in $(seq "$H"); do
  ip netns exec "vxh-h$i" "$BIN" up -c "$WORK/h$i.toml" 2>"$WORK/h$i.log" &
  PIDS+=($!)
done
"$W" wait -timeout "${UP}s" -want "$H" "${SOCKS[@]}" >/dev/null || fail "the $H hosts did not all see each other's containers within ${UP} s"
echo "RESULT metric=hosts_all_up_s hosts=$H value=$(awk -v d=$(( $(now) - t0 )) 'BEGIN {printf "%.1f", d / 1e9}')"

# sent: one line per host, "GOSSIP_BYTES RAFT_BYTES" sent so far.
sent() {
  local i
  for i in $(seq "$H"); do
    ip netns exec "vxh-h$i" nft list counters table inet vxh |
      awk '/counter gossip/ {c = "g"} /counter raft/ {c = "r"} /bytes/ {for (k = 1; k < NF; k++) if ($k == "bytes") b[c] = $(k + 1)}
        END {print b["g"] + 0, b["r"] + 0}'
  done
}
# rates FILE_A FILE_B SECONDS COLUMN: each host's bytes/s in COLUMN between two sent snapshots.
rates() { paste -d ' ' "$1" "$2" | awk -v s="$3" -v c="$4" '{printf "%.0f\n", ($(c + 2) - $c) / s}'; }
pmax() { sort -g | tail -n 1; }
pct() { sort -g | awk -v p="$1" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}'; }

# cpu: one line per daemon, the CPU ticks it has used so far.
cpu() { local pid; for pid in "${PIDS[@]}"; do ticks "$pid"; done; }
sent >"$WORK/idle0"; cpu >"$WORK/cpu0"; ti=$(now)
sleep "$IDLE"
sent >"$WORK/idle1"; cpu >"$WORK/cpu1"; secs=$(awk -v d=$(( $(now) - ti )) 'BEGIN {print d / 1e9}')
# CPU % of one core per daemon while idle (ticks are 1/CLK_TCK s).
paste -d ' ' "$WORK/cpu0" "$WORK/cpu1" | awk -v s="$secs" -v hz="$(getconf CLK_TCK)" '{printf "%.1f\n", ($2 - $1) * 100 / hz / s}' >"$WORK/cpu"
echo "RESULT metric=cpu_idle_pct_per_daemon hosts=$H median=$(median <"$WORK/cpu") max=$(sort -g "$WORK/cpu" | tail -n 1)"
echo "RESULT metric=gossip_idle_bytes_per_s_per_host hosts=$H median=$(rates "$WORK/idle0" "$WORK/idle1" "$secs" 1 | median) max=$(rates "$WORK/idle0" "$WORK/idle1" "$secs" 1 | pmax)"
echo "RESULT metric=raft_idle_bytes_per_s_per_host hosts=$H median=$(rates "$WORK/idle0" "$WORK/idle1" "$secs" 2 | median) max=$(rates "$WORK/idle0" "$WORK/idle1" "$secs" 2 | pmax)"

# drops I, dnsstat I: host I's drop counters, its DNS server's counters.
drops() { "$BIN" status --json --socket "$WORK/h$1.sock" 2>/dev/null | jq -c '.counters.drops // {}' || echo '?'; }
dnsstat() { "$BIN" status --json --socket "$WORK/h$1.sock" 2>/dev/null | jq -c '.networks[0].dns' || echo '?'; }

# New endpoints: REPS times on another host (spread over the cluster).
RANDOM=$SEED
log "$NAME: seed $SEED"
: >"$WORK/seen"; : >"$WORK/slowest"; : >"$WORK/attach"
dnsfail=0 dnslost=0 tr=$(now)
for k in $(seq "$REPS"); do
  a=$(( (k - 1) * H / REPS + 1 ))
  mkns "vxh-n$k"
  watch=()
  for i in $(seq "$H"); do [ "$i" = "$a" ] || watch+=("$WORK/h$i.sock"); done
  "$W" attach -timeout 30s -every "$EVERY" -network hosts -name "n$k" -netns "/var/run/netns/vxh-n$k" \
    "$WORK/h$a.sock" "${watch[@]}" >"$WORK/rep$k.out" || fail "n$k on h$a did not reach every host within 30 s"
  read -r _ ams addr < <(grep '^attach_ms' "$WORK/rep$k.out")
  echo "$ams" >>"$WORK/attach"
  awk '/^seen_ms/ {print $3}' "$WORK/rep$k.out" | tee -a "$WORK/seen" | pmax >>"$WORK/slowest"
  log "$NAME: n$k on h$a ($addr): attach $ams ms, slowest host $(tail -n 1 "$WORK/slowest") ms"
  # The name resolves on two other hosts.
  for b in $(( a % H + 1 )) $(( (a + H / 2 - 1) % H + 1 )); do
    out=$(ip netns exec "vxh-c$b" dig +short +time=1 +tries=3 @10.98.0.1 "n$k" 2>/dev/null || true)
    # dig +short reports each try that timed out on a line of its own.
    lost=$(grep -c '^;;' <<<"$out" || true)
    dnslost=$((dnslost + lost))
    got=$(grep -v '^;;' <<<"$out" || true)
    [ "$lost" = 0 ] || log "$NAME: n$k on h$b: $lost DNS tries of 1 s timed out"
    [ "$got" = "$addr" ] || {
      log "$NAME: n$k resolved on h$b to '$got', want $addr; h$b's DNS counters $(dnsstat "$b")"
      dnsfail=$((dnsfail + 1))
    }
  done
done
sent >"$WORK/reps1"; secs=$(awk -v d=$(( $(now) - tr )) 'BEGIN {print d / 1e9}')
echo "RESULT metric=new_endpoint_attach_ms hosts=$H reps=$REPS median=$(median <"$WORK/attach") max=$(pmax <"$WORK/attach")"
echo "RESULT metric=gossip_converge_ms hosts=$H reps=$REPS samples=$(wc -l <"$WORK/seen") median=$(median <"$WORK/seen") p90=$(pct 90 <"$WORK/seen") max=$(pmax <"$WORK/seen") poll=$EVERY"
echo "RESULT metric=gossip_converge_slowest_host_ms hosts=$H reps=$REPS value=$(median <"$WORK/slowest") max=$(pmax <"$WORK/slowest")"
echo "RESULT metric=new_endpoints_everywhere_within_2s hosts=$H reps=$REPS value=$(awk '$1 <= 2000 {n++} END {print n + 0}' "$WORK/slowest")"
echo "RESULT metric=dns_checks_failed hosts=$H checks=$((2 * REPS)) value=$dnsfail"
echo "RESULT metric=dns_tries_timed_out hosts=$H checks=$((2 * REPS)) value=$dnslost"
echo "RESULT metric=gossip_churn_bytes_per_s_per_host hosts=$H median=$(rates "$WORK/idle1" "$WORK/reps1" "$secs" 1 | median) max=$(rates "$WORK/idle1" "$WORK/reps1" "$secs" 1 | pmax)"

# Cross-host pings between random container pairs.
# Each pair sends 5 echoes 0.2 s apart and waits up to 10 s in all; a
# pair fails when none is answered.
pingfail=0 pinglost=0
: >"$WORK/rtt"
for _ in $(seq "$PINGS"); do
  a=$(( RANDOM % H + 1 )) b=$(( RANDOM % (H - 1) + 1 ))
  [ "$b" -lt "$a" ] || b=$((b + 1))
  out=$(ip netns exec "vxh-c$a" ping -c 5 -i 0.2 -w 10 -q "10.98.$b.10" 2>&1 || true)
  rx=$(awk '/received/ {print $4 + 0}' <<<"$out")
  pinglost=$((pinglost + 5 - ${rx:-0}))
  awk -F / '/^rtt/ {print $6}' <<<"$out" >>"$WORK/rtt"
  [ "${rx:-0}" -gt 0 ] ||
    { log "$NAME: c$a (h$a) -> c$b (h$b) did not answer; drops h$a $(drops "$a") h$b $(drops "$b")"; pingfail=$((pingfail + 1)); }
done
echo "RESULT metric=cross_host_pings_failed hosts=$H pairs=$PINGS value=$pingfail"
echo "RESULT metric=cross_host_echoes_lost hosts=$H echoes=$((5 * PINGS)) value=$pinglost"
echo "RESULT metric=cross_host_ping_max_ms hosts=$H pairs=$PINGS median=$(median <"$WORK/rtt") max=$(pmax <"$WORK/rtt")"

: >"$WORK/rss"
for pid in "${PIDS[@]}"; do awk '/VmRSS/ {print $2}' "/proc/$pid/status" >>"$WORK/rss"; done
echo "RESULT metric=rss_kib_per_daemon hosts=$H endpoints=$((H + REPS)) median=$(median <"$WORK/rss") max=$(pmax <"$WORK/rss")"
[ "$pingfail" = 0 ] && [ "$dnsfail" = 0 ] || die "$pingfail pings and $dnsfail DNS checks failed"
