package httpapi

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openAPIDoc is the project's own API description (OpenAPI 3): the seed
// contract, corrected where it is silent or wrong, with every addition.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI answers GET /api/v1/openapi.json.
func (s *Server) serveOpenAPI(ctx *fasthttp.RequestCtx) {
	if !isGet(ctx) {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(s.spec)
}
