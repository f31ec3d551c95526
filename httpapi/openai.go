package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"llamactl/reconcile"
	"llamactl/runtime"
)

// serveOpenAI proxies POST /v1/* to the instance serving the body's model.
// id is the request id.
func (s *Server) serveOpenAI(ctx *fasthttp.RequestCtx, rt route, id []byte) {
	start := ctx.Time() // read by the server as it called the handler
	if start.IsZero() {
		start = time.Now()
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalidRequest, "method_not_allowed", "",
			"method "+string(ctx.Method())+" not allowed on "+rt.rest+"; use POST")
		s.accessLog(ctx, &proxyCall{start: start}, fasthttp.StatusMethodNotAllowed, int64(len(ctx.Response.Body())), nil)
		return
	}
	model, stream, err := requestModel(ctx.Request.Header.ContentType(), ctx.Request.Body())
	if err != nil {
		code, param := "invalid_request", ""
		switch {
		case errors.Is(err, errNoModel):
			code, param = "model_required", "model"
			err = errors.New("request has no \"model\": name an instance or its alias (GET /v1/models lists them)")
		case errors.As(err, new(badModel)):
			param = "model"
		}
		writeOpenAIError(ctx, fasthttp.StatusBadRequest, typeInvalidRequest, code, param, err.Error())
		s.accessLog(ctx, &proxyCall{start: start}, fasthttp.StatusBadRequest, int64(len(ctx.Response.Body())), nil)
		return
	}
	var name, addr string
	var release func()
	ok := false
	if s.ready != nil {
		name, addr, release, ok = s.ready.AcquireReady(model)
	}
	if !ok {
		actx := lazyDeadlineAt(start.Add(s.cfg.AcquireTimeout))
		name, addr, release, err = s.fleet.Acquire(actx, model)
		actx.stop()
		if err != nil {
			s.writeAcquireError(ctx, model, err)
			s.accessLog(ctx, &proxyCall{model: model, start: start}, ctx.Response.StatusCode(), int64(len(ctx.Response.Body())), err)
			return
		}
		if s.abandoned(ctx, &proxyCall{instance: name, model: model, start: start}, time.Since(start), release) {
			return
		}
	}
	pc := proxyCall{
		addr: addr, path: upstreamPath(ctx.URI().PathOriginal(), rt.prefix, rt.rest), instance: name, model: model,
		apiKey: s.instanceKeyAt(name, start), release: release, start: start,
	}
	if stream {
		s.forwardStream(ctx, pc)
		return
	}
	s.forwardWhole(ctx, pc, id)
}

// abandoned tells whether the client left while its request waited for
// the instance (woken on demand, or restarting): then the request is not
// sent, so that the model does not generate for nobody, and it is logged
// with status 499 (client closed request, as nginx has it).
//
// Only a wait of waitWorthChecking or more is checked: a ready instance
// costs no syscall. A client that only half-closed its side (rare for
// HTTP) is taken for gone too, as nginx takes it.
func (s *Server) abandoned(ctx *fasthttp.RequestCtx, pc *proxyCall, waited time.Duration, release func()) bool {
	if waited < waitWorthChecking || !clientGone(ctx.Conn()) {
		return false
	}
	release()
	s.clientLeft(ctx, pc, "client went away while the instance got ready")
	return true
}

// clientLeft answers (for a client that only half-closed) and logs a
// request whose client left before its answer, with status 499.
func (s *Server) clientLeft(ctx *fasthttp.RequestCtx, pc *proxyCall, msg string) {
	if isOpenAIPath(string(ctx.Path())) {
		writeOpenAIError(ctx, statusClientClosed, typeInvalidRequest, "client_closed_request", "", msg)
	} else {
		writeError(ctx, statusClientClosed, msg, nil)
	}
	ctx.SetConnectionClose()
	s.accessLog(ctx, pc, statusClientClosed, int64(len(ctx.Response.Body())), errors.New(msg))
}

// waitWorthChecking is the wait for an instance after which abandoned
// looks at the client.
const waitWorthChecking = 20 * time.Millisecond

// statusClientClosed is the status logged for a request whose client left
// before it could be answered.
const statusClientClosed = 499

// instanceKey returns the api_key an instance's llama-server requires, if
// any: the proxy authenticates to it on the caller's behalf. Fleet.Get
// copies a whole status, too much for every proxied request, so the answer
// is remembered for keyTTL; a changed key restarts the instance, which
// takes longer than that.
func (s *Server) instanceKey(name string) string { return s.instanceKeyAt(name, time.Now()) }

