// Command benchtable turns `go test -bench` output into the markdown table of
// bench/results: one row per benchmark with the median of each metric over
// its repetitions, then the ratios of each scenario to its baseline, both
// taken from the same run. Usage: benchtable < raw-output > table.md
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// sample is one benchmark line: its metrics by unit.
type sample map[string]float64

// ratio compares a metric of one benchmark with the same metric of its
// baseline. bench and base name benchmarks as the table does (see label),
// or as pkg.Name with the last element of the package's path, which names
// one whether or not another package ran a benchmark of the same name.
type ratio struct {
	what, bench, base, unit string
}

var ratios = []ratio{
	{"hamustro rule, 10 payloads: wasm vs native (time per request)", "BenchmarkHamustro/wasm-hostcrypto/payloads=10", "BenchmarkHamustro/native/payloads=10", "ns/op"},
	{"hamustro rule, 1 payload: host-function hashing vs in-guest hashing (time per request)", "BenchmarkHamustro/wasm-hostcrypto/payloads=1", "BenchmarkHamustro/wasm-guestcrypto/payloads=1", "ns/op"},
	{"hamustro rule, 10 payloads: host-function hashing vs in-guest hashing (time per request)", "BenchmarkHamustro/wasm-hostcrypto/payloads=10", "BenchmarkHamustro/wasm-guestcrypto/payloads=10", "ns/op"},
	{"hamustro rule, 100 payloads: host-function hashing vs in-guest hashing (time per request)", "BenchmarkHamustro/wasm-hostcrypto/payloads=100", "BenchmarkHamustro/wasm-guestcrypto/payloads=100", "ns/op"},
	{"spool: 16 writers vs 1 (synced appends/s)", "BenchmarkAppend/writers=16,values=1", "BenchmarkAppend/writers=1,values=1", "appends/s"},
	{"spool: 64 writers vs 1 (synced appends/s)", "BenchmarkAppend/writers=64,values=1", "BenchmarkAppend/writers=1,values=1", "appends/s"},
	{"store ingest with indexes and dedup vs writes by id only (events/s)", "BenchmarkIngest", "BenchmarkIngestBaseline", "events/s"},
	{"ClickHouse store ingest vs a plain clickhouse-go batch insert of the same rows, batches of 1,000 (events/s)", "BenchmarkIngestBackends/batch=1000/store", "BenchmarkIngestBackends/batch=1000/plain-insert", "events/s"},
	{"ClickHouse store ingest vs a plain clickhouse-go batch insert of the same rows, batches of 10,000 (events/s)", "BenchmarkIngestBackends/batch=10000/store", "BenchmarkIngestBackends/batch=10000/plain-insert", "events/s"},
	{"ClickHouse store ingest vs Pebble store ingest, batches of 1,000 (events/s)", "BenchmarkIngestBackends/batch=1000/store", "BenchmarkIngestBackends/batch=1000/pebble", "events/s"},
	{"ClickHouse store ingest vs Pebble store ingest, batches of 10,000 (events/s)", "BenchmarkIngestBackends/batch=10000/store", "BenchmarkIngestBackends/batch=10000/pebble", "events/s"},
	{"big store, a session's first page: full scan vs index (time)", "pebble.BenchmarkBig/session-first-page/full-scan", "pebble.BenchmarkBig/session-first-page/index", "ns/op"},
	{"big store, a category+name's first page: full scan vs index (time)", "pebble.BenchmarkBig/category-name/full-scan", "pebble.BenchmarkBig/category-name-first-page/index", "ns/op"},
	{"big store, page 1000 by cursor: full scan vs index (time)", "pebble.BenchmarkBig/category-name/full-scan", "pebble.BenchmarkBig/page-1000/cursor", "ns/op"},
	{"big store, page 1000 by page number: full scan vs index (time)", "pebble.BenchmarkBig/category-name/full-scan", "pebble.BenchmarkBig/page-1000/offset", "ns/op"},
	{"big store, one day's stats by hour: full scan vs rollups (time)", "pebble.BenchmarkBig/stats-day-by-hour/full-scan", "pebble.BenchmarkBig/stats-day-by-hour/rollups", "ns/op"},
	{"big store, a session's first page: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/session-first-page/index", "pebble.BenchmarkBig/session-first-page/index", "ns/op"},
	{"big store, a category+name's first page: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/category-name-first-page/index", "pebble.BenchmarkBig/category-name-first-page/index", "ns/op"},
	{"big store, page 1000 by cursor: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/page-1000/cursor", "pebble.BenchmarkBig/page-1000/cursor", "ns/op"},
	{"big store, page 1000 by page number: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/page-1000/offset", "pebble.BenchmarkBig/page-1000/offset", "ns/op"},
	{"big store, the count of a category+name: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/count/category-name", "pebble.BenchmarkBig/count/category-name", "ns/op"},
	{"big store, the count of all events: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/count/all", "pebble.BenchmarkBig/count/all", "ns/op"},
	{"big store, one day's stats by hour: ClickHouse vs Pebble (time)", "clickhouse.BenchmarkBig/stats-day-by-hour/rollups", "pebble.BenchmarkBig/stats-day-by-hour/rollups", "ns/op"},
	{"end to end through the edge vs straight to ingest (events/s)", "BenchmarkEndToEnd/edge", "BenchmarkEndToEnd/direct-ingest", "events/s"},
	{"track: edge (wasm rule) vs bare fasthttp (req/s)", "BenchmarkTrack/edge-wasm-rule", "BenchmarkTrack/bare-fasthttp", "req/s"},
	{"track: edge (wasm rule) vs bare fasthttp (server CPU per request)", "BenchmarkTrack/edge-wasm-rule", "BenchmarkTrack/bare-fasthttp", "server-cpu-µs/req"},
	{"track: edge (wasm rule) vs edge (native rule) (req/s)", "BenchmarkTrack/edge-wasm-rule", "BenchmarkTrack/edge-native-rule", "req/s"},
	{"track: edge (wasm rule) vs edge (native rule) (server CPU per request)", "BenchmarkTrack/edge-wasm-rule", "BenchmarkTrack/edge-native-rule", "server-cpu-µs/req"},
	{"track: edge (wasm rule) with rate limits on vs off (req/s)", "BenchmarkTrack/edge-wasm-rule-limits", "BenchmarkTrack/edge-wasm-rule", "req/s"},
	{"track: edge (wasm rule) with rate limits on vs off (server CPU per request)", "BenchmarkTrack/edge-wasm-rule-limits", "BenchmarkTrack/edge-wasm-rule", "server-cpu-µs/req"},
	{"track: edge (wasm rule), spool on disk vs on tmpfs (req/s)", "BenchmarkTrack/edge-wasm-rule-disk", "BenchmarkTrack/edge-wasm-rule", "req/s"},
	{"events: edge (wasm rule) vs bare fasthttp (req/s)", "BenchmarkEvents/edge-wasm-rule", "BenchmarkEvents/bare-fasthttp", "req/s"},
	{"events: edge (wasm rule) vs bare fasthttp (server CPU per request)", "BenchmarkEvents/edge-wasm-rule", "BenchmarkEvents/bare-fasthttp", "server-cpu-µs/req"},
	{"events: edge (wasm rule) vs edge (native rule) (req/s)", "BenchmarkEvents/edge-wasm-rule", "BenchmarkEvents/edge-native-rule", "req/s"},
	{"events: edge (wasm rule) vs edge (native rule) (server CPU per request)", "BenchmarkEvents/edge-wasm-rule", "BenchmarkEvents/edge-native-rule", "server-cpu-µs/req"},
	{"events: edge (wasm rule) with rate limits on vs off (server CPU per request)", "BenchmarkEvents/edge-wasm-rule-limits", "BenchmarkEvents/edge-wasm-rule", "server-cpu-µs/req"},
	{"events: edge (wasm rule), spool on disk vs on tmpfs (req/s)", "BenchmarkEvents/edge-wasm-rule-disk", "BenchmarkEvents/edge-wasm-rule", "req/s"},
	{"rate limit: a known client's Allow vs a new client's (time)", "BenchmarkAllowKnownClient", "BenchmarkAllowFlood", "ns/op"},
	{"export feed of a 1M-event store: 64 MiB block cache vs the default 256 MiB (events/s)", "BenchmarkExport/cache=64MiB", "BenchmarkExport/cache=256MiB-default", "events/s"},
	{"sync into PostgreSQL vs COPY of the same rows (events/s)", "BenchmarkSync/postgres/sync", "BenchmarkSync/postgres/copyfrom-baseline", "events/s"},
	{"sync into MariaDB vs multi-row INSERTs of the same rows (events/s)", "BenchmarkSync/mariadb/sync", "BenchmarkSync/mariadb/multirow-insert-baseline", "events/s"},
	{"sync to a webhook: one event per request vs 1,000 (events/s)", "BenchmarkSync/webhook/batch=1", "BenchmarkSync/webhook/batch=1000", "events/s"},
	{"track, the shipped edge (disk spool, forwarding) vs bare fasthttp, 16 connections (req/s)", "BenchmarkShippedEdge/conns=16/edge", "BenchmarkShippedEdge/conns=16/bare-fasthttp", "req/s"},
	{"track, the shipped edge (disk spool, forwarding) vs bare fasthttp, 64 connections (req/s)", "BenchmarkShippedEdge/conns=64/edge", "BenchmarkShippedEdge/conns=64/bare-fasthttp", "req/s"},
	{"track, the shipped edge (disk spool, forwarding) vs bare fasthttp, 256 connections (req/s)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/bare-fasthttp", "req/s"},
	{"track, the shipped edge: 256 connections vs 16 (req/s)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=16/edge", "req/s"},
	{"track, the shipped edge vs the same with GOMAXPROCS=1, 16 connections (req/s)", "BenchmarkShippedEdge/conns=16/edge", "BenchmarkShippedEdge/conns=16/edge-gomaxprocs-1", "req/s"},
	{"track, the shipped edge vs the same with GOMAXPROCS=1, 256 connections (req/s)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/edge-gomaxprocs-1", "req/s"},
	{"track, the shipped edge vs the same with GOMAXPROCS=1, 256 connections (server CPU per request)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/edge-gomaxprocs-1", "server-cpu-µs/req"},
	{"track, the shipped edge vs bare fasthttp, 64 connections (server CPU per request)", "BenchmarkShippedEdge/conns=64/edge", "BenchmarkShippedEdge/conns=64/bare-fasthttp", "server-cpu-µs/req"},
	{"track, the shipped edge vs bare fasthttp, 256 connections (server CPU per request)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/bare-fasthttp", "server-cpu-µs/req"},
	{"track, the shipped edge at half its rate vs at full rate, 256 connections (p99)", "BenchmarkShippedEdge/conns=256/edge-at-half-rate", "BenchmarkShippedEdge/conns=256/edge", "p99-µs"},
	{"track, the shipped edge: batches of 10,000 events (default) vs 1,000, 256 connections (req/s)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/edge-forward-batch-1000", "req/s"},
	{"track, the shipped edge: batches of 10,000 events (default) vs 1,000, 256 connections (events left in the spool)", "BenchmarkShippedEdge/conns=256/edge", "BenchmarkShippedEdge/conns=256/edge-forward-batch-1000", "spool-depth-end"},
	{"tracker /et.js, in process: the edge's handler vs a bare static handler (time per request)", "BenchmarkAsset", "BenchmarkAssetBaseline", "ns/op"},
	{"tracker /et.js: edge vs bare fasthttp static response (req/s)", "BenchmarkTracker/edge", "BenchmarkTracker/bare-fasthttp-static", "req/s"},
	{"tracker /et.js: edge vs bare fasthttp static response (server CPU per request)", "BenchmarkTracker/edge", "BenchmarkTracker/bare-fasthttp-static", "server-cpu-µs/req"},
	{"cookie sync: rule vs bare fasthttp redirect (redirects/s)", "BenchmarkCookieSync/rule", "BenchmarkCookieSync/bare-redirect", "redirects/s"},
	{"cookie sync: rule vs bare fasthttp redirect (server CPU per request)", "BenchmarkCookieSync/rule", "BenchmarkCookieSync/bare-redirect", "server-cpu-µs/req"},
}

