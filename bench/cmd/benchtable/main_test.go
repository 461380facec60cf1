package main

import (
	"strings"
	"testing"
)

// TestTable feeds benchtable output it must summarise: GOMAXPROCS suffixes
// dropped, medians per metric over the repetitions, the ratio of medians
// with the spread of the paired repetitions, and no row for a ratio whose
// baseline did not run.
func TestTable(t *testing.T) {
	in := `goos: linux
BenchmarkA/x-2   	 100	  300 ns/op	  10.0 req/s
BenchmarkA/x-2   	 100	  100 ns/op	  30.0 req/s
BenchmarkA/x-2   	 100	  200 ns/op	  20.0 req/s
BenchmarkBase-2  	 100	  100 ns/op	  10.0 req/s
BenchmarkBase-2  	 100	   50 ns/op	  10.0 req/s
BenchmarkBase-2  	 100	  100 ns/op	  10.0 req/s
PASS
`
	var out strings.Builder
	table(&out, strings.NewReader(in), []ratio{
		{"a vs base (time)", "BenchmarkA/x", "BenchmarkBase", "ns/op"},
		{"a vs base (rate)", "BenchmarkA/x", "BenchmarkBase", "req/s"},
		{"a vs missing", "BenchmarkA/x", "BenchmarkMissing", "ns/op"},
	})
	got := out.String()
	for _, want := range []string{
		"| BenchmarkA/x | 3 | 200 ns/op, 20.00 req/s |",
		"| BenchmarkBase | 3 | 100 ns/op, 10.00 req/s |",
		// medians 200/100; pairs 300/100, 100/50, 200/100 = 3, 2, 2.
		"| a vs base (time) | 2.00× | 2.00–3.00 (50.0% of the value) |",
		"| a vs base (rate) | 2.00× | 1.00–3.00 (100.0% of the value) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "missing") {
		t.Errorf("a ratio without its baseline was written:\n%s", got)
	}
}

// TestSameNameTwoPackages: benchmarks of one name in two packages keep
// rows of their own, named pkg.Name, and ratios name them so; a package's
// rows are found as pkg.Name also when no other package ran that name.
func TestSameNameTwoPackages(t *testing.T) {
	in := `pkg: example.com/m/store/pebble
BenchmarkBig/q/index-2   	 10	  100 ns/op
BenchmarkBig/q/full-scan-2   	 1	  9000 ns/op
BenchmarkOther-2   	 10	  5 ns/op
PASS
pkg: example.com/m/store/clickhouse
BenchmarkBig/q/index-2   	 10	  300 ns/op
PASS
`
	rs := []ratio{
		{"clickhouse vs pebble", "clickhouse.BenchmarkBig/q/index", "pebble.BenchmarkBig/q/index", "ns/op"},
		{"scan vs index", "pebble.BenchmarkBig/q/full-scan", "pebble.BenchmarkBig/q/index", "ns/op"},
		{"unqualified", "BenchmarkOther", "pebble.BenchmarkOther", "ns/op"},
	}
	var out strings.Builder
	table(&out, strings.NewReader(in), rs)
	got := out.String()
	for _, want := range []string{
		"| pebble.BenchmarkBig/q/index | 1 | 100 ns/op |",
		"| pebble.BenchmarkBig/q/full-scan | 1 | 9000 ns/op |",
		"| clickhouse.BenchmarkBig/q/index | 1 | 300 ns/op |",
		"| BenchmarkOther | 1 | 5.00 ns/op |",
		"| clickhouse vs pebble | 3.00× |",
		"| scan vs index | 90.0× |",
		"| unqualified | 1.00× |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}

	out.Reset()
	table(&out, strings.NewReader(in[:strings.Index(in, "pkg: example.com/m/store/clickhouse")]), rs)
	if got := out.String(); !strings.Contains(got, "| BenchmarkBig/q/index | 1 | 100 ns/op |") || !strings.Contains(got, "| scan vs index | 90.0× |") {
		t.Errorf("pebble alone:\n%s", got)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.1234: "0.123"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
