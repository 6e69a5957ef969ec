#!/usr/bin/env bash
# rootless.sh - a laptop without root: throughput of a rootless container
# through the user's vxwire daemon next to user-mode networking (pasta,
# slirp4netns), of SOCKS5 and [[forward]] next to a socat relay, and the
# memory of the user's daemon; all in one run, on this topology:
#
#   vxrl-h1 (root vxwire "h1")                   vxrl-lap (user vxrlbench)
#   vxrl-u1 198.18.0.1/24 ====== veth ====== vxrl-u2 198.18.0.2/24
#   │ nft DNAT tcp 198.18.0.1:5201,8000             vxwire up as the user (rootless,
#   │   → 198.19.0.10 (vxrl-s1 198.19.0.1/24)        no capability): host endpoint
#   vxrl-c1: eth0 vxwire TAP 10.77.0.10/24           "lap", socks 127.0.0.1:1080,
#            eth1 veth 198.19.0.10/24                [[forward]] 127.0.0.1:8081 → c1:8000
#            iperf3 -s :5201, HTTP :8000         container: `unshare --user
#            (python3 http.server, a BLOB MiB      --map-root-user --net` run by the
#            file from /dev/shm)                   user, one per mode
#
# Network "bench" (VNI 256, 10.77.0.0/24, gateway 10.77.0.1) is plain, not
# encrypted, like the user-mode paths it is set against.
#
# 1. TCP, iperf3 -c DST -t T -J in the container (run by the user through
#    nsenter into the container's user and network namespaces), receiver
#    Gbit/s, REPS runs, median; a fresh container per mode:
#    vxwire_rootless  eth0 is a TAP of the user's daemon, attached the way a
#                     rootless runc container is: `vxwire oci-hook
#                     createRuntime` run as the user with the container's OCI
#                     state, which makes the TAP in the container's namespace
#                     through `vxwire tap-helper` (nsenter into the user
#                     namespace) and passes its descriptor to the daemon;
#                     DST = c1's overlay address 10.77.0.10
#    pasta            `pasta --config-net PID` run by the user in vxrl-lap
#                     (as rootless podman does); DST = 198.18.0.1, h1's
#                     underlay address, DNATed by h1's kernel to c1's eth1
#    slirp4netns      `slirp4netns --configure PID tap0` by the user; the
#                     same DST as pasta
#    Each RAW line also gives helper_cpu_pct, the % of one core used during
#    the run by the laptop's helper (the user's daemon, pasta, slirp4netns).
#    The server is the same process in the same container for all three;
#    the user-mode paths reach it through h1's kernel (DNAT, forwarding),
#    vxwire through h1's root daemon and c1's TAP. Ratios:
#    vxwire_rootless/pasta (the goal: >= 2) and vxwire_rootless/slirp4netns.
# 2. A BLOB MiB HTTP download (curl -o /dev/null) on the laptop, by the
#    user, from c1's HTTP server, REPS runs, median Gbit/s:
#    socks            curl --socks5-hostname 127.0.0.1:1080 http://c1.bench:8000/
#                     (the daemon resolves c1.bench and dials from its host
#                     endpoint over the overlay)
#    forward          curl http://127.0.0.1:8081/ ([[forward]] to c1:8000)
#    socat            curl http://127.0.0.1:8082/, where socat run by the
#                     user relays TCP-LISTEN:8082 to 198.18.0.1:8000 (h1
#                     DNATs it to c1): the same loopback-to-remote relay
#                     as [[forward]], by kernel TCP over the underlay
#                     instead of vxwire's userspace stack over the overlay
#    Ratios socks/socat and forward/socat.
# 3. VmRSS (and VmHWM) of the user's daemon from /proc/PID/status, in MiB:
#    idle once it has started and learned c1 (one host endpoint, nothing
#    else attached), after the downloads of 2, and after the TCP runs of 1.
#
# Output: RAW lines per run, RESULT lines per figure (tests/bench/report
# reads them), then a table.
#
# Run as root: bash tests/bench/rootless.sh (make bench-rootless builds
# bin/vxwire first). It makes the user vxrlbench (useradd, removed on exit),
# sets /dev/net/tun to mode 0666 while it runs (as most distributions ship
# it; restored on exit), and removes every namespace, process and file it
# made on exit, also on failure or interruption. Needs ip, nft, iperf3, jq,
# curl, python3, socat, pasta (passt), slirp4netns, setpriv, nsenter and
# unshare (util-linux), useradd (passwd), timeout.
# Env: T=10 (iperf3 seconds), REPS=3, BLOB=256 (MiB per download),
#      VXWIRE=bin/vxwire (binary; built with go build when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
T=${T:-10} REPS=${REPS:-3} BLOB=${BLOB:-256}
BIN=${VXWIRE:-$PWD/bin/vxwire}
H1=vxrl-h1 C1=vxrl-c1 LAP=vxrl-lap UNAME=vxrlbench
SERVER=10.77.0.10 UNDER_SRV=198.18.0.1 HZ=$(getconf CLK_TCK)
WORK="" PIDS=() USR=() TUNMODE="" MADEUSER="" UHOME="" URUN="" UID_="" GID_="" DPID="" D1PID="" CPID="" HPID="" DST=""

