package server

import (
	"slices"

	"github.com/valyala/fasthttp"
)

// CORS lets pages on other origins call a route from a browser.
type CORS struct {
	// AllowedOrigins are exact origins ("https://www.example.com") or "*".
	AllowedOrigins []string
}

func (c *CORS) allowed(origin string) bool {
	return slices.Contains(c.AllowedOrigins, "*") || slices.Contains(c.AllowedOrigins, origin)
}

// corsHeaders adds the response headers for an allowed Origin. They are set
// before the request is handled, so error answers carry them too and the
// page can read why its event was refused.
func (c *CORS) headers(ctx *fasthttp.RequestCtx) {
	origin := string(ctx.Request.Header.Peek("Origin"))
	ctx.Response.Header.Add("Vary", "Origin")
	if origin == "" || !c.allowed(origin) {
		return
	}
	ctx.Response.Header.Set("Access-Control-Allow-Origin", origin)
}

// preflight answers an OPTIONS request.
func (c *CORS) preflight(ctx *fasthttp.RequestCtx, methods string) error {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" {
		return statusError(400, "OPTIONS without Origin is not a CORS preflight")
	}
	if !c.allowed(origin) {
		return statusError(403, "origin "+origin+" may not post here (edge.eye.allowed_origins)")
	}
	ctx.Response.Header.Set("Access-Control-Allow-Methods", methods)
	ctx.Response.Header.Set("Access-Control-Allow-Headers", "Content-Type")
	ctx.Response.Header.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(204)
	return nil
}
