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

# Cross-builds and .debs (packaging/README.md): cgo with Debian's cross compilers, outputs named by
# architecture: bin/makercast-agent-linux-{amd64,arm64,armv7} and bin/makercast_<version>_<arch>.deb.
# ARMv6 (Pi Zero W, Pi 1) cannot be built here: README, Install.
# fixed once per make run, so a binary's stamp and its .deb's name agree
ifndef VERSION
VERSION := $(shell packaging/version.sh)
endif
export VERSION
NFPM := bin/.tools/nfpm-v2.45.2
DEB_ARCHS ?= amd64 arm64 armhf
# the cgo binary each Debian architecture packages
deb_bin = bin/makercast-agent-linux-$(if $(filter armhf,$(1)),armv7,$(1))
PKGTEST_CACHE ?= /var/cache/makercast-pkgtest

.PHONY: build-amd64 build-arm64 build-armhf build-cross deb deb-amd64 deb-arm64 deb-armhf cross-test package-test

build-amd64 build-arm64:
	@scripts/cross.sh $(@:build-%=%)
# 32-bit Raspberry Pi OS (Debian armhf), ARMv7: Pi 2, 3, 4, Zero 2 W
build-armhf:
	@scripts/cross.sh armv7
build-cross: build-amd64 build-arm64 build-armhf

$(NFPM):
	GOBIN=$(CURDIR)/bin/.tools $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
	mv bin/.tools/nfpm $@

deb: $(addprefix deb-,$(DEB_ARCHS))
deb-amd64 deb-arm64 deb-armhf: deb-%: build-% $(NFPM)
	@rm -f bin/makercast_*_$*.deb
	DEB_ARCH=$* BINARY=$(call deb_bin,$*) $(NFPM) pkg --packager deb --config packaging/nfpm.yaml \
	  --target bin/makercast_$(VERSION)_$*.deb

# The arm64 agent under qemu-user against a real broker and nginx-rtmp; the armv7 one loads on a
# Cortex-A7 and dies on an ARM1176 (tests/package).
cross-test: build-arm64 build-armhf
	@scripts/deps.sh cross-run
	$(GO) vet -tags cross ./tests/package
	CROSS_ARMHF_SYSROOT=$$(scripts/cross.sh sysroot) $(GO) test -tags cross -count=1 -timeout 10m -v -run '^TestCross' ./tests/package

# The amd64 .deb installed and run as a systemd service: the hardware lab's kernel boots with
# systemd as PID 1 (tests/package/README.md). Holds the lab's lock only to take its kernel.
package-test: deb-amd64
	@scripts/deps.sh package
	@mkdir -p $(HWLAB_CACHE) $(PKGTEST_CACHE)/lab
	@flock $(HWLAB_CACHE)/lock sh -c 'tests/hwlab/fetch-kernel.sh $(HWLAB_CACHE) && \
	  tests/hwlab/mkinitrd.sh $(HWLAB_CACHE) && tests/package/take-kernel.sh $(HWLAB_CACHE) $(PKGTEST_CACHE)'
	$(GO) vet -tags pkgtest ./tests/package
	$(GO) test -c -tags pkgtest -o $(PKGTEST_CACHE)/lab/package.test ./tests/package
	PKGTEST_CACHE=$(PKGTEST_CACHE) PKGTEST_DEB=$(CURDIR)/bin/makercast_$(VERSION)_amd64.deb PKGTEST_REQUIRED=1 \
	  $(GO) test -tags pkgtest -count=1 -timeout 15m -v -run '^TestPackage' ./tests/package
