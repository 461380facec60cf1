package dist_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/dist"
)

// TestTheTableIsTheTruth checks that the table of built-in rules and the
// files agree: every row has its module, native twin, vectors and
// directories, and every wasm/cmd/<name> and wasm/dist/<name>.wasm (what
// `make wasm` builds) has a row.
func TestTheTableIsTheTruth(t *testing.T) {
	names := dist.Names()
	paths := map[string]string{}
	for _, b := range dist.Builtins() {
		if len(b.Module) == 0 {
			t.Errorf("%s: no module", b.Name)
		}
		if b.Native == nil {
			t.Errorf("%s: no native twin", b.Name)
		}
		if b.Vectors == nil || len(b.Vectors()) == 0 || len(b.Vectors()[0].Cases) == 0 {
			t.Errorf("%s: no test vectors", b.Name)
		}
		if len(b.Paths) == 0 || len(b.Methods) == 0 {
			t.Errorf("%s: no route (paths %v, methods %v)", b.Name, b.Paths, b.Methods)
		}
		for _, p := range b.Paths {
			if !strings.HasPrefix(p, "/") {
				t.Errorf("%s: path %q does not start with /", b.Name, p)
			}
			if other, dup := paths[p]; dup {
				t.Errorf("path %s is decided by both %s and %s", p, other, b.Name)
			}
			paths[p] = b.Name
		}
		for _, dir := range []string{"../rules/" + b.Name, "../cmd/" + b.Name} {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Errorf("%s: %s is missing", b.Name, filepath.Clean("wasm/"+strings.TrimPrefix(dir, "../")))
			}
		}
		if got, ok := dist.Lookup(b.Name); !ok || got.Name != b.Name {
			t.Errorf("Lookup(%q) = %q, %v", b.Name, got.Name, ok)
		}
	}
	if _, ok := dist.Lookup("nosuchrule"); ok {
		t.Error("Lookup found a rule that is not in the table")
	}
	if dist.Vectors("nosuchrule") != nil {
		t.Error("Vectors of an unknown rule are not nil")
	}

	cmds, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if c.IsDir() && !slices.Contains(names, c.Name()) {
			t.Errorf("wasm/cmd/%s is built by make wasm but has no row in the table", c.Name())
		}
	}
	wasms, err := filepath.Glob("*.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wasms {
		if n := strings.TrimSuffix(w, ".wasm"); !slices.Contains(names, n) {
			t.Errorf("wasm/dist/%s has no row in the table", w)
		}
	}
}
