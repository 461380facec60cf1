package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
)

// TestMain lets the benchmark binary run an edge as a child process
// (BENCH_EDGE_DIR set), so its memory can be measured apart from the load
// generator's.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BENCH_EDGE_DIR"); dir != "" {
		cfg := config.Default().Edge
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.DataDir = dir
		cfg.AggregatorURL = "http://127.0.0.1:1"
		cfg.Token = edgeToken
		cfg.Hamustro.Secrets = []string{"unused"}
		cfg.Spool.MinFreeBytes = 0
		cfg.Rules.Pull = false
		e, err := edge.New(context.Background(), edge.Options{Config: cfg, Logger: quiet()})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(e.Addr())
		e.Run(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// BenchmarkEdgeMemory starts an edge process and holds 1,000 and then
// 10,000 keep-alive connections open to it, each having made one request;
// it reports the edge's resident memory idle and with each number of
// connections. (b.N is ignored: one measurement per run.)
func BenchmarkEdgeMemory(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BENCH_EDGE_DIR="+filepath.Join(b.TempDir(), "edge"))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.HasPrefix(addr, "error") {
		b.Fatalf("edge did not start: %q %v", addr, err)
	}
	addr = strings.TrimSpace(addr)
	time.Sleep(500 * time.Millisecond) // let start-up garbage settle
	b.ReportMetric(float64(rssKiB(cmd.Process.Pid))/1024, "idle-MiB")

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
	buf := make([]byte, 512)
	for _, target := range []int{1000, 10000} {
		for len(conns) < target {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatalf("connection %d: %v", len(conns), err)
			}
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		time.Sleep(500 * time.Millisecond)
		b.ReportMetric(float64(rssKiB(cmd.Process.Pid))/1024, fmt.Sprintf("conns%d-MiB", target))
	}
}
