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

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.1234: "0.123"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
