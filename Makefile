# vxwire build, test, demo and benchmark entry points. See README.md.

GO        ?= go
BIN       := bin/vxwire
STATICCHECK_VERSION := v0.8.2
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
FUZZTIME  ?= 30s
# CI_FUZZTIME is each fuzz target's budget inside `make test`.
CI_FUZZTIME ?= 5s
PKGS      := ./...

.PHONY: all build test unit race e2e lint fmt-check vet staticcheck tidy-check cross demo bench bench-rootless bench-hosts soak scale-sim fuzz deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vxwire

deps:
	bash scripts/deps.sh

# test runs static checks, the unit tests under the race detector, every
# fuzz target for CI_FUZZTIME, and the end-to-end suite in tests/ (which
# needs root and skips with a message otherwise; it runs without -race,
# which would slow the daemons it starts several times over).
test: deps lint cross race
	GO=$(GO) bash scripts/fuzz.sh $(CI_FUZZTIME)
	$(GO) test -count=1 -timeout 40m ./tests/

unit:
	$(GO) test -count=1 -short $(PKGS)

# race runs every package's tests but the end-to-end suite under -race,
# then, without it, those that cannot hold there: 100 gossip members, too
# slow under the detector to keep their timings, and the allocation
# counts of the hot paths (the detector's sync.Pool drops items). The
# checksum tests run once more with the purego tag, for the scalar sum
# that machines without AVX2 use.
race:
	$(GO) test -count=1 -race -timeout 20m $$($(GO) list $(PKGS) | grep -v '/tests$$')
	$(GO) test -count=1 -run '^TestConvergence100$$' ./internal/gossip/
	$(GO) test -count=1 -run 'Allocs' $$($(GO) list $(PKGS) | grep -v '/tests$$')
	$(GO) test -count=1 -tags purego ./internal/ipv4/

lint: fmt-check vet staticcheck tidy-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# CROSS_TARGETS are the laptop systems cmd/vxwire must build for.
CROSS_TARGETS := darwin/amd64 darwin/arm64 windows/amd64

# cross builds cmd/vxwire for CROSS_TARGETS and vets every package but the
# end-to-end suite (Linux namespaces and TAPs throughout) for darwin and
# windows, so a Linux-only call outside a _linux.go file fails here.
cross:
	@set -e; for t in $(CROSS_TARGETS); do \
	  echo "build $$t"; GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/vxwire; done
	@set -e; pkgs=$$($(GO) list $(PKGS) | grep -v '/tests$$'); for os in darwin windows; do \
	  echo "vet $$os"; GOOS=$$os $(GO) vet $$pkgs; done

# tidy-check fails when go mod tidy would change go.mod or go.sum, so a
# dependency's direct or indirect mark never drifts.
tidy-check:
	$(GO) mod tidy -diff

staticcheck:
	@test -x $(GOBIN_DIR)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN_DIR)/staticcheck $(PKGS)

demo: deps build
	bash examples/demo.sh

# bench prints Go micro-benchmarks (ns/frame, allocs: switch, TAP, UDP and
# the encrypted path's stages), the two-host comparison with kernel VXLAN
# and wireguard-go measured in the same run, the laptop doors
# (SOCKS5, forward) next to socat, and published ports and VIPs next to
# nftables DNAT and socat, and records all of it in bench-results/RUN.json
# with a chart, bench-results/RUN.svg.
bench: SHELL := /bin/bash
bench: deps build
	@mkdir -p bench-results
	set -o pipefail; { $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./encap/... ./tunnel/... ./resolver/... ./crypto/... && \
	  bash tests/bench/bench.sh && bash tests/bench/laptop.sh && bash tests/bench/publish.sh; } 2>&1 | tee bench-results/RUN.log
	$(GO) run ./tests/bench/report -log bench-results/RUN.log -out bench-results -vxwire bin/vxwire

# bench-rootless measures a laptop without root (tests/bench/rootless.sh):
# a rootless container through the user's daemon next to pasta and
# slirp4netns, SOCKS5 and [[forward]] next to socat, and the user's daemon's
# memory; recorded in bench-results/rootless/RUN.json and RUN.svg. Not part
# of `make test` or `make bench`. Env: T, REPS, BLOB (see the script).
bench-rootless: SHELL := /bin/bash
bench-rootless: deps build
	@mkdir -p bench-results/rootless
	set -o pipefail; bash tests/bench/rootless.sh 2>&1 | tee bench-results/rootless/RUN.log
	$(GO) run ./tests/bench/report -log bench-results/rootless/RUN.log -out bench-results/rootless -vxwire bin/vxwire

# bench-hosts runs H (default 32) hosts, one daemon each in its own
# network namespace (tests/bench/hosts.sh): start-up, how fast a new
# endpoint reaches every host by gossip, cross-host pings, and each
# daemon's RSS and gossip and Raft bytes; recorded in
# bench-results/hosts/RUN.json and RUN.svg. Needs root. Not part of
# `make test` or `make bench`. Env: H, REPS, PINGS, EVERY, IDLE (see the script).
bench-hosts: SHELL := /bin/bash
bench-hosts: deps build
	@mkdir -p bench-results/hosts
	set -o pipefail; timeout 20m bash tests/bench/hosts.sh 2>&1 | tee bench-results/hosts/RUN.log
	$(GO) run ./tests/bench/report -log bench-results/hosts/RUN.log -out bench-results/hosts -vxwire bin/vxwire

# soak runs tests/bench/soak.sh: two hosts, a plain and an encrypted
# network, 10 minutes of streams, pings, lookups, attach/detach churn,
# reloads and key rotation, with each daemon's RSS, heap, goroutines and
# fds at start and end; recorded in bench-results/soak/RUN.json. Fails when
# a stream broke or a check failed. Not part of `make test`. Env: DURATION
# (seconds, default 600) and the others the script lists.
soak: SHELL := /bin/bash
soak: deps build
	@mkdir -p bench-results/soak
	set -o pipefail; bash tests/bench/soak.sh 2>&1 | tee bench-results/soak/RUN.log
	$(GO) run ./tests/bench/report -log bench-results/soak/RUN.log -out bench-results/soak -vxwire bin/vxwire

# scale-sim runs the gossip simulation (TestGossipSim in internal/gossip)
# at each of SIM_MEMBERS members in one process over SIM_TRANSPORT (mem:
# in-memory; udp: loopback sockets), with every gossip timing stretched
# SIM_DILATION times where the CPU is short (figures are scaled back), and
# records its RESULT lines in bench-results/scale-sim.log (and RUN.json in
# bench-results/scale-sim); docs/scaling.md reads them. Not part of
# `make test`: 1000 members need an otherwise idle machine and SIM_DILATION=10
# on two cores (about 20 minutes).
SIM_MEMBERS   ?= 100,300,1000
SIM_TRANSPORT ?= mem
SIM_DILATION  ?= 1
scale-sim: SHELL := /bin/bash
scale-sim:
	@mkdir -p bench-results
	set -o pipefail; VXWIRE_GOSSIP_SIM=$(SIM_MEMBERS) VXWIRE_GOSSIP_SIM_TRANSPORT=$(SIM_TRANSPORT) \
	  VXWIRE_GOSSIP_SIM_DILATION=$(SIM_DILATION) \
	  $(GO) test -count=1 -timeout 40m -run '^TestGossipSim$$' -v ./internal/gossip/ 2>&1 | tee bench-results/scale-sim.log
	$(GO) run ./tests/bench/report -log bench-results/scale-sim.log -out bench-results/scale-sim -vxwire $(BIN)

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	GO=$(GO) bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
