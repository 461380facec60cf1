package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/procs"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// The load benchmarks run each server in a child process of the benchmark
// binary (re-executed with BENCH_SERVE=<kind>), so that the load generator
// and the server never compete for a core: with -bench.pin (the default)
// and at least two CPUs, the server is pinned to the upper half of the
// CPUs this process may use and the load generator to the lower half (on
// 2 cores: load generator CPU 0, server CPU 1). The server's CPU time is
// read from /proc, so every load result also says how busy the server was
// and what one request cost it, which does not depend on whether the
// server or the load generator was the bottleneck.

var (
	pin    = flag.Bool("bench.pin", true, "pin the load generator and the server to separate CPUs")
	ramDir = flag.String("bench.ramdir", "/dev/shm", "a RAM-backed directory (tmpfs) for the spools of the edges whose CPU cost is compared; empty puts them on disk too")
	// profileDir makes every server process write a CPU profile and an
	// allocation profile of its whole life (warm-up included), named for
	// the benchmark: <dir>/<benchmark>.cpu.pprof and .allocs.pprof.
	profileDir = flag.String("bench.profile", "", "a directory for CPU and allocation profiles of the server processes")
)

// Server kinds a child process can run.
const (
	serveBare       = "bare"            // reads the body, answers 200 (201 for /events)
	serveRedirect   = "redirect"        // answers every request with a fixed 302
	serveStatic     = "static"          // answers every request with the tracker's brotli bytes
	serveEdge       = "edge"            // the edge, rules as wasm
	serveEdgeNative = "edge-native"     // the edge, rule logic compiled natively
	serveEdgeLimits = "edge-limits"     // the edge, rules as wasm, every rate limit on (none reached)
	serveCookieSync = "edge-cookiesync" // the edge with one cookie-sync partner
	// serveEdgeShipped is the edge as it ships: the default configuration,
	// forwarding to the aggregator at BENCH_AGGREGATOR.
	serveEdgeShipped = "edge-shipped"
)

// benchAdminToken opens the edges' admin listeners to the harness, which
// reads their metrics (the spool's fsyncs).
const benchAdminToken = "bench-admin"

// split returns the CPUs for the load generator and for servers, or ok false
// when they cannot be separated (pinning off, or fewer than two CPUs).
func split() (load, server []int, ok bool) {
	cpus := startCPUs()
	if !*pin || len(cpus) < 2 {
		return nil, nil, false
	}
	return cpus[:len(cpus)/2], cpus[len(cpus)/2:], true
}

// startCPUs are the CPUs this process could use when it started, before any
// pinning.
var startCPUs = sync.OnceValue(func() []int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return nil
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
})

// loadPinned says whether pinLoad is in effect, so that a benchmark may
// call it again (directly and through measure) without repeating the work.
var loadPinned bool

