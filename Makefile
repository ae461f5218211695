# Zaqar-compatible replicated messaging service.
SHELL := /bin/bash
GO       ?= go
BIN      := bin
PKGS     := ./...
STATICCHECK_VERSION := 2025.1.1

.PHONY: all build run test test-unit test-system lint fmt vet clean

all: build

build:
	$(GO) build -o $(BIN)/zaqar-server ./cmd/zaqar-server
	$(GO) build -o $(BIN)/zaqarctl ./cmd/zaqarctl

## run: a local three-node cluster on 127.0.0.1 (REST 8888-8890, data in ./data); Ctrl-C stops it
run: build
	./$(BIN)/zaqar-server local-cluster -nodes 3 -data-dir ./data

## test: formatting and vet checks, unit and in-process cluster tests with -race, then the system tests
test: fmt vet test-unit test-system

test-unit:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /cluster-test)

test-system:
	$(GO) test -count=1 -timeout 20m -v ./cluster-test/ 2>&1 | tee cluster-test.out | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; exit $${PIPESTATUS[0]}

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint: fmt vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf $(BIN) data cluster-test.out
