#!/usr/bin/env bash
# deps.sh - install what building, testing and the demo need, if missing.
# Idempotent: does nothing when every tool is present. Needs root to install.
set -euo pipefail

# tool:package pairs; a tool found on PATH means its package is installed.
need=(
  ip:iproute2 ping:iputils-ping iperf3:iperf3 tshark:tshark ethtool:ethtool
  jq:jq nft:nftables dig:dnsutils kdig:knot-dnsutils dnsperf:dnsperf
  dnsmasq:dnsmasq-base wg:wireguard-tools wireguard-go:wireguard-go
  runc:runc crun:crun podman:podman conmon:conmon catatonit:catatonit
  newuidmap:uidmap nsenter:util-linux dockerd:docker.io
  socat:socat slirp4netns:slirp4netns pasta:passt curl:curl python3:python3
)
missing=()
for pair in "${need[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -x /usr/lib/cni/host-local ] || missing+=(containernetworking-plugins)
# The container tests copy busybox into a bare rootfs: it must be the static
# build, which Debian's plain busybox package is not.
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  missing+=(golang-go)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# cnitool drives the CNI plugin in the tests; it comes from the Go module
# proxy, not from Debian.
if ! command -v cnitool >/dev/null 2>&1; then
  echo "deps: installing cnitool"
  GOBIN=/usr/local/bin go install github.com/containernetworking/cni/cnitool@v1.3.1
fi
