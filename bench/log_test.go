package bench

import (
	"flag"
	"io"
	"log/slog"

	"github.com/edgetrack/edgetrack/bench/loadgen"
)

// loadTime makes each load benchmark run for a fixed time instead of b.N
// requests (make bench sets 10s, so ratios are stable).
var loadTime = flag.Duration("bench.loadtime", 0, "run each load benchmark for this long instead of b.N requests")

// sized sets how long a load run lasts: loadTime when given, else n requests.
func sized(o loadgen.Options, n int) loadgen.Options {
	if *loadTime > 0 {
		o.Duration = *loadTime
	} else {
		o.Requests = n
	}
	return o
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
