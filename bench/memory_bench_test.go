package bench

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the benchmark binary run a server as a child process (see
// serveChild), and says how the load benchmarks split the CPUs.
func TestMain(m *testing.M) {
	if serveChild() {
		return
	}
	flag.Parse()
	if load, server, ok := split(); ok && flag.Lookup("test.bench").Value.String() != "" {
		fmt.Printf("cpu split: load generator on CPU %s, server on CPU %s\n", cpuList(load), cpuList(server))
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
	srv := startServerProcess(b, serveEdge, onDisk)
	addr := srv.addr
	time.Sleep(500 * time.Millisecond) // let start-up garbage settle
	b.ReportMetric(float64(rssKiB(srv.pid))/1024, "idle-MiB")

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
		b.ReportMetric(float64(rssKiB(srv.pid))/1024, fmt.Sprintf("conns%d-MiB", target))
	}
}
