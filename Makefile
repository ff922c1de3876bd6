# podkit — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/podkit-dev/podkit/internal/cli/version.Version=$(VERSION) -X main.version=$(VERSION)
TEST_FLAGS ?= -race -timeout 30m
FUZZTIME  ?= 10s
PODKIT_CACHE ?= $(HOME)/.cache/podkit
export PODKIT_CACHE

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build the pinned control plane (etcd, kube-*, kubectl, kwok, controller-gen) into $(PODKIT_CACHE)
	@bash hack/tools.sh

.PHONY: build
build: ## Build podkit and podkit-entrypoint into ./bin
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: run
run: tools build ## Start the local cluster and show podkit working on it
	@bash hack/run.sh

.PHONY: test
test: tools ## Run every test, integration tests on a real control plane included
	@# The real-node end-to-end tests are the longest package: start them first.
	$(GO) test $(TEST_FLAGS) ./test/e2e/realnode/... $$($(GO) list ./... | grep -v '/test/e2e/realnode')

.PHONY: generate
generate: ## Regenerate deepcopy code, CRDs and RBAC from the API types
	@if [ -x hack/generate.sh ] || [ -f hack/generate.sh ]; then bash hack/generate.sh; else echo "nothing to generate"; fi

.PHONY: verify
verify: ## Check formatting, vet, and that generated files are fresh
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# make release builds podkit for darwin and both for linux/arm64: they must compile there too.
	GOOS=darwin GOARCH=arm64 $(GO) vet ./cmd/podkit
	GOOS=linux GOARCH=arm64 $(GO) vet ./cmd/...
	@if [ -f hack/generate.sh ]; then \
		bash hack/generate.sh && \
		if [ -n "$$(git status --porcelain -- api config charts docs/api.md internal/toolbuild/pins)" ]; then \
			echo "generated files are stale; run make generate and commit:"; git status --porcelain -- api config charts docs/api.md internal/toolbuild/pins; exit 1; \
		fi; \
	fi

.PHONY: image
image: build ## Build OCI images of podkit and podkit-entrypoint into _output/image (no Docker needed)
	@export SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0); \
	$(GO) run ./hack/image --binary $(BIN)/podkit --out _output/image/podkit --archive _output/image/podkit.tar --tag $(VERSION) --version $(VERSION) && \
	$(GO) run ./hack/image --binary $(BIN)/podkit-entrypoint --out _output/image/podkit-entrypoint --archive _output/image/podkit-entrypoint.tar --tag $(VERSION) --version $(VERSION)

.PHONY: release
release: tools ## Build a release into _output/release/$(VERSION): binaries, multi-arch images, install.yaml, Helm chart, SHA256SUMS
	@VERSION=$(VERSION) bash hack/release.sh

.PHONY: bench
bench: tools ## Run the benchmarks, each beside its baseline, and print the ratios
	@bash hack/bench.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 10s) each
	@bash hack/fuzz.sh $(FUZZTIME)

.PHONY: clean
clean: ## Remove build outputs (the control-plane cache stays)
	rm -rf $(BIN)
