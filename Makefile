# makercast: `make run` to see it work, `make test` to check it.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/makercast-agent

.PHONY: all deps build run test bench fuzz vet clean hwlab hwlab-locked

all: build

deps:
	@scripts/deps.sh

build: deps
	@command -v $(GO) >/dev/null || { echo "Go 1.24+ is needed: https://go.dev/doc/install"; exit 1; }
	$(GO) build -o $(BIN) ./cmd/makercast-agent

# Local Mosquitto + nginx-rtmp + the agent with a test camera; Ctrl-C stops all.
run: build
	@scripts/run-local.sh

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

bench: build
	$(GO) run ./cmd/makercast-bench

fuzz: deps
	$(GO) test ./agent -run '^$$' -fuzz FuzzParseCommand -fuzztime 30s

clean:
	rm -rf bin

# Hardware lab (tests/hwlab/README.md): the agent's real V4L2/ALSA paths in a
# stock Debian kernel under QEMU (TCG) with emulated cameras and microphones.
# The cache (kernel, v4l2loopback, initramfs, test binaries, results) lives
# outside the repo so fresh clones reuse it; one run at a time holds it.
# One scenario: make hwlab HWLAB_RUN=TestGuestRawLive
HWLAB_CACHE ?= /var/cache/makercast-hwlab
# Guest test packages: these two and every other package with hwlab-tagged tests.
HWLAB_GUEST_PKGS ?= $(sort ./tests/hwlab ./internal/v4l2 $(patsubst %/,%,$(dir $(shell \
  grep -rlsE --include='*_test.go' '^//go:build.*\bhwlab\b' . 2>/dev/null))))
HWLAB_RUN ?=
# One VM at a time with 2 vCPUs: on 2 cores as fast as two 1-vCPU VMs at once
# (136 s vs 121 s), less CPU, and the agent is not starved, so the timings the
# guests report mean something (README).
HWLAB_PARALLEL ?= 1
HWLAB_SMP ?= 2
HWLAB_TEST_TIMEOUT ?= 8m
export HWLAB_CACHE HWLAB_GUEST_PKGS HWLAB_RUN HWLAB_PARALLEL HWLAB_SMP HWLAB_TEST_TIMEOUT

hwlab: build
	@scripts/deps.sh hwlab
	@mkdir -p $(HWLAB_CACHE)/lab
	@flock -n $(HWLAB_CACHE)/lock true || echo "hwlab: another make hwlab holds $(HWLAB_CACHE)/lock; waiting for it"
	@flock $(HWLAB_CACHE)/lock $(MAKE) --no-print-directory hwlab-locked

hwlab-locked:
	tests/hwlab/fetch-kernel.sh $(HWLAB_CACHE)
	tests/hwlab/build-v4l2loopback.sh $(HWLAB_CACHE)
	tests/hwlab/mkinitrd.sh $(HWLAB_CACHE)
	@# a guest test binary for each package with hwlab-tagged tests
	@for p in $(HWLAB_GUEST_PKGS); do \
	  bin=$(HWLAB_CACHE)/lab/$$(basename $$p).test; \
	  if grep -qs '^//go:build.*hwlab' $$p/*_test.go; then \
	    echo "$(GO) test -c -tags hwlab -o $$bin $$p"; \
	    $(GO) test -c -tags hwlab -o $$bin $$p || exit 1; \
	  else echo "hwlab: $$p has no hwlab guest tests: skipped"; rm -f $$bin; fi; \
	done
	$(GO) vet -tags hwlab ./tests/hwlab
	HWLAB_REQUIRED=1 $(GO) test -tags hwlab -count=1 -timeout 25m -v -run '^TestLab' ./tests/hwlab
