// Package asset serves static files from memory, compressed once when they
// are loaded: gzip and brotli variants are made up front, so that answering
// costs a lookup and a copy. Each variant has a strong ETag derived from the
// file's content.
package asset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// File is one file and its compressed variants. It is immutable.
type File struct {
	Name        string
	ContentType string
	tag         string    // hex of the content's hash, unquoted
	raw, gz, br []byte    // gz, br nil when compression does not make it smaller
	etags       [3]string // quoted, of raw, gz and br
}

// New compresses body for serving. Brotli at its best level takes a few
// milliseconds per 10 KiB, which is paid once here.
func New(name, contentType string, body []byte) (*File, error) {
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:12])
	f := &File{Name: name, ContentType: contentType, tag: tag, raw: body,
		etags: [3]string{`"` + tag + `"`, `"` + tag + `-gz"`, `"` + tag + `-br"`}}

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("asset %s: %w", name, err)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("asset %s: gzip: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("asset %s: gzip: %w", name, err)
	}
	if gz.Len() < len(body) {
		f.gz = gz.Bytes()
	}

	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	if _, err := bw.Write(body); err != nil {
		return nil, fmt.Errorf("asset %s: brotli: %w", name, err)
	}
	if err := bw.Close(); err != nil {
		return nil, fmt.Errorf("asset %s: brotli: %w", name, err)
	}
	if br.Len() < len(body) {
		f.br = br.Bytes()
	}
	return f, nil
}

// Variant is what to send for one request.
type Variant struct {
	Body     []byte
	Encoding string // Content-Encoding: "", "gzip" or "br"
	ETag     string // quoted; differs per encoding, as a strong ETag must
}

// Pick returns the smallest variant that acceptEncoding (the request's
// Accept-Encoding header) allows: brotli, gzip or the file as it is.
func (f *File) Pick(acceptEncoding string) Variant {
	if f.br != nil && accepts(acceptEncoding, "br") {
		return Variant{Body: f.br, Encoding: "br", ETag: f.etags[2]}
	}
	if f.gz != nil && accepts(acceptEncoding, "gzip") {
		return Variant{Body: f.gz, Encoding: "gzip", ETag: f.etags[1]}
	}
	return Variant{Body: f.raw, ETag: f.etags[0]}
}

// Size returns the size of the file, and of its gzip and brotli variants (0
// when not made).
func (f *File) Size() (raw, gzip, brotli int) { return len(f.raw), len(f.gz), len(f.br) }

// NotModified reports whether ifNoneMatch (the request's If-None-Match
// header) names any variant of this file's content: they all decode to the
// same bytes, so a cached copy of any of them is current.
func (f *File) NotModified(ifNoneMatch string) bool {
	for ifNoneMatch != "" {
		var t string
		t, ifNoneMatch, _ = strings.Cut(ifNoneMatch, ",")
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" {
			return true
		}
		t = strings.Trim(t, `"`)
		t = strings.TrimSuffix(strings.TrimSuffix(t, "-br"), "-gz")
		if t == f.tag {
			return true
		}
	}
	return false
}

// accepts reports whether the Accept-Encoding header h allows coding with a
// q-value above zero, by name or by "*". It allocates nothing.
func accepts(h, coding string) bool {
	star := false
	for h != "" {
		var part string
		part, h, _ = strings.Cut(h, ",")
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		q := 1.0
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch {
		case strings.EqualFold(name, coding):
			return q > 0
		case name == "*":
			star = q > 0
		}
	}
	return star
}
