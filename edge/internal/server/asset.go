package server

import (
	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/internal/asset"
)

// Asset is a file the public server answers GET and HEAD of Path with, from
// memory and without a rule: the browser tracker (/et.js).
type Asset struct {
	Path string
	File *asset.File
	// OptedOut, when set, is answered instead to a browser that sends the
	// optout cookie (the cookie the cookiesync rule honours too). It is
	// never cached, so that a browser that drops the cookie gets File.
	OptedOut *asset.File
	// CacheControl is the Cache-Control header of File's answers.
	CacheControl string

	file, optedOut *prepared // made by New
}

// optOutCookie is the name of the cookie that means "collect nothing".
const optOutCookie = "optout"

// Header names and fixed values of asset answers, as bytes: SetCanonical
// with them skips the key normalisation and value checks of Set, a third
// of the handler's time.
var (
	hdrCacheControl = []byte("Cache-Control")
	hdrVary         = []byte("Vary")
	hdrNosniff      = []byte("X-Content-Type-Options")
	hdrCORP         = []byte("Cross-Origin-Resource-Policy")
	hdrETag         = []byte("ETag")
	hdrEncoding     = []byte("Content-Encoding")
	valVary         = []byte("Accept-Encoding, Cookie")
	valNosniff      = []byte("nosniff")
	valCORP         = []byte("cross-origin") // pages that isolate themselves (COEP) may still load it
	valNoStore      = []byte("no-store")
)

// prepared is a file's answer headers as bytes, made once.
type prepared struct {
	file         *asset.File
	cache, ctype []byte
	etag, enc    map[string][]byte // by Content-Encoding ("", "gzip", "br")
}

func prepare(f *asset.File, cache []byte) *prepared {
	p := &prepared{file: f, cache: cache, ctype: []byte(f.ContentType), etag: map[string][]byte{}, enc: map[string][]byte{}}
	for _, accept := range []string{"", "gzip", "br"} {
		v := f.Pick(accept)
		p.etag[v.Encoding] = []byte(v.ETag)
		p.enc[v.Encoding] = []byte(v.Encoding)
	}
	return p
}

func (s *Server) serveAsset(ctx *fasthttp.RequestCtx, a *Asset) error {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		return statusError(405, "method "+string(ctx.Method())+" not allowed; use GET or HEAD")
	}
	p := a.file
	if a.optedOut != nil && hasCookie(&ctx.Request.Header, optOutCookie) {
		p = a.optedOut
	}
	h := &ctx.Response.Header
	h.SetCanonical(hdrCacheControl, p.cache)
	h.SetCanonical(hdrVary, valVary)
	h.SetCanonical(hdrNosniff, valNosniff)
	h.SetCanonical(hdrCORP, valCORP)
	v := p.file.Pick(string(ctx.Request.Header.Peek("Accept-Encoding")))
	h.SetCanonical(hdrETag, p.etag[v.Encoding])
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && p.file.NotModified(string(inm)) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return nil
	}
	h.SetContentTypeBytes(p.ctype)
	if v.Encoding != "" {
		h.SetCanonical(hdrEncoding, p.enc[v.Encoding])
	}
	ctx.SetBody(v.Body) // the variant is immutable; SetBody copies it into the response
	return nil
}

// hasCookie reports whether the request has a cookie named name, with or
// without a value (a bare "optout" is a cookie of that name to the
// cookiesync rule too; fasthttp gives it an empty name and the word as
// value).
func hasCookie(h *fasthttp.RequestHeader, name string) bool {
	for k, v := range h.Cookies() {
		if string(k) == name || len(k) == 0 && string(v) == name {
			return true
		}
	}
	return false
}
