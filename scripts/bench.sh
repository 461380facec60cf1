#!/usr/bin/env bash
# Runs edgetrack's benchmarks (each beside its baseline, in one run) and
# writes bench/results/<date>-<commit>.md: a header naming the machine, every
# benchmark's median figures and the ratios of scenarios to their baselines.
# The raw go test output is kept beside it (<date>-<commit>.raw.txt).
# BENCH_FILTER narrows the set (a go test -bench regexp); BENCH_COUNT repeats
# each (default 3); BENCH_RAW=<file> only renders the table from the output
# of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-3}
filter=${BENCH_FILTER:-.}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=bench/results/$(date -u +%Y-%m-%d)-$commit.md
raw=bench/results/$(date -u +%Y-%m-%d)-$commit.raw.txt
began=$(date +%s)

# package;benchmark regexp;benchtime;count (empty = BENCH_COUNT);extra test flags
suites=(
  "./wasm/host;BenchmarkHamustro;1s;;"
  "./edge/internal/spool;BenchmarkAppend;1s;;"
  "./edge/internal/ratelimit;BenchmarkAllow.*|BenchmarkTableMemory;1s;;"
  "./edge/internal/server;(BenchmarkAsset|BenchmarkAssetBaseline|BenchmarkHandler);1s;;"
  "./aggregator/internal/store/pebble;(BenchmarkIngest|BenchmarkIngestBaseline);200x;;"
  "./aggregator/internal/store/pebble;BenchmarkBig;1s;1;-timeout 30m"
  "./aggregator/internal/store/clickhouse;BenchmarkIngestBackends;100x;;"
  "./aggregator/internal/store/clickhouse;BenchmarkBig;1s;1;-timeout 30m"
  "./bench;BenchmarkEndToEnd;10000x;;"
  "./bench;BenchmarkTrack;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkEvents;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkCookieSync;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkShippedEdge;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkTracker;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkTrackerInPage;20x;;"
  "./bench;BenchmarkActivation;20x;;"
  "./bench;BenchmarkEdgeMemory;1x;;"
  "./aggregator/internal/store/pebble;BenchmarkExport;1x;1;-export.events=1000000 -timeout 30m"
  "./syncer;BenchmarkSync;1x;1;-sync.events=1000000 -timeout 30m"
)
if [ -n "${BENCH_RAW:-}" ]; then
  raw=$BENCH_RAW
  suites=()
else
  : >"$raw"
fi
for s in "${suites[@]}"; do
  IFS=';' read -r pkg re bt n extra <<<"$s"
  if [ "$filter" != . ] && ! echo "$re" | grep -Eq "$filter"; then continue; fi
  echo "bench: $pkg $re" >&2
  # shellcheck disable=SC2086 # extra holds several flags
  go test -run '^$' -bench "^$re\$" -benchtime "$bt" -count "${n:-$count}" "$pkg" $extra | tee -a "$raw" >&2
done
# go test can report ok for a package whose benchmark failed in one of
# several -count repetitions: a table with a hole in it is not a result.
if grep -q -e '^--- FAIL' -e '^FAIL' "$raw"; then
  echo "bench: a benchmark failed; see $raw" >&2
  exit 1
fi

{
  echo "# edgetrack benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| commit | $commit |"
  echo "| cpu | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  split=$(grep -m1 '^cpu split:' "$raw" | sed 's/^cpu split: //' || true)
  echo "| cores | $(nproc); load scenarios (Track, Events, CookieSync): ${split:-not pinned (one CPU, or -bench.pin=false)}; every other benchmark uses all cores |"
  echo "| memory | $(free -g | awk '/Mem:/{print $2}') GiB |"
  echo "| go | $(go env GOVERSION) |"
  echo "| repetitions | $count (BenchmarkBig: 1) |"
  [ -z "${BENCH_RAW:-}" ] && echo "| run took | $(( ($(date +%s) - began) / 60 )) min $(( ($(date +%s) - began) % 60 )) s |"
  echo "| raw output | $(basename "$raw") |"
  echo
  echo "Each row gives the median of its runs; every ratio compares benchmarks of this one run."
  echo "Load scenarios (Track, Events, CookieSync, Tracker) run 10 s each after a warm-up, each server in its own process; the edges compared for CPU cost keep their synced spools on tmpfs, the -disk rows on disk (see bench/README.md)."
  echo "BenchmarkBig builds its store once (size in events-in-store), in store/pebble and in store/clickhouse from the same events; each full-scan baseline runs once."
  echo
  go run ./bench/cmd/benchtable <"$raw"
} >"$out"
echo "wrote $out" >&2