NAME="rootless"
. tests/bench/lib.sh

teardown() {
  [ ${#PIDS[@]} -eq 0 ] || stop "${PIDS[@]}"
  PIDS=()
  local n
  for n in "$C1" "$H1" "$LAP"; do ip netns del "$n" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  teardown
  [ -z "$TUNMODE" ] || chmod "$TUNMODE" /dev/net/tun
  [ -z "$MADEUSER" ] || userdel "$UNAME" 2>/dev/null || log "rootless: cannot remove user $UNAME"
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

# lap CMD...: CMD as the user in the laptop's namespace (${USR[@]}: as the
# user, no capability, no supplementary group, the user's own environment;
# set by setup_user). ip netns exec, setpriv and env exec each other, so
# `ip netns exec "$LAP" "${USR[@]}" CMD &` leaves $! = CMD's pid (not so with lap).
lap() { ip netns exec "$LAP" "${USR[@]}" "$@"; }

# ctr CMD...: CMD in the container, as the user: in its user namespace
# (where the user is root) and its network namespace.
ctr() { "${USR[@]}" nsenter --preserve-credentials --user --net --target "$CPID" "$@"; }

# ufile NAME: stdin into the user's file NAME in its home, mode 0600.
ufile() {
  (umask 077 && cat >"$UHOME/$1")
  chown "$UID_:$GID_" "$UHOME/$1"
}

# poll N WHAT CMD...: run CMD every 0.2 s until it succeeds, at most N times.
poll() {
  local n=$1 what=$2 i
  shift 2
  for i in $(seq "$n"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "$what: not after $((n / 5)) s"
}

setup_user() {
  id -u "$UNAME" >/dev/null 2>&1 && die "user $UNAME exists (left by a killed run? userdel $UNAME)"
  useradd --no-create-home --shell /usr/sbin/nologin --user-group "$UNAME"
  MADEUSER=1
  UID_=$(id -u "$UNAME") GID_=$(id -g "$UNAME")
  UHOME=$WORK/home URUN=$WORK/home/run
  USR=(setpriv --reuid "$UID_" --regid "$GID_" --clear-groups --inh-caps=-all
    env -i HOME="$UHOME" XDG_RUNTIME_DIR="$URUN" PATH=/usr/sbin:/usr/bin:/sbin:/bin)
  chmod 0711 "$WORK"
  mkdir -m 0700 "$UHOME" "$URUN"
  chown "$UID_:$GID_" "$UHOME" "$URUN"
  install -m 0755 "$BIN" "$WORK/vxwire"
  BIN=$WORK/vxwire
}

underlay() {
  local n
  for n in "$H1" "$C1" "$LAP"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
  done
  ip link add vxrl-u1 netns "$H1" type veth peer name vxrl-u2 netns "$LAP"
  ip -n "$H1" addr add "$UNDER_SRV/24" dev vxrl-u1
  ip -n "$LAP" addr add 198.18.0.2/24 dev vxrl-u2
  ip -n "$H1" link set vxrl-u1 up
  ip -n "$LAP" link set vxrl-u2 up
  # pasta copies the host's default route into the container.
  ip -n "$LAP" route add default via "$UNDER_SRV"
  # c1's second leg, for the paths that leave the laptop by the underlay.
  ip link add vxrl-s1 netns "$H1" type veth peer name eth1 netns "$C1"
  ip -n "$H1" addr add 198.19.0.1/24 dev vxrl-s1
  ip -n "$C1" addr add 198.19.0.10/24 dev eth1
  ip -n "$H1" link set vxrl-s1 up
  ip -n "$C1" link set eth1 up
  ip -n "$C1" route add 198.18.0.0/24 via 198.19.0.1
  ip netns exec "$H1" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$H1" nft -f - <<EOF
table ip vxrl {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "vxrl-u1" ip daddr $UNDER_SRV tcp dport { 5201, 8000 } dnat to 198.19.0.10
  }
}
EOF
}

# servers: iperf3 and the HTTP server in c1, the download in /dev/shm.
servers() {
  mkdir -p "$WORK/www"
  head -c $((BLOB << 20)) /dev/zero >"$WORK/www/blob"
  timeout 3600 ip netns exec "$C1" iperf3 -s >"$WORK/iperf3.log" 2>&1 &
  PIDS+=($!)
  timeout 3600 ip netns exec "$C1" python3 -m http.server 8000 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
  PIDS+=($!)
  poll 100 "iperf3 in c1" sh -c "ip netns exec $C1 ss -Hltn 'sport = :5201' | grep -q ."
  poll 100 "http server in c1" sh -c "ip netns exec $C1 ss -Hltn 'sport = :8000' | grep -q ."
}

# daemons: h1 as root with c1; the laptop as the user, with a host
# endpoint, SOCKS5 and one [[forward]].
daemons() {
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/cluster.secret")
  cat >"$WORK/h1.toml" <<EOF
[host]
name = "h1"
address = "$UNDER_SRV"
state_dir = "$WORK/h1-state"
api_socket = "$WORK/h1.sock"
secret_file = "$WORK/cluster.secret"

[[peer]]
name = "lap"
address = "198.18.0.2"

[[network]]
name = "bench"
vni = 256
subnet = "10.77.0.0/24"
gateway = "10.77.0.1"

[[endpoint]]
network = "bench"
name = "c1"
netns = "/var/run/netns/$C1"
address = "$SERVER"
EOF
  ufile cluster.secret <"$WORK/cluster.secret"
  ufile lap.toml <<EOF
[host]
name = "lap"
address = "198.18.0.2"
secret_file = "$UHOME/cluster.secret"
socks = "127.0.0.1:1080"

[[peer]]
name = "h1"
address = "$UNDER_SRV"

[[network]]
name = "bench"
vni = 256
subnet = "10.77.0.0/24"
gateway = "10.77.0.1"

[[endpoint]]
network = "bench"
name = "lap"

[[forward]]
network = "bench"
listen = "127.0.0.1:8081"
to = "c1:8000"
EOF
  ip netns exec "$H1" "$BIN" up -c "$WORK/h1.toml" 2>"$WORK/daemon-h1.log" &
  D1PID=$!
  PIDS+=($!)
  # The daemon's bounding set is empty too: no capability even by exec.
  ip netns exec "$LAP" setpriv --bounding-set=-all "${USR[@]:1}" "$BIN" up -c "$UHOME/lap.toml" 2>"$WORK/daemon-lap.log" &
  DPID=$!
  PIDS+=($!)
  local i
  for i in $(seq 150); do
    lap "$BIN" endpoint ls --all --json 2>/dev/null | jq -e 'any(.[]?; .name == "c1" and .host == "h1")' >/dev/null && break
    kill -0 "$DPID" 2>/dev/null || { cat "$WORK/daemon-lap.log" >&2; die "the laptop's daemon exited"; }
    kill -0 "$D1PID" 2>/dev/null || { cat "$WORK/daemon-h1.log" >&2; die "h1's daemon exited"; }
    [ "$i" -lt 150 ] || { tail -20 "$WORK/daemon-lap.log" >&2; die "the laptop does not list c1 after 30 s"; }
    sleep 0.2
  done
  lap "$BIN" status --json | jq -e .rootless >/dev/null || die "the laptop's daemon does not say rootless"
  grep -q '^CapEff:[[:space:]]*0000000000000000' "/proc/$DPID/status" || die "the laptop's daemon holds capabilities"
}

# rss WHEN: RESULT lines of the laptop daemon's VmRSS and VmHWM, in MiB.
rss() {
  local r h
  r=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$DPID/status")
  h=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$DPID/status")
  R[rss_$1]=$r
  echo "RESULT mode=vxwire_rootless metric=rss_${1}_mib value=$r vmhwm_mib=$h"
}

declare -A R

# download MODE CURLARGS...: the BLOB MiB download REPS times, as the user
# on the laptop; RAW per run, RESULT with the median Gbit/s.
download() {
  local mode=$1 rep out v vals=""
  shift
  for rep in $(seq "$REPS"); do
    out=$(timeout $((BLOB + 60)) ip netns exec "$LAP" "${USR[@]}" curl -sS --max-time $((BLOB + 30)) -o /dev/null \
      -w '%{size_download} %{speed_download}' "$@") || out="0 0"
    v=$(awk -v want=$((BLOB << 20)) '{if ($1 != want) print "nan"; else printf "%.3f", $2 * 8 / 1e9}' <<<"$out")
    log "RAW mode=$mode metric=http_gbps rep=$rep value=$v bytes=${out%% *}"
    vals+="$v"$'\n'
  done
  R[$mode,http]=$(median <<<"$vals")
  echo "RESULT mode=$mode metric=http_gbps value=${R[$mode,http]} mib=$BLOB"
}

relays() {
  poll 100 "socks5 listening" lap sh -c "ss -Hltn 'sport = :1080' | grep -q ."
  poll 100 "forward listening" lap sh -c "ss -Hltn 'sport = :8081' | grep -q ."
  ip netns exec "$LAP" "${USR[@]}" socat TCP-LISTEN:8082,bind=127.0.0.1,reuseaddr,fork "TCP:$UNDER_SRV:8000" 2>"$WORK/socat.log" &
  PIDS+=($!)
  poll 100 "socat listening" lap sh -c "ss -Hltn 'sport = :8082' | grep -q ."
  download socks --socks5-hostname 127.0.0.1:1080 http://c1.bench:8000/blob
  download forward http://127.0.0.1:8081/blob
  download socat http://127.0.0.1:8082/blob
}

# container: a rootless container's namespaces, made by the user (a user
# namespace mapping it to root, and a network namespace); sets CPID.
container() {
  ip netns exec "$LAP" "${USR[@]}" unshare --user --map-root-user --net sleep 3600 &
  CPID=$!
  PIDS+=($!)
  poll 50 "container namespaces" sh -c "[ \"\$(readlink /proc/$CPID/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ] &&
    [ \"\$(readlink /proc/$CPID/ns/user)\" != \"\$(readlink /proc/self/ns/user)\" ]"
}

# hook STAGE: `vxwire oci-hook STAGE` as the user (outside the container's
# user namespace, as rootless runc runs it) with the container's state.
hook() {
  local pid=$CPID
  [ "$1" != poststop ] || pid=0
  mkdir -p "$WORK/bundle/rootfs/etc"
  [ -f "$WORK/bundle/config.json" ] ||
    printf '{"ociVersion":"1.0.2","hostname":"rc1","root":{"path":"rootfs","readonly":true}}\n' >"$WORK/bundle/config.json"
  printf '{"ociVersion":"1.0.2","id":"vxrl-rc1","status":"created","pid":%d,"bundle":"%s","annotations":{"vxwire.network":"bench","vxwire.name":"rc1"}}' \
    "$pid" "$WORK/bundle" | lap "$BIN" oci-hook --socket "$URUN/vxwire/vxwire.sock" "$1"
}

up_vxwire_rootless() {
  HPID=""
  hook createRuntime 2>"$WORK/hook.log" || { cat "$WORK/hook.log" >&2; die "vxwire oci-hook createRuntime failed"; }
  DST=$SERVER
}

up_pasta() {
  ip netns exec "$LAP" "${USR[@]}" pasta -f -q --config-net --no-map-gw -t none -u none -T none -U none "$CPID" >"$WORK/pasta.log" 2>&1 &
  HPID=$!
  PIDS+=($!)
  DST=$UNDER_SRV
}

up_slirp4netns() {
  ip netns exec "$LAP" "${USR[@]}" slirp4netns --configure --mtu=65520 --disable-host-loopback "$CPID" tap0 >"$WORK/slirp4netns.log" 2>&1 &
  HPID=$!
  PIDS+=($!)
  DST=$UNDER_SRV
}

down_vxwire_rootless() { hook poststop 2>>"$WORK/hook.log" || log "rootless: poststop hook failed"; }

# tcp MODE: the container's TCP runs against c1's iperf3 through MODE, with
# the % of one core used meanwhile by the laptop's helper: the user's
# daemon, pasta or slirp4netns.
tcp() {
  local mode=$1 rep v vals="" n gw mtu hp t0 t1 s0 s1 cpu
  container
  "up_$mode"
  for n in $(seq 100); do
    timeout 5 "${USR[@]}" nsenter --preserve-credentials --user --net --target "$CPID" curl -sS -o /dev/null --max-time 3 "http://$DST:8000/" 2>"$WORK/probe.err" && break
    [ "$n" -lt 100 ] || { tail -n 20 "$WORK/$mode.log" "$WORK/hook.log" "$WORK/daemon-lap.log" >&2 2>/dev/null || true
      { cat "$WORK/probe.err"; ctr ip addr; ctr ip route; ctr ping -c 2 -W 1 "$DST"; } >&2 || true
      die "$mode: container cannot reach $DST:8000"; }
    sleep 0.2
  done
  gw=$(ctr ip -4 route show default | awk '{print $3; exit}')
  mtu=$(ctr ip -o link | awk '!/ lo:/ {for (i = 1; i < NF; i++) if ($i == "mtu") print $(i + 1); exit}')
  log "RAW mode=$mode metric=path gateway=${gw:-none} mtu=${mtu:-none}"
  hp=${HPID:-$DPID}
  for rep in $(seq "$REPS"); do
    t0=$(ticks "$hp") s0=$(date +%s.%N)
    v=$(timeout $((T + 30)) "${USR[@]}" nsenter --preserve-credentials --user --net --target "$CPID" iperf3 -c "$DST" -t "$T" -J --connect-timeout 3000 | tee "$WORK/iperf3-$mode-$rep.json" |
      jq -er '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000') || { v=nan; jq -r '.error? // empty' "$WORK/iperf3-$mode-$rep.json" >&2 || true; }
    t1=$(ticks "$hp") s1=$(date +%s.%N)
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$s0" -v e="$s1" 'BEGIN {printf "%.0f", 100 * d / hz / (e - s)}')
    log "RAW mode=$mode metric=tcp1_gbps rep=$rep value=$v dst=$DST helper_cpu_pct=$cpu"
    vals+="$v"$'\n'
  done
  R[$mode,tcp]=$(median <<<"$vals")
  echo "RESULT mode=$mode metric=tcp1_gbps value=${R[$mode,tcp]} dst=$DST"
  [ "$mode" != vxwire_rootless ] || down_vxwire_rootless
  [ -z "$HPID" ] || stop "$HPID"
  stop "$CPID"
}

[ "$(id -u)" = 0 ] || die "run as root (namespaces, useradd, /dev/net/tun)"
for t in ip nft iperf3 jq curl python3 socat pasta slirp4netns setpriv nsenter unshare useradd userdel timeout od getconf; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install iproute2 nftables iperf3 jq curl python3 socat passt slirp4netns util-linux passwd)"
done
if [ ! -x "$BIN" ]; then
  log "rootless: building $BIN"
  timeout 600 go build -o "$BIN" ./cmd/vxwire
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
teardown # namespaces left over from an interrupted run
WORK=$(mktemp -d /dev/shm/vxrl.XXXXXX)
TUNMODE=$(stat -c %a /dev/net/tun)
chmod 0666 /dev/net/tun
setup_user
log "### rootless: T=$T s, REPS=$REPS, BLOB=$BLOB MiB (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
log "RAW metric=versions passt=$(dpkg-query -W -f '${Version}' passt 2>/dev/null || echo unknown)" \
  "slirp4netns=$(slirp4netns --version | awk 'NR == 1 {print $3}')" \
  "tcp_cc=$(cat /proc/sys/net/ipv4/tcp_congestion_control)"
underlay
servers
daemons
rss idle
relays
rss after_download
for mode in vxwire_rootless pasta slirp4netns; do tcp "$mode"; done
rss after_tcp

for m in pasta slirp4netns; do
  R[vs_$m]=$(ratio "${R[vxwire_rootless,tcp]}" "${R[$m,tcp]}")
  echo "RESULT mode=vxwire_rootless metric=tcp1_vs_$m value=${R[vs_$m]}"
done
for m in socks forward; do
  R[$m,vs]=$(ratio "${R[$m,http]}" "${R[socat,http]}")
  echo "RESULT mode=$m metric=http_vs_socat value=${R[$m,vs]}"
done
echo
printf '%-18s %12s %14s\n' mode tcp1_gbps vxwire/mode
printf '%-18s %12s %14s\n' vxwire_rootless "${R[vxwire_rootless,tcp]}" -
for m in pasta slirp4netns; do printf '%-18s %12s %14s\n' "$m" "${R[$m,tcp]}" "${R[vs_$m]}"; done
echo "(goal: vxwire_rootless/pasta >= 2)"
printf '%-18s %12s %14s\n' mode http_gbps mode/socat
for m in socks forward; do printf '%-18s %12s %14s\n' "$m" "${R[$m,http]}" "${R[$m,vs]}"; done
printf '%-18s %12s %14s\n' socat "${R[socat,http]}" -
printf 'rootless daemon VmRSS MiB: idle %s, after downloads %s, after TCP %s\n' "${R[rss_idle]}" \
  "${R[rss_after_download]}" "${R[rss_after_tcp]}"