func main() {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	table(w, os.Stdin, ratios)
}

// table writes the tables for the benchmark output in, with the ratios rs
// whose benchmark and baseline are both there.
func table(w io.Writer, in io.Reader, rs []ratio) {
	runs, order := parse(in)
	fmt.Fprintln(w, "| benchmark | runs | median metrics |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, k := range order {
		fmt.Fprintf(w, "| %s | %d | %s |\n", label(k, order), len(runs[k]), format(medians(runs[k])))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio (same run) | value | spread over repetitions (max − min) |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, r := range rs {
		a, b := runs[find(r.bench, order)], runs[find(r.base, order)]
		if len(a) == 0 || len(b) == 0 {
			continue
		}
		ma, mb := median(values(a, r.unit)), median(values(b, r.unit))
		if mb == 0 {
			continue
		}
		// Spread: the ratio of each repetition pair, min..max.
		var each []float64
		for i := 0; i < min(len(a), len(b)); i++ {
			if b[i][r.unit] != 0 {
				each = append(each, a[i][r.unit]/b[i][r.unit])
			}
		}
		spread := ""
		if len(each) > 1 {
			lo, hi := slices.Min(each), slices.Max(each)
			spread = fmt.Sprintf("%s–%s (%.1f%% of the value)", num(lo), num(hi), 100*(hi-lo)/(ma/mb))
		}
		fmt.Fprintf(w, "| %s | %s× | %s |\n", r.what, num(ma/mb), spread)
	}
}

// num prints a ratio with three significant digits or so.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// key names a benchmark: its package's import path (from the "pkg:" line
// before it; empty without one) and its name.
type key struct{ pkg, name string }

// base is the last element of the package's path.
func (k key) base() string { return k.pkg[strings.LastIndexByte(k.pkg, '/')+1:] }

// top is the benchmark function: the name up to its first sub-benchmark.
func (k key) top() string {
	name, _, _ := strings.Cut(k.name, "/")
	return name
}

// label is how the table names k: its name, qualified as pkg.Name (see
// key.base) when a benchmark function of that name ran in more than one
// package (BenchmarkBig in store/pebble and store/clickhouse), so that
// their rows stay apart and read side by side.
func label(k key, all []key) string {
	for _, o := range all {
		if o.pkg != k.pkg && o.top() == k.top() {
			return k.base() + "." + k.name
		}
	}
	return k.name
}

// find is the benchmark that ref names: its label, or pkg.Name.
func find(ref string, all []key) key {
	for _, k := range all {
		if label(k, all) == ref || k.base()+"."+k.name == ref {
			return k
		}
	}
	return key{}
}

// parse reads benchmark lines: name, iterations, then value-unit pairs, each
// of the package of the last "pkg:" line. The -N GOMAXPROCS suffix is
// dropped from names.
func parse(in io.Reader) (map[key][]sample, []key) {
	runs := map[key][]sample{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		s := sample{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				s[f[i+1]] = v
			}
		}
		k := key{pkg, name}
		if _, seen := runs[k]; !seen {
			order = append(order, k)
		}
		runs[k] = append(runs[k], s)
	}
	return runs, order
}

func values(ss []sample, unit string) []float64 {
	var v []float64
	for _, s := range ss {
		if x, ok := s[unit]; ok {
			v = append(v, x)
		}
	}
	return v
}

// median is the middle value, or of an even number of values the upper of
// the two middle ones (a value that was measured, not an average).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	sort.Float64s(v)
	return v[len(v)/2]
}

func medians(ss []sample) sample {
	out := sample{}
	for _, s := range ss {
		for unit := range s {
			if _, done := out[unit]; !done {
				out[unit] = median(values(ss, unit))
			}
		}
	}
	return out
}

// format lists the metrics: ns/op, then allocs/op and B/op (benchmarks that
// report allocations: the allocation budgets), then the others by name.
func format(s sample) string {
	var units []string
	for u := range s {
		if u != "ns/op" && u != "B/op" && u != "allocs/op" {
			units = append(units, u)
		}
	}
	sort.Strings(units)
	var parts []string
	for _, u := range []string{"ns/op", "allocs/op", "B/op"} {
		if v, ok := s[u]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", human(v), u))
		}
	}
	for _, u := range units {
		parts = append(parts, fmt.Sprintf("%s %s", human(s[u]), u))
	}
	return strings.Join(parts, ", ")
}

func human(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
