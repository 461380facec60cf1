package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/bench/loadgen"
)

// parseCPUList reads the kernel's CPU list format ("0-2,5").
func parseCPUList(s string) string {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if isRange {
			b, _ = strconv.Atoi(hi)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpuList(cpus)
}

// allowedCPUs returns the CPUs every thread of process pid may run on.
func allowedCPUs(t *testing.T, pid int) map[string]string {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	out := map[string]string{}
	for _, f := range tasks {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[f] = parseCPUList(strings.TrimSpace(v))
			}
		}
	}
	return out
}

// TestServerProcessPinnedApart checks the set-up the load benchmarks rely
// on: the server runs in another process, every one of its threads is
// pinned to the server CPUs, every thread of the load generator to the
// others while a load runs, and the server's CPU time is read.
func TestServerProcessPinnedApart(t *testing.T) {
	load, srvCPUs, ok := split()
	if !ok {
		t.Skip("fewer than two CPUs: the benchmarks run unpinned here")
	}
	srv := startServerProcess(t, serveBare, onDisk)
	if srv.pid == os.Getpid() {
		t.Fatal("the server runs in the benchmark's own process")
	}
	for f, cpus := range allowedCPUs(t, srv.pid) {
		if cpus != cpuList(srvCPUs) {
			t.Errorf("server thread %s may run on CPUs %s, want %s", f, cpus, cpuList(srvCPUs))
		}
	}

	before := cpuTime(srv.pid)
	t.Run("load", func(t *testing.T) {
		pinLoad(t)
		for f, cpus := range allowedCPUs(t, os.Getpid()) {
			if cpus != cpuList(load) {
				t.Errorf("load generator thread %s may run on CPUs %s, want %s", f, cpus, cpuList(load))
			}
		}
		res := loadgen.Run(context.Background(), loadgen.Options{Addr: srv.addr, Concurrency: 4, Requests: 20000,
			Make: func(i int, req *fasthttp.Request) {
				req.SetRequestURI("http://" + srv.addr + "/api/v1/track")
				req.Header.SetMethod("POST")
				req.SetBodyString("x")
			},
			OK: func(s int) bool { return s == 200 }})
		if res.Errors > 0 || res.Requests != 20000 {
			t.Fatalf("load: %v", res)
		}
	})
	if used := cpuTime(srv.pid) - before; used <= 0 {
		t.Errorf("the server used no CPU time serving 20000 requests (read %v)", used)
	}
	// After the load, the benchmark process may use every CPU again.
	all := cpuList(slices.Concat(load, srvCPUs))
	for f, cpus := range allowedCPUs(t, os.Getpid()) {
		if cpus != all {
			t.Errorf("after the load, thread %s may run on CPUs %s, want %s", f, cpus, all)
		}
	}
}