// instanceKeyAt is instanceKey at a time the caller already read.
func (s *Server) instanceKeyAt(name string, at time.Time) string {
	now := at.UnixNano()
	if k, ok := s.keys.Load(name); ok {
		if now-k.at < int64(keyTTL) {
			return k.key
		}
	}
	key := ""
	if st, err := s.fleet.Get(name); err == nil && st.Spec != nil && st.Spec.APIKey != nil {
		key = *st.Spec.APIKey
	}
	s.keys.Store(name, &cachedKey{key: key, at: now})
	return key
}

// keyTTL is how long instanceKey trusts a looked-up key.
const keyTTL = time.Second

type cachedKey struct {
	key string
	at  int64 // unix nanoseconds of the lookup
}

// writeAcquireError answers a failed Acquire in OpenAI's shape.
func (s *Server) writeAcquireError(ctx *fasthttp.RequestCtx, model string, err error) {
	switch {
	case errors.Is(err, reconcile.ErrNotFound):
		writeOpenAIError(ctx, fasthttp.StatusBadRequest, typeInvalidRequest, "model_not_found", "model",
			"model \""+model+"\" is not served here: no instance or alias of that name (GET /v1/models lists them)")
	case errors.Is(err, runtime.ErrStopped):
		writeOpenAIError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, "model_stopped", "model",
			"model \""+model+"\" is stopped; start its instance (POST /api/v1/instances/{name}/start) or set state: running in its spec")
	case errors.Is(err, runtime.ErrFailed):
		writeOpenAIError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, "model_failed", "model",
			"model \""+model+"\" has failed past its restart budget; see GET /api/v1/instances/{name} and its logs, then restart it: "+withoutLog(err.Error()))
	case errors.Is(err, runtime.ErrNotReady), errors.Is(err, context.DeadlineExceeded):
		writeOpenAIError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, "model_not_ready", "model",
			"model \""+model+"\" did not become ready: "+withoutLog(err.Error()))
	default:
		writeOpenAIError(ctx, fasthttp.StatusInternalServerError, typeServer, "internal_error", "",
			"route model \""+model+"\": "+err.Error())
	}
}

// withoutLog cuts the instance's last log lines off an error for an
// inference client: they may hold prompts and paths, and the management
// API shows them to those allowed to see them.
func withoutLog(msg string) string {
	msg, _, _ = strings.Cut(msg, "; last log lines")
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

// openAIModel is one entry of GET /v1/models.
type openAIModel struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	OwnedBy string   `json:"owned_by"`
	Phase   string   `json:"phase"`
	Aliases []string `json:"aliases,omitempty"`
}

type openAIModelList struct {
	Object string        `json:"object"`
	Data   []openAIModel `json:"data"`
}

func toOpenAIModel(st *reconcile.InstanceStatus) openAIModel {
	m := openAIModel{ID: st.Name, Object: "model", Created: unixOrZero(st.Created), OwnedBy: "llamactl",
		Phase: string(st.Runtime.Phase)}
	if m.Phase == "" {
		m.Phase = string(runtime.PhaseStopped)
	}
	for _, a := range st.Spec.Aliases() {
		if a != st.Name {
			m.Aliases = append(m.Aliases, a)
		}
	}
	return m
}

// serveModels answers GET /v1/models with every instance.
func (s *Server) serveModels(ctx *fasthttp.RequestCtx) {
	if !isGet(ctx) {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalidRequest, "method_not_allowed", "", "use GET")
		return
	}
	list := s.fleet.List()
	out := openAIModelList{Object: "list", Data: make([]openAIModel, 0, len(list))}
	for i := range list {
		out.Data = append(out.Data, toOpenAIModel(&list[i]))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// serveModel answers GET /v1/models/{id}, id being an instance's name or
// its alias.
func (s *Server) serveModel(ctx *fasthttp.RequestCtx, id string) {
	if !isGet(ctx) {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		writeOpenAIError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalidRequest, "method_not_allowed", "", "use GET")
		return
	}
	st, err := s.fleet.Get(id)
	if err != nil {
		// An alias names the instance as well as its name does.
		for _, a := range s.fleet.List() {
			if slices.Contains(a.Spec.Aliases(), id) {
				st, err = a, nil
				break
			}
		}
	}
	if err != nil {
		writeOpenAIError(ctx, fasthttp.StatusNotFound, typeInvalidRequest, "model_not_found", "model",
			"model \""+id+"\" does not exist")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, toOpenAIModel(&st))
}

// writeJSON answers with v encoded as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "encode response: "+err.Error(), nil)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(b)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
