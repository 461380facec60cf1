# edgetrack — see README.md. Everything here needs only Go, except `make wasm`
# (TinyGo, installed by `make tools`) and `make proto` (protoc, likewise).
SHELL := /bin/bash
GO ?= go
BIN := bin/edgetrack
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD || c=$$c-dirty; echo $$c; })
LDFLAGS := -X github.com/edgetrack/edgetrack/internal/version.Version=$(VERSION) \
  -X github.com/edgetrack/edgetrack/internal/version.commit=$(COMMIT)
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/edgetrack/tools
TINYGO ?= $(TOOLS_DIR)/bin/tinygo
TINYGO_FLAGS := -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -opt=2
# The built-in rules: one wasm/cmd/<name> each, as in wasm/dist's table
# (TestTheTableIsTheTruth checks that they agree).
RULES := $(sort $(notdir $(wildcard wasm/cmd/*)))
TEST_RULES := misbehave hamustroguest eyealt cookiesyncalt
PROTOS := proto/hamustropb/hamustro.proto proto/eventpb/event.proto proto/rulepb/rule.proto
GOTEST_FLAGS ?= -count=1 -timeout 20m

# Packages whose tests exercise concurrency: `make race` runs them under the
# race detector.
RACE_PKGS := ./edge/internal/spool ./edge ./edge/internal/ratelimit ./edge/internal/server ./aggregator ./client ./wasm/host ./wasm/native ./internal/tlsconf ./syncer \
  ./aggregator/internal/store ./aggregator/internal/store/pebble ./aggregator/internal/store/storetest
# The ClickHouse store's concurrency tests (the rest of its suite spends
# minutes waiting on the server, which the race detector has nothing to
# look at).
RACE_CLICKHOUSE := ./aggregator/internal/store/clickhouse:^(TestTwoStoresConcurrently|TestFeedOfSeveralWriters|TestRacingAggregators|TestRemovalsOfTwoStores|TestStore)$$/^(IngestConcurrent|StatsConcurrent|ExportWaits|Closed|Restart|EraseConcurrent|RetentionWhileIngesting|found_.*)$$
# Fuzz targets run for FUZZTIME each by `make fuzz`, from their committed
# seed corpora; a crasher is written to the package's testdata/fuzz, where
# it stays as a fixture once committed.
FUZZ_TARGETS := ./wasm/instrument:FuzzInstrument ./wasm/host:FuzzLoad \
  ./aggregator/internal/ingest:FuzzHamustroEventsReachTheStore ./aggregator/internal/ingest:FuzzEyeEventsReachTheStore \
  ./aggregator/internal/store/pebble:FuzzQueryCursor ./internal/subject:FuzzSetAgreesWithMatches \
  ./internal/asset:FuzzPick
FUZZTIME ?= 60s

# make install: where. DESTDIR stages the tree (packaging, tests).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEMD_DIR ?= /lib/systemd/system
UNITS := packaging/systemd/edgetrack-edge.service packaging/systemd/edgetrack-aggregator.service
# make release: static binaries for these, with SHA256SUMS, in dist/.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: all build run test race fuzz check proto wasm tools browser bench clean install release clickhouse clickhouse-cluster test-cluster

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgetrack

run: build
	./$(BIN) dev --data-dir data/dev

test:
	$(GO) test $(GOTEST_FLAGS) ./...

race:
	$(GO) test -race $(GOTEST_FLAGS) $(RACE_PKGS)
	$(GO) test -race $(GOTEST_FLAGS) -run '$(lastword $(subst :, ,$(RACE_CLICKHOUSE)))' $(firstword $(subst :, ,$(RACE_CLICKHOUSE)))

fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh $(FUZZ_TARGETS)

check: wasm-check proto-check
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

tools:
	@./scripts/install-tinygo.sh >/dev/null
	@command -v protoc >/dev/null || { sudo=; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq protobuf-compiler; }

# A ClickHouse server on 127.0.0.1:9000 for the tests of the ClickHouse store
# (they skip without one), installed from Debian's packages when missing and
# started with its data in a temporary directory; it prints the address.
# `scripts/clickhouse.sh stop` stops it.
clickhouse:
	@./scripts/clickhouse.sh
# A ClickHouse cluster on loopback for the tests of the ClickHouse store's
# cluster option (they skip without it): Debian's ZooKeeper on
# 127.0.0.1:2181 and two clickhouse-server replicas of one shard on
# 127.0.0.1:9101 and :9102, installed when missing, data in a temporary
# directory; it prints the cluster (NAME=ADDRESS,ADDRESS).
# `scripts/clickhouse-cluster.sh stop` stops it.
clickhouse-cluster:
	@./scripts/clickhouse-cluster.sh
# The cluster's tests alone, failing without it; `make test` runs them too,
# except the store's conformance suite on the cluster, which takes minutes.
test-cluster: clickhouse-cluster
	EDGETRACK_TEST_REQUIRE_SERVERS=1 EDGETRACK_TEST_CLUSTER_SUITE=1 $(GO) test $(GOTEST_FLAGS) -run 'Cluster' ./aggregator/internal/store/clickhouse/ ./cmd/edgetrack/
# Debian's chromium, which the browser tests drive (they skip without it,
# except in CI).
browser:
	@./scripts/install-chromium.sh

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

# The binary, the example config (also as the config when there is none),
# and systemd units for the edge and the aggregator, verified with
# systemd-analyze when it is there.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/edgetrack
	install -D -m 0644 edgetrack.example.yaml $(DESTDIR)$(PREFIX)/share/edgetrack/edgetrack.example.yaml
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/edgetrack/README.md
	test -e $(DESTDIR)$(SYSCONFDIR)/edgetrack/edgetrack.yaml || \
	  install -D -m 0644 edgetrack.example.yaml $(DESTDIR)$(SYSCONFDIR)/edgetrack/edgetrack.yaml
	for u in $(UNITS); do \
	  sed -e 's#/usr/local/#$(PREFIX)/#g' -e 's#/etc/edgetrack/#$(SYSCONFDIR)/edgetrack/#g' $$u >$$u.tmp && \
	  install -D -m 0644 $$u.tmp $(DESTDIR)$(SYSTEMD_DIR)/$$(basename $$u) && rm $$u.tmp || exit 1; \
	done
	./scripts/verify-units.sh $(DESTDIR)$(PREFIX)/bin/edgetrack $(addprefix $(DESTDIR)$(SYSTEMD_DIR)/,$(notdir $(UNITS)))

release:
	rm -rf dist && mkdir -p dist
	for p in $(PLATFORMS); do \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" \
	    -o dist/edgetrack-$(VERSION)-$${p%/*}-$${p#*/} ./cmd/edgetrack || exit 1; \
	done
	cd dist && sha256sum edgetrack-* >SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf bin dist
