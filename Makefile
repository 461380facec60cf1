# edgetrack — see README.md. Everything here needs only Go, except `make wasm`
# (TinyGo, installed by `make tools`) and `make proto` (protoc, likewise).
SHELL := /bin/bash
GO ?= go
BIN := bin/edgetrack
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/edgetrack/edgetrack/internal/version.Version=$(VERSION)
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/edgetrack/tools
TINYGO ?= $(TOOLS_DIR)/bin/tinygo
TINYGO_FLAGS := -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -opt=2
RULES := hamustro eye cookiesync
TEST_RULES := misbehave hamustroguest eyealt cookiesyncalt
PROTOS := proto/hamustropb/hamustro.proto proto/eventpb/event.proto proto/rulepb/rule.proto
GOTEST_FLAGS ?= -count=1 -timeout 20m

# Packages whose tests exercise concurrency: `make race` runs them under the
# race detector.
RACE_PKGS := ./edge/internal/spool ./edge ./client ./wasm/host ./wasm/native ./internal/tlsconf ./syncer
# Fuzz targets run for FUZZTIME each by `make fuzz`, from their committed
# seed corpora; a crasher is written to the package's testdata/fuzz, where
# it stays as a fixture once committed.
FUZZ_TARGETS := ./wasm/instrument:FuzzInstrument ./wasm/host:FuzzLoad \
  ./aggregator/internal/ingest:FuzzHamustroEventsReachTheStore ./aggregator/internal/ingest:FuzzEyeEventsReachTheStore
FUZZTIME ?= 60s

.PHONY: all build run test race fuzz check proto wasm tools bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgetrack

run: build
	./$(BIN) dev --data-dir data/dev

test:
	$(GO) test $(GOTEST_FLAGS) ./...

race:
	$(GO) test -race $(GOTEST_FLAGS) $(RACE_PKGS)

fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

check: wasm-check proto-check
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

tools:
	@./scripts/install-tinygo.sh >/dev/null
	@command -v protoc >/dev/null || { sudo=; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq protobuf-compiler; }

proto:
	protoc -I proto --go_out=proto --go_opt=paths=source_relative \
	  --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) $(PROTOS)
	protoc --encode=hamustro.Collection -I proto proto/hamustropb/hamustro.proto \
	  < docs/examples/collection.txtpb > docs/examples/collection.bin

wasm:
	@test -x $(TINYGO) || { echo "TinyGo is missing: run 'make tools'"; exit 1; }
	@for r in $(RULES); do echo "tinygo $$r"; \
	  $(TINYGO) build $(TINYGO_FLAGS) -o wasm/dist/$$r.wasm ./wasm/cmd/$$r 2>&1 | grep -v 'is not a recognized feature' || true; \
	  test -s wasm/dist/$$r.wasm || exit 1; done
	@for r in $(TEST_RULES); do echo "tinygo $$r (test)"; \
	  $(TINYGO) build $(TINYGO_FLAGS) -o wasm/host/testdata/$$r.wasm ./wasm/internal/testrules/$$r 2>&1 | grep -v 'is not a recognized feature' || true; \
	  test -s wasm/host/testdata/$$r.wasm || exit 1; done

# wasm-check and proto-check rebuild generated files and fail if the committed
# ones differ.
wasm-check: wasm
	@git diff --exit-code --stat -- wasm/dist wasm/host/testdata || { echo "committed .wasm differ from a fresh TinyGo build: run 'make wasm' and commit"; exit 1; }

proto-check: proto
	@git diff --exit-code --stat -- proto docs/examples || { echo "generated protobuf code or docs/examples/collection.bin is stale: run 'make proto' and commit"; exit 1; }

bench:
	./scripts/bench.sh

clean:
	rm -rf bin
