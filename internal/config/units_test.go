package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"1048576", MiB},
		{"512KiB", 512 * KiB},
		{"64MiB", 64 * MiB},
		{"1GiB", GiB},
		{"2TiB", 2 * TiB},
		{"10MB", 10_000_000},
		{"3KB", 3000},
		{"7B", 7},
		{" 64 MiB ", 64 * MiB},
		{"64mib", 64 * MiB},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "10 apples", "64M", "0x10", "1_000", "9223372036854775808", "8388608TiB"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{MiB, "1MiB"},
		{64 * MiB, "64MiB"},
		{1536 * KiB, "1536KiB"},
		{10 * MB, "10MB"},
		{1_000_001, "1000001B"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"250ms", 250 * time.Millisecond},
		{"10s", 10 * time.Second},
		{"1m30s", 90 * time.Second},
		{"0", 0},
		{"0s", 0},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got.Duration() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "10", "ten seconds", "1x"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want an error", in)
		}
	}
}

// TestUnitsYAML checks both types through yaml.v3, including that a bad
// value is reported with its line and that both bad values are reported.
func TestUnitsYAML(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d"`
		S ByteSize `yaml:"s"`
	}
	var v doc
	if err := yaml.Unmarshal([]byte("d: 250ms\ns: 1048576\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.Duration() != 250*time.Millisecond || v.S != MiB {
		t.Fatalf("got %+v", v)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "d: 250ms\ns: 1MiB\n" {
		t.Fatalf("marshal = %q", out)
	}

	err = yaml.Unmarshal([]byte("d: 10\ns: [1]\n"), &v)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`line 1: "10" is not a duration`, "line 2: expected a byte size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "64MiB", "10MB", "1 GiB", "9223372036854775807", "8388607TiB", "-1", "1.5KB", "kib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, b)
		}
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Fatalf("ParseByteSize(%q) = %d, whose String %q parses to %d, %v", s, b, b.String(), back, err)
		}
	})
}

func TestRate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		perSec float64
		str    string
	}{
		{"20/s", 20, "20/s"},
		{"600/m", 10, "10/s"},
		{"90/m", 1.5, "90/m"},
		{"3600/h", 1, "1/s"},
		{"1/h", 1.0 / 3600, "1/h"},
		{"0.5/s", 0.5, "30/m"},
		{" 5 / s ", 5, "5/s"},
		{"0", 0, "0"},
		{"0/s", 0, "0"},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got.PerSecond() != tc.perSec {
			t.Errorf("ParseRate(%q) = %v, %v; want %v per second", tc.in, got.PerSecond(), err, tc.perSec)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tc.in, s, tc.str)
		}
		if back, err := ParseRate(got.String()); err != nil || back != got {
			t.Errorf("%q does not parse back to itself: %v, %v", got.String(), back, err)
		}
	}
	for _, in := range []string{"", "20", "20/d", "-1/s", "/s", "1e3/s", "inf/s", "NaN/s", "0x10/s", "ten/s", "1/s/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, r)
		}
	}
}
