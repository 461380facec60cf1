package loadgen

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestRunCountsStatuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/bad" {
			ctx.SetStatusCode(500)
		}
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	res := Run(context.Background(), Options{Addr: ln.Addr().String(), Concurrency: 4, Requests: 200,
		Make: func(i int, req *fasthttp.Request) {
			path := "/ok"
			if i%4 == 0 {
				path = "/bad"
			}
			req.SetRequestURI("http://" + ln.Addr().String() + path)
		}})
	if res.Requests != 200 || res.ByStatus[200] != 150 || res.ByStatus[500] != 50 || res.Errors != 50 {
		t.Fatalf("%v", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Fatalf("percentiles out of order: %v", res)
	}
	rated := Run(context.Background(), Options{Addr: ln.Addr().String(), Concurrency: 2, Rate: 1000, Requests: 100,
		Make: func(i int, req *fasthttp.Request) { req.SetRequestURI("http://" + ln.Addr().String() + "/ok") }})
	if rated.Requests != 100 || rated.Errors != 0 || rated.ByStatus[200] != 100 {
		t.Fatalf("fixed rate: %v", rated)
	}
}
