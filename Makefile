# fallom-collector: build, run and test the fallomcol distribution.
#   make build   -> bin/fallomcol (ocb generates, go builds with cgo off)
#   make run     -> build, create a first API key if there is none, run the default config
#   make test    -> every test (what CI runs), including the generated-sources drift check
#   make bench   -> benchmarks side by side; writes BENCHMARKS.md and bench/results/latest.json
#   make soak    -> the long reliability suite; writes RELIABILITY.md
#                   (FALLOM_SOAK_SPANS=n: size of the large-database case, default 1000000)

SHELL        := /bin/bash
GO           ?= go
OCB_VERSION  := v0.165.0
GOBIN        := $(shell $(GO) env GOPATH)/bin
OCB          := $(GOBIN)/builder
OCB_OUT      := .build/ocb
DIST_DIR     := cmd/fallomcol
# Files of cmd/fallomcol that ocb owns; main.go there is ours.
GENERATED    := components.go go.mod go.sum
BIN          := bin/fallomcol
KEYS_FILE    ?= $(or $(FALLOM_KEYS_FILE),./data/keys.yaml)
# `make run` prices with it when it exists (`fallomcol prices import` writes it).
PRICING_FILE ?= $(or $(FALLOM_PRICING_FILE),./data/prices.yaml)
TEST_TIMEOUT ?= 45m

export CGO_ENABLED := 0

.PHONY: all build generate check-generated run test test-unit bench soak clean ocb

all: build

# Installs the pinned ocb when it is missing or another version.
ocb:
	@if ! "$(OCB)" version 2>&1 | grep -q "$(OCB_VERSION)"; then \
		echo "installing ocb $(OCB_VERSION)"; \
		$(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION); \
	fi

# Runs ocb on builder-config.yaml into $(OCB_OUT) (sources only); the stamp
# marks a complete run, so a failed one is redone.
OCB_STAMP := $(OCB_OUT)/.complete
# ocb's go mod tidy follows the imports of our components, so their sources
# are inputs too.
COMPONENT_SRC := $(shell find config extension processor exporter receiver internal -name '*.go' -not -name '*_test.go' 2>/dev/null)
$(OCB_STAMP): builder-config.yaml go.mod go.sum $(COMPONENT_SRC) | ocb
	@rm -rf $(OCB_OUT) && mkdir -p .build
	@"$(OCB)" --config builder-config.yaml --skip-compilation >.build/ocb.log 2>&1 || { cat .build/ocb.log; exit 1; }
	@gofmt -w $(OCB_OUT)/components.go  # ocb's import block is not gofmt-clean
	@touch $@

# Regenerates the ocb-owned sources of cmd/fallomcol.
generate: $(OCB_STAMP)
	cp $(addprefix $(OCB_OUT)/,$(GENERATED)) $(DIST_DIR)/

# Fails when the committed ocb sources differ from what ocb generates now, or
# when our main.go lists other confmap providers than ocb's main.go would.
check-generated: $(OCB_STAMP)
	@status=0; for f in $(GENERATED); do \
		if ! diff -u $(DIST_DIR)/$$f $(OCB_OUT)/$$f; then \
			echo "$(DIST_DIR)/$$f drifted from builder-config.yaml: run 'make generate' and commit"; status=1; fi; \
	done; \
	if ! diff <(grep -o '[a-z]*provider v[0-9.]*' $(OCB_OUT)/main.go | sort) \
	          <(grep -o '[a-z]*provider v[0-9.]*' $(DIST_DIR)/main.go | sort); then \
		echo "$(DIST_DIR)/main.go lists other confmap providers than builder-config.yaml"; status=1; fi; \
	exit $$status

build: generate
	cd $(DIST_DIR) && $(GO) build -trimpath -o $(CURDIR)/$(BIN) .

# The console's address, for the note beside the first key (the default
# config's FALLOM_CONSOLE_ENDPOINT default).
CONSOLE_ENDPOINT ?= $(or $(FALLOM_CONSOLE_ENDPOINT),localhost:4320)
CONSOLE_URL      := http://$(patsubst 0.0.0.0:%,localhost:%,$(CONSOLE_ENDPOINT))/login

# The first key may send data (ingest) and open the console (read).
run: build
	@if [ ! -f "$(KEYS_FILE)" ]; then \
		echo "No keys file at $(KEYS_FILE): creating your first API key (scopes ingest,read)."; \
		echo "Send it as the header {\"Authorization\": \"Bearer <key>\"}; log in to the console at"; \
		echo "$(CONSOLE_URL) with the same key. It is shown only once:"; \
		$(BIN) keys create --keys-file "$(KEYS_FILE)" --project default --name first-key --scopes ingest,read; \
	fi
	@if [ -f "$(PRICING_FILE)" ]; then echo "Prices: $(PRICING_FILE) over the built-in table"; export FALLOM_PRICING_FILE="$(PRICING_FILE)"; fi; \
	$(BIN)

# check-generated first: `build` regenerates, which would hide drift.
test: check-generated build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# The components and their shared code once more under the race detector
	@# (key reloads under requests, exporter queues, storage pools; needs cgo).
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./extension/... ./processor/... ./exporter/... ./internal/...
	@if [ -f bench/ottl/go.mod ]; then cd bench/ottl && $(GO) vet ./... && $(GO) test -count=1 ./...; fi

bench: build
	$(GO) run ./bench/cmd/benchrun

soak: build
	FALLOM_SOAK=1 $(GO) test -count=1 -timeout 120m -run . ./test/reliability/

clean:
	rm -rf bin .build
