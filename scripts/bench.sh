#!/usr/bin/env bash
# Runs edgetrack's benchmarks (each beside its baseline, in one run) and
# writes bench/results/<date>-<commit>.md: a header naming the machine, every
# benchmark's median figures and the ratios of scenarios to their baselines.
# BENCH_FILTER narrows the set (a go test -bench regexp); BENCH_COUNT repeats
# each (default 3); BENCH_RAW=<file> only renders the table from the output
# of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-3}
filter=${BENCH_FILTER:-.}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=bench/results/$(date -u +%Y-%m-%d)-$commit.md
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# package;benchmark regexp;benchtime;count (empty = BENCH_COUNT);extra test flags
suites=(
  "./wasm/host;BenchmarkHamustro;2s;;"
  "./edge/internal/spool;BenchmarkAppend;2s;;"
  "./aggregator/internal/store;(BenchmarkIngest|BenchmarkIngestBaseline);20x;;"
  "./aggregator/internal/store;BenchmarkQuerySession;2s;;"
  "./aggregator/internal/store;BenchmarkBig;1x;1;-timeout 30m"
  "./bench;BenchmarkEndToEnd;3000x;;"
  "./bench;BenchmarkTrack;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkEvents;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkCookieSync;1x;;-bench.loadtime=10s"
  "./bench;BenchmarkActivation;20x;;"
  "./bench;BenchmarkEdgeMemory;1x;;"
)
if [ -n "${BENCH_RAW:-}" ]; then
  cp "$BENCH_RAW" "$raw"
  suites=()
fi
for s in "${suites[@]}"; do
  IFS=';' read -r pkg re bt n extra <<<"$s"
  if [ "$filter" != . ] && ! echo "$re" | grep -Eq "$filter"; then continue; fi
  echo "bench: $pkg $re" >&2
  # shellcheck disable=SC2086 # extra holds several flags
  go test -run '^$' -bench "^$re\$" -benchtime "$bt" -count "${n:-$count}" "$pkg" $extra | tee -a "$raw" >&2
done

{
  echo "# edgetrack benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| commit | $commit |"
  echo "| cpu | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  echo "| cores | $(nproc) (load generator and server share them) |"
  echo "| memory | $(free -g | awk '/Mem:/{print $2}') GiB |"
  echo "| go | $(go env GOVERSION) |"
  echo "| repetitions | $count (BenchmarkBig: 1) |"
  echo
  echo "Each row gives the median of its runs; every ratio compares benchmarks of this one run."
  echo "Load scenarios (Track, Events, CookieSync) run 10 s each; BenchmarkBig builds its store once (size in events-in-store)."
  echo
  go run ./bench/cmd/benchtable <"$raw"
} >"$out"
echo "wrote $out" >&2
