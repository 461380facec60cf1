package asset

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

func TestPickDecodesToTheFile(t *testing.T) {
	body := []byte(strings.Repeat("function edgetrack() { return 42; }\n", 50))
	f, err := New("x.js", "text/javascript", body)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ accept, enc string }{
		{"", ""},
		{"gzip, deflate, br, zstd", "br"},
		{"gzip", "gzip"},
		{"br;q=0, gzip;q=0.5", "gzip"},
		{"gzip;q=0", ""},
		{"*", "br"},
		{"*, br;q=0", "gzip"},
		{"identity", ""},
	} {
		v := f.Pick(c.accept)
		if v.Encoding != c.enc {
			t.Errorf("Accept-Encoding %q: %q, want %q", c.accept, v.Encoding, c.enc)
			continue
		}
		var r io.Reader = bytes.NewReader(v.Body)
		switch v.Encoding {
		case "gzip":
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatal(err)
			}
		case "br":
			r = brotli.NewReader(r)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%q: the %q variant does not decode to the file (%v)", c.accept, v.Encoding, err)
		}
		if !f.NotModified(v.ETag) || !f.NotModified(`W/`+v.ETag+`, "other"`) {
			t.Errorf("%q: its own ETag %s is not current", c.accept, v.ETag)
		}
	}
	if f.Pick("br").ETag == f.Pick("").ETag {
		t.Error("the brotli and identity variants share an ETag")
	}
	other, _ := New("y.js", "text/javascript", append(body, ' '))
	if f.NotModified(other.Pick("").ETag) || f.NotModified("") {
		t.Error("another file's ETag (or none) counts as current")
	}
	if raw, gz, br := f.Size(); raw != len(body) || gz == 0 || br == 0 || br >= raw {
		t.Errorf("sizes %d %d %d", raw, gz, br)
	}
}

func TestIncompressibleHasNoVariant(t *testing.T) {
	f, err := New("tiny", "text/plain", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Pick("br, gzip"); v.Encoding != "" || string(v.Body) != "a" {
		t.Fatalf("%+v", v)
	}
}

// FuzzPick: any Accept-Encoding and If-None-Match header (bytes from the
// internet) picks a variant that decodes to the file, and its own ETag is
// always current.
func FuzzPick(f *testing.F) {
	for _, s := range []string{"", "gzip", "br;q=0, gzip;q=0.5", "*;q=0", "gzip;q=abc", ",,;;=", `W/"x", "y"`, "*", "br;q=1;x=2, *"} {
		f.Add(s, s)
	}
	body := []byte(strings.Repeat("fuzz me gently ", 40))
	file, err := New("f.js", "text/javascript", body)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, accept, inm string) {
		v := file.Pick(accept)
		var r io.Reader = bytes.NewReader(v.Body)
		switch v.Encoding {
		case "gzip":
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatal(err)
			}
		case "br":
			r = brotli.NewReader(r)
		case "":
		default:
			t.Fatalf("encoding %q", v.Encoding)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("Accept-Encoding %q: %q variant does not decode (%v)", accept, v.Encoding, err)
		}
		if !file.NotModified(inm + "," + v.ETag) {
			t.Fatalf("If-None-Match %q with the current ETag is not current", inm+","+v.ETag)
		}
		file.NotModified(inm)
	})
}
