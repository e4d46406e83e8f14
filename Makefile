# makercast: `make run` to see it work, `make test` to check it.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/makercast-agent

.PHONY: all deps build run test bench fuzz vet clean

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