// pinThreads sets the affinity of every thread of this process to cpus
// (threads started later inherit it from the thread that starts them) and
// GOMAXPROCS to match. It repeats until a pass finds no thread it has not
// already set, since the runtime may start threads meanwhile.
func pinThreads(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	done := map[int]bool{}
	for {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			// A thread may exit between the listing and the call.
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d: %w", tid, err)
			}
			done[tid], fresh = true, true
		}
		if !fresh {
			break
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// pinLoad pins this process to the load generator's CPUs for the rest of
// b, restoring the previous affinity afterwards (other benchmarks in the
// binary use every core).
func pinLoad(b testing.TB) {
	load, _, ok := split()
	if !ok || loadPinned {
		return
	}
	procs := runtime.GOMAXPROCS(0)
	if err := pinThreads(load); err != nil {
		b.Fatal(err)
	}
	loadPinned = true
	b.Cleanup(func() {
		pinThreads(startCPUs())
		runtime.GOMAXPROCS(procs)
		loadPinned = false
	})
}

// serveChild runs the server kind in this process, when the benchmark
// binary was started as one, and never returns; it returns false otherwise.
// The child prints its address and serves until its stdin closes (the
// parent ended or closed it).
func serveChild() bool {
	kind := os.Getenv("BENCH_SERVE")
	if kind == "" {
		return false
	}
	if s := os.Getenv("BENCH_CPUS"); s != "" {
		var cpus []int
		for _, f := range strings.Split(s, ",") {
			c, _ := strconv.Atoi(f)
			cpus = append(cpus, c)
		}
		if err := pinThreads(cpus); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	stopProfile, err := startProfile(os.Getenv("BENCH_PROFILE"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	addr, admin, stop, err := startServer(kind, os.Getenv("BENCH_DIR"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(addr, admin)
	bufio.NewReader(os.Stdin).ReadString('\n') // until EOF
	stop()
	if err := stopProfile(); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
	}
	os.Exit(0)
	return true
}

// startProfile starts a CPU profile into prefix.cpu.pprof; the returned
// stop ends it and writes the allocations since the start into
// prefix.allocs.pprof. An empty prefix profiles nothing.
func startProfile(prefix string) (stop func() error, err error) {
	if prefix == "" {
		return func() error { return nil }, nil
	}
	cpu, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := cpu.Close(); err != nil {
			return err
		}
		allocs, err := os.Create(prefix + ".allocs.pprof")
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
			allocs.Close()
			return err
		}
		return allocs.Close()
	}, nil
}

// startServer starts a server of the given kind in this process. admin is
// an edge's admin listener ("" for the others).
func startServer(kind, dir string) (addr, admin string, stop func(), err error) {
	switch kind {
	case serveBare, serveRedirect, serveStatic:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", nil, err
		}
		h := bareOK
		switch kind {
		case serveRedirect:
			h = bareRedirect
		case serveStatic:
			h = bareStatic()
		}
		srv := &fasthttp.Server{Handler: h}
		go srv.Serve(ln)
		return ln.Addr().String(), "", func() { srv.Shutdown() }, nil
	case serveEdgeShipped:
		cfg := config.Default().Edge
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.DataDir = filepath.Join(dir, "edge")
		cfg.AggregatorURL = os.Getenv("BENCH_AGGREGATOR")
		if n := os.Getenv("BENCH_FORWARD_BATCH"); n != "" {
			cfg.Forward.BatchMaxEvents, _ = strconv.Atoi(n) // the shipped edge with an earlier default
		}
		cfg.Token = edgeToken
		cfg.AdminTokens = []string{benchAdminToken}
		cfg.Hamustro.Secrets = []string{hamustrotest.Secret}
		return runEdge(cfg, false)
	case serveEdge, serveEdgeNative, serveEdgeLimits, serveCookieSync:
		cfg := config.Default().Edge
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.AdminTokens = []string{benchAdminToken}
		cfg.DataDir = filepath.Join(dir, "edge")
		cfg.AggregatorURL = "http://127.0.0.1:1" // accepted events stay in the synced spool
		cfg.Token = edgeToken
		cfg.Hamustro.Secrets = []string{hamustrotest.Secret}
		cfg.Spool.MinFreeBytes = 0
		// Nothing is forwarded, and the native-rule edge spools about
		// 100 MB/s of track events: the default quota (1 GiB) would turn
		// it to 503s within a run.
		cfg.Spool.QuotaBytes = 16 * config.GiB
		cfg.Rules.Pull = false
		if kind == serveEdgeLimits {
			// Buckets no load here empties: what a request costs when its
			// client is known to the limit and under it.
			on := config.RouteLimit{Rate: 1e9, Burst: 1 << 30}
			l := &cfg.Limits
			l.Hamustro, l.Eye, l.CookieSyncInit, l.CookieSyncSync, l.CookieSyncDone = on, on, on, on, on
		}
		if kind == serveCookieSync {
			cfg.CookieSync.Partners = []string{"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example"}
			cfg.CookieSync.GDPRDefault = "not_applies"
		}
		return runEdge(cfg, kind == serveEdgeNative)
	}
	return "", "", nil, fmt.Errorf("unknown server kind %q", kind)
}

// runEdge runs an edge with cfg until stop, with the GOMAXPROCS the
// edgetrack binary gives it (internal/procs).
func runEdge(cfg config.Edge, native bool) (addr, admin string, stop func(), err error) {
	procs.AtLeast(procs.ForSyncedWrites)
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Logger: quiet(), Native: native})
	if err != nil {
		cancel()
		return "", "", nil, err
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	return e.Addr(), e.AdminAddr(), func() { cancel(); <-done }, nil
}

// bareOK is the limit of the server stack for track and events: read the
// body and answer 200 (201 for /events).
func bareOK(ctx *fasthttp.RequestCtx) {
	if len(ctx.PostBody()) == 0 {
		ctx.SetStatusCode(400)
		return
	}
	if string(ctx.Path()) == "/events" {
		ctx.SetStatusCode(201)
	}
}

// bareRedirect is the cookie-sync baseline: a fixed 302.
func bareRedirect(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Location", "https://sync.acme.example/cs/s?p=edgetrack&pi=0123456789abcdef0123456789abcdef")
	ctx.SetStatusCode(302)
}

// server is a server process started for a benchmark.
type server struct {
	addr  string
	admin string // an edge's admin listener, or ""
	pid   int
}

// Where a server process keeps its data (the edge's spool).
type storage int

const (
	onDisk storage = iota // the test's temporary directory, as deployed
	inRAM                 // -bench.ramdir: fsync returns at once
)

// startServerProcess starts a child process serving kind, pinned to the
// server CPUs when pinning applies, and stops it when b ends.
func startServerProcess(b testing.TB, kind string, where storage, env ...string) *server {
	b.Helper()
	dir := b.TempDir()
	if where == inRAM && *ramDir != "" {
		d, err := os.MkdirTemp(*ramDir, "edgetrack-bench-")
		if err != nil {
			b.Fatalf("-bench.ramdir: %v", err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "BENCH_SERVE="+kind, "BENCH_DIR="+dir), env...)
	if *profileDir != "" {
		name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name()) + "." + kind
		cmd.Env = append(cmd.Env, "BENCH_PROFILE="+filepath.Join(*profileDir, name))
	}
	if _, cpus, ok := split(); ok {
		var s []string
		for _, c := range cpus {
			s = append(s, strconv.Itoa(c))
		}
		cmd.Env = append(cmd.Env, "BENCH_CPUS="+strings.Join(s, ","))
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil || line == "" || strings.HasPrefix(line, "error") {
		cmd.Process.Kill()
		go func() { cmd.Wait(); close(exited) }()
		b.Fatalf("%s server did not start: %q %v", kind, line, err)
	}
	go func() { cmd.Wait(); close(exited) }()
	addr, admin, _ := strings.Cut(line, " ")
	return &server{addr: addr, admin: admin, pid: cmd.Process.Pid}
}

// fsyncs reads an edge's spool fsyncs from its metrics (0 for other
// servers).
func (srv *server) fsyncs(b testing.TB) float64 {
	return srv.metric(b, "edgetrack_spool_wal_fsyncs_total")
}

// metric reads one unlabelled metric of an edge (0 for other servers).
func (srv *server) metric(b testing.TB, name string) float64 {
	if srv.admin == "" {
		return 0
	}
	req, _ := http.NewRequest("GET", "http://"+srv.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("edge metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	b.Fatalf("edge metrics: no %s (status %d)", name, resp.StatusCode)
	return 0
}

// cpuTime is the CPU time (user + system) process pid has used so far.
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const userHZ = 100 // clock ticks per second of /proc/<pid>/stat on Linux
	return time.Duration(ut+st) * time.Second / userHZ
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs load against srv with this process pinned to the load
// generator's CPUs and reports, besides what the caller reports from the
// result: the server's CPU use (percent of one core) and CPU time per
// request, and the load generator's CPU use.
func measure(b *testing.B, srv *server, o loadgen.Options) loadgen.Result {
	b.Helper()
	pinLoad(b)
	// Warm up (connections, rule instances, spool) outside the timed part.
	warm := o
	warm.Duration, warm.Requests, warm.Rate = time.Second, 0, 0
	loadgen.Run(context.Background(), warm)

	fsyncs0 := srv.fsyncs(b)
	server0, self0 := cpuTime(srv.pid), selfCPU()
	b.ResetTimer()
	res := loadgen.Run(context.Background(), o)
	b.StopTimer()
	server, self := cpuTime(srv.pid)-server0, selfCPU()-self0
	if n := srv.fsyncs(b) - fsyncs0; srv.admin != "" && n > 0 {
		b.ReportMetric(float64(res.Requests)/n, "req/fsync")
	}
	if res.Errors > 0 {
		b.Fatalf("errors: %v", res)
	}
	b.ReportMetric(100*server.Seconds()/res.Elapsed.Seconds(), "server-cpu-%")
	b.ReportMetric(100*self.Seconds()/res.Elapsed.Seconds(), "loadgen-cpu-%")
	if res.Requests > 0 {
		b.ReportMetric(float64(server.Microseconds())/float64(res.Requests), "server-cpu-µs/req")
	}
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
	return res
}

// cpuList renders CPUs for the results header.
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
