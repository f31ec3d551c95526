package httpapi

import (
	"slices"

	"github.com/valyala/fasthttp"
)

// cors answers cross-origin requests from an allow-list. It is built only
// when an allow-list is configured; without one no CORS header is sent
// and browsers keep other origins out.
type cors struct {
	any     bool
	origins []string
}

func newCORS(origins []string) *cors {
	return &cors{any: slices.Contains(origins, "*"), origins: origins}
}

const (
	corsMethods = "GET, POST, PUT, DELETE, OPTIONS"
	corsHeaders = "Authorization, X-API-Key, Content-Type, If-Match, X-Request-Id"
	corsExpose  = "ETag, X-Request-Id"
)

// apply adds CORS headers for an allowed Origin and reports whether it
// answered the request itself (a preflight).
func (c *cors) apply(ctx *fasthttp.RequestCtx) bool {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 {
		return false
	}
	allowed := c.any || slices.Contains(c.origins, string(origin))
	preflight := ctx.IsOptions() && len(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod)) > 0
	if !allowed {
		if preflight {
			writeError(ctx, fasthttp.StatusForbidden, "origin "+string(origin)+" is not allowed", nil)
			return true
		}
		return false
	}
	h := &ctx.Response.Header
	if c.any {
		h.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
	} else {
		h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		h.Add(fasthttp.HeaderVary, fasthttp.HeaderOrigin)
	}
	h.Set(fasthttp.HeaderAccessControlExposeHeaders, corsExpose)
	if !preflight {
		return false
	}
	h.Set(fasthttp.HeaderAccessControlAllowMethods, corsMethods)
	h.Set(fasthttp.HeaderAccessControlAllowHeaders, corsHeaders)
	h.Set(fasthttp.HeaderAccessControlMaxAge, "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return true
}
