# vxwire build, test, demo and benchmark entry points. See README.md.

GO        ?= go
BIN       := bin/vxwire
STATICCHECK_VERSION := v0.8.2
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
FUZZTIME  ?= 30s
PKGS      := ./...

.PHONY: all build test unit e2e lint fmt-check vet staticcheck tidy-check demo bench fuzz deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vxwire

deps:
	bash scripts/deps.sh

# test runs static checks, unit tests and the end-to-end suite (which needs
# root and skips with a message otherwise).
test: deps lint
	$(GO) test -count=1 -timeout 25m $(PKGS)

unit:
	$(GO) test -count=1 -short $(PKGS)

lint: fmt-check vet staticcheck tidy-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# tidy-check fails when go mod tidy would change go.mod or go.sum, so a
# dependency's direct or indirect mark never drifts.
tidy-check:
	$(GO) mod tidy -diff

staticcheck:
	@test -x $(GOBIN_DIR)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN_DIR)/staticcheck $(PKGS)

demo: deps build
	bash examples/demo.sh

# bench prints Go micro-benchmarks (ns/frame, allocs), the two-host
# comparison with kernel VXLAN measured in the same run, and published
# ports and VIPs next to nftables DNAT and socat (publish.sh).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./encap/... ./tunnel/...
	bash tests/bench/bench.sh
	bash tests/bench/publish.sh

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
