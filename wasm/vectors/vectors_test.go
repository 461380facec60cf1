package vectors_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

func runtime(t *testing.T) *host.Runtime {
	rt, err := host.New(context.Background(), host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func TestBuiltinVectorsPassOnBuiltinRule(t *testing.T) {
	wasm, _ := dist.Rule("hamustro")
	suites := dist.Vectors("hamustro")
	if len(suites) == 0 || len(suites[0].Cases) < 10 {
		t.Fatalf("too few built-in vectors: %+v", suites)
	}
	if err := vectors.Run(context.Background(), runtime(t), "hamustro", wasm, suites...); err != nil {
		t.Fatal(err)
	}
}

const file = `{
  "settings": {"secrets": ["ultrasafesecret"]},
  "vectors": [
    {"name": "unsigned", "request": {"path": "/api/v1/track", "body": "x"}, "expect": {"status": 401, "message_contains": "X-Hamustro-Time"}},
    {"name": "wrong expectation", "request": {"path": "/api/v1/track", "body": "x"}, "expect": {"status": 200}}
  ]
}`

func TestUploadedVectors(t *testing.T) {
	f, err := vectors.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	wasm, _ := dist.Rule("hamustro")
	err = vectors.Run(context.Background(), runtime(t), "hamustro", wasm, f.Suite("uploaded", "hamustro"))
	if !errors.Is(err, vectors.ErrFailed) || !strings.Contains(err.Error(), "wrong expectation") || strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("err = %v, want exactly the wrong expectation to fail", err)
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `{`,
		"unknown field": `{"vectorz": []}`,
		"no status":     `{"vectors": [{"request": {}, "expect": {}}]}`,
		"both bodies":   `{"vectors": [{"request": {"body": "a", "body_base64": "YQ=="}, "expect": {"status": 200}}]}`,
		"bad base64":    `{"vectors": [{"request": {"body_base64": "!!"}, "expect": {"status": 200}}]}`,
	} {
		if _, err := vectors.Parse([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestBuiltinVectorsPassOnEveryBuiltinRule(t *testing.T) {
	for _, name := range dist.Names() {
		wasm, _ := dist.Rule(name)
		suites := dist.Vectors(name)
		if len(suites) == 0 || len(suites[0].Cases) < 10 {
			t.Fatalf("%s: too few built-in vectors", name)
		}
		if err := vectors.Run(context.Background(), runtime(t), name, wasm, suites...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestFailedError checks the details Run's error carries: the failing cases
// when cases fail, the suite and the load error when the module does not
// load under a suite's configuration.
func TestFailedError(t *testing.T) {
	f, err := vectors.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	wasm, _ := dist.Rule("hamustro")
	rt := runtime(t)
	err = vectors.Run(context.Background(), rt, "hamustro", wasm, f.Suite("uploaded", "hamustro"))
	fe, ok := errors.AsType[*vectors.FailedError](err)
	if !ok || fe.Load != nil || len(fe.Cases) != 1 || !strings.HasPrefix(fe.Cases[0], "uploaded/wrong expectation: ") {
		t.Fatalf("err = %#v, want one failing case, uploaded/wrong expectation", err)
	}
	if fe.Summary() != "1 case(s)" || err.Error() != "vectors: failed: 1 case(s):\n  "+fe.Cases[0] {
		t.Errorf("summary %q, message %q", fe.Summary(), err.Error())
	}

	noSecrets := vectors.Suite{Name: "bare", Config: &abi.Config{Rule: "hamustro"}}
	err = vectors.Run(context.Background(), rt, "hamustro", wasm, noSecrets)
	fe, ok = errors.AsType[*vectors.FailedError](err)
	if !ok || fe.Suite != "bare" || !errors.Is(err, host.ErrConfig) || !errors.Is(err, vectors.ErrFailed) || len(fe.Cases) != 0 {
		t.Fatalf("err = %#v, want the bare suite's configuration refused", err)
	}
	if want := "suite bare: " + fe.Load.Error(); fe.Summary() != want || err.Error() != "vectors: failed: "+want {
		t.Errorf("summary %q, message %q; want %q", fe.Summary(), err.Error(), want)
	}
}
