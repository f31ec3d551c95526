// Package httpapi is llamactl's HTTP front end on fasthttp: the management
// API under /api/v1 (the seed contract plus the additions documented in
// openapi.json), the OpenAI-compatible proxy under /v1 that routes by the
// request's model, and the passthrough proxy to one instance. It owns no
// instance state: every read and write goes through a Fleet.
package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Server serves the API. Create it with New.
type Server struct {
	cfg   Config
	fleet Fleet
	ready readyFleet // fleet, if it is one; else nil
	info  ServerInfo
	log   zerolog.Logger
	// access takes the hand-written access lines (Config.AccessLog), nil
	// when they go through log or are not logged at all.
	access io.Writer

	mgmtKeys  *keySet // nil: management API open
	inferKeys *keySet // nil: /v1 open
	cors      *cors   // nil: no CORS

	ups  *upstreams
	keys cowMap[*cachedKey] // by instance name, see instanceKey
	ids  *idGen
	srv  *fasthttp.Server
	spec []byte // openapi.json
}

// New builds a server over fleet. cfg's zero fields take their defaults.
func New(cfg Config, fleet Fleet, server ServerInfo) *Server {
	cfg = cfg.withDefaults()
	if server.CommandTimeout <= 0 {
		server.CommandTimeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, fleet: fleet, info: server, log: zerolog.Nop(), ids: newIDGen(), spec: openAPIDoc}
	s.ready, _ = fleet.(readyFleet)
	if cfg.Logger != nil {
		s.log = *cfg.Logger
		if cfg.AccessLog != nil && s.log.GetLevel() <= zerolog.InfoLevel && zerolog.GlobalLevel() <= zerolog.InfoLevel {
			s.access = cfg.AccessLog
		}
	}
	if ks := newKeySet(cfg.ManagementKeys); cfg.RequireManagementAuth && !ks.empty() {
		s.mgmtKeys = ks
	}
	if ks := newKeySet(cfg.InferenceKeys, cfg.ManagementKeys); cfg.RequireInferenceAuth && !ks.empty() {
		s.inferKeys = ks
	}
	if len(cfg.CORSAllowOrigins) > 0 {
		s.cors = newCORS(cfg.CORSAllowOrigins)
	}
	s.ups = newUpstreams(cfg)
	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		ErrorHandler:                  s.handleReadError,
		Name:                          "llamactl",
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         false,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{&s.log},
	}
	return s
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if slack := coarseSlack(s.cfg); slack > 0 {
		ln = coarseListener{Listener: ln, slack: slack}
	}
	return s.srv.Serve(ln)
}

// Shutdown stops accepting connections and waits, bounded by ctx, for
// in-flight requests (proxied streams included) to finish; then it closes
// idle upstream connections.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	s.ups.closeIdle()
	return err
}

// Handler returns the request handler, for tests and embedding.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// handle is the single entry point: request id, CORS, routing, auth. The
// request id goes on the response last, since a proxied answer replaces
// the response headers.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	var buf [maxRequestIDLen]byte
	id := s.ids.stampRequest(ctx, buf[:0])
	s.route(ctx, id)
	ctx.Response.Header.SetCanonical(hdrRequestID, id)
}

// route answers the request; id is its request id, as stamped on it.
func (s *Server) route(ctx *fasthttp.RequestCtx, id []byte) {
	if s.cors != nil && s.cors.apply(ctx) {
		return
	}
	path := pathString(ctx.Path())
	rt := parseRoute(path)
	if rt.kind == routeNotFound {
		if isOpenAIPath(path) {
			writeOpenAIError(ctx, fasthttp.StatusNotFound, typeInvalidRequest, "not_found", "", "no route for "+path)
			return
		}
		writeError(ctx, fasthttp.StatusNotFound, "no route for "+path, nil)
		return
	}
	if !s.authorized(ctx, rt) {
		return
	}
	switch rt.kind {
	case routeOpenAI:
		s.serveOpenAI(ctx, rt, id)
	case routeModels:
		s.serveModels(ctx)
	case routeModel:
		s.serveModel(ctx, rt.name)
	case routeOpenAPI:
		s.serveOpenAPI(ctx)
	case routeInstances:
		s.serveInstances(ctx)
	case routeInstance:
		s.serveInstance(ctx, rt.name)
	case routeAction:
		s.serveAction(ctx, rt.name, rt.action)
	case routeLogs:
		s.serveLogs(ctx, rt.name)
	case routeProxy:
		s.serveInstanceProxy(ctx, rt)
	case routeServer:
		s.serveServer(ctx, rt.action)
	case routeStatus:
		s.serveStatus(ctx)
	}
}

// authorized checks the key a request to rt presents, and answers 401
// when it is missing or wrong: inference keys (or management keys) on the
// OpenAI surface, management keys elsewhere, none for the API description
// (it holds no secrets and tells clients how to authenticate).
func (s *Server) authorized(ctx *fasthttp.RequestCtx, rt route) bool {
	switch rt.kind {
	case routeOpenAI, routeModels, routeModel:
		if s.inferKeys != nil && !s.inferKeys.match(presentedKey(&ctx.Request.Header)) {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="llamactl"`)
			writeOpenAIError(ctx, fasthttp.StatusUnauthorized, typeAuth, "invalid_api_key", "",
				"missing or invalid API key: send Authorization: Bearer KEY or X-API-Key: KEY")
			return false
		}
	case routeOpenAPI, routeNotFound:
	default:
		if s.mgmtKeys != nil && !s.mgmtKeys.match(presentedKey(&ctx.Request.Header)) {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="llamactl"`)
			writeError(ctx, fasthttp.StatusUnauthorized,
				"missing or invalid API key: send Authorization: Bearer KEY or X-API-Key: KEY", nil)
			return false
		}
	}
	return true
}

// pathString returns p as a string; the most requested OpenAI paths come
// from constants, so proxying them allocates no path.
func pathString(p []byte) string {
	switch string(p) {
	case "/v1/chat/completions":
		return "/v1/chat/completions"
	case "/v1/completions":
		return "/v1/completions"
	case "/v1/embeddings":
		return "/v1/embeddings"
	}
	return string(p)
}

// handleReadError answers a request fasthttp could not read.
// Under /v1 the answer is in OpenAI's shape, as every other answer there.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	s.ids.stamp(ctx)
	var netErr net.Error
	status, code, msg := fasthttp.StatusBadRequest, "invalid_request", "cannot parse the request"
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, msg = fasthttp.StatusRequestEntityTooLarge, "request_too_large", "request body is larger than the limit"
	case errors.As(err, &netErr) && netErr.Timeout():
		status, code, msg = fasthttp.StatusRequestTimeout, "request_timeout", "timed out reading the request"
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		status, code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers are larger than the limit"
	}
	if isOpenAIPath(string(ctx.Path())) {
		writeOpenAIError(ctx, status, typeInvalidRequest, code, "", msg)
		return
	}
	writeError(ctx, status, msg, nil)
}

// isGet tells whether the request is a GET or a HEAD, which every GET
// resource answers the same way without the body (fasthttp leaves it out).
func isGet(ctx *fasthttp.RequestCtx) bool { return ctx.IsGet() || ctx.IsHead() }

// methodNotAllowed answers a known path with an unsupported method.
func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set(fasthttp.HeaderAllow, allow)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, "method "+string(ctx.Method())+" not allowed; use "+allow, nil)
}

// fasthttpLogger sends fasthttp's own messages to zerolog at warn.
type fasthttpLogger struct{ l *zerolog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn().Str("component", "fasthttp").Msgf(format, args...)
}
