package procs

import (
	"os"
	"runtime"
	"testing"
)

func TestAtLeast(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(1)
	if got := AtLeast(4); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("with GOMAXPROCS set in the environment: AtLeast(4) = %d, in effect %d; want the operator's 1", got, runtime.GOMAXPROCS(0))
	}
}

func TestAtLeastRaises(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in this test's environment")
	}
	runtime.GOMAXPROCS(1)
	if got := AtLeast(4); got != 4 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("AtLeast(4) from 1 = %d, in effect %d", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(8)
	if got := AtLeast(4); got != 8 || runtime.GOMAXPROCS(0) != 8 {
		t.Errorf("AtLeast(4) from 8 = %d, in effect %d; it must never lower", got, runtime.GOMAXPROCS(0))
	}
}
