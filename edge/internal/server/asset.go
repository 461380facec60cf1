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
}

// optOutCookie is the name of the cookie that means "collect nothing".
const optOutCookie = "optout"

func (s *Server) serveAsset(ctx *fasthttp.RequestCtx, a *Asset) error {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		return statusError(405, "method "+string(ctx.Method())+" not allowed; use GET or HEAD")
	}
	f, cache := a.File, a.CacheControl
	if a.OptedOut != nil && hasCookie(&ctx.Request.Header, optOutCookie) {
		f, cache = a.OptedOut, "no-store"
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding, Cookie")
	h.Set("X-Content-Type-Options", "nosniff")
	// Pages that isolate themselves (COEP) may still load it.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	v := f.Pick(string(ctx.Request.Header.Peek("Accept-Encoding")))
	h.Set("ETag", v.ETag)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && f.NotModified(string(inm)) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return nil
	}
	h.SetContentType(f.ContentType)
	if v.Encoding != "" {
		h.Set("Content-Encoding", v.Encoding)
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
