package httpapi

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"llamactl/reconcile"
	"llamactl/runtime"
	"llamactl/spec"
)

// instanceJSON is the API's Instance: the seed's name, created and running
// (true only when healthy) plus the additions documented in openapi.json.
type instanceJSON struct {
	Name       string                `json:"name"`
	Created    int64                 `json:"created"`
	Running    bool                  `json:"running"`
	Phase      string                `json:"phase"`
	Status     string                `json:"status"`
	Port       int                   `json:"port,omitempty"`
	PID        int                   `json:"pid,omitempty"`
	Restarts   int                   `json:"restarts"`
	LastError  string                `json:"last_error,omitempty"`
	Error      string                `json:"error,omitempty"`
	Conditions []reconcile.Condition `json:"conditions"`
	Source     string                `json:"source,omitempty"`
	Format     string                `json:"format,omitempty"`
	Revision   string                `json:"revision,omitempty"`
	ETag       string                `json:"etag,omitempty"`
	Sync       string                `json:"sync,omitempty"`
	Options    *spec.Spec            `json:"options,omitempty"`
}

func toInstance(st *reconcile.InstanceStatus) instanceJSON {
	in := instanceJSON{
		Name:       st.Name,
		Created:    unixOrZero(st.Created),
		Running:    st.Runtime.Phase == runtime.PhaseRunning,
		Phase:      string(st.Runtime.Phase),
		Status:     st.Desired,
		Port:       st.Runtime.Port,
		PID:        st.Runtime.PID,
		Restarts:   st.Runtime.Restarts,
		LastError:  st.Runtime.LastError,
		Error:      st.Error,
		Conditions: st.Conditions,
		Source:     st.File,
		Format:     string(st.Format),
		Revision:   st.Revision,
		ETag:       st.ETag,
		Sync:       st.Sync,
	}
	if in.Phase == "" {
		in.Phase = string(runtime.PhaseStopped)
	}
	if in.Conditions == nil {
		in.Conditions = []reconcile.Condition{}
	}
	if st.Spec != nil {
		in.Options = st.Spec.Redacted()
	}
	return in
}

// writeInstance answers with one instance and its ETag.
func writeInstance(ctx *fasthttp.RequestCtx, status int, st *reconcile.InstanceStatus) {
	if st.ETag != "" {
		ctx.Response.Header.Set(fasthttp.HeaderETag, `"`+st.ETag+`"`)
	}
	writeJSON(ctx, status, toInstance(st))
}

// checkName answers 400 and returns false for a name breaking the rule.
func checkName(ctx *fasthttp.RequestCtx, name string) bool {
	if validName(name) {
		return true
	}
	writeError(ctx, fasthttp.StatusBadRequest, "invalid instance name "+strconv.Quote(name)+": "+nameRule, nil)
	return false
}

// serveInstances answers GET /api/v1/instances.
func (s *Server) serveInstances(ctx *fasthttp.RequestCtx) {
	if !isGet(ctx) {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	list := s.fleet.List()
	out := make([]instanceJSON, len(list))
	for i := range list {
		out[i] = toInstance(&list[i])
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// serveInstance answers GET, POST, PUT and DELETE /api/v1/instances/{name}.
func (s *Server) serveInstance(ctx *fasthttp.RequestCtx, name string) {
	if !checkName(ctx, name) {
		return
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		st, err := s.fleet.Get(name)
		if err != nil {
			writeFleetError(ctx, err)
			return
		}
		writeInstance(ctx, fasthttp.StatusOK, &st)
	case fasthttp.MethodPost:
		sp, ok := decodeSpec(ctx)
		if !ok {
			return
		}
		f, ok := formatParam(ctx)
		if !ok {
			return
		}
		st, err := s.fleet.Create(name, sp, f)
		if err != nil {
			writeFleetError(ctx, err)
			return
		}
		ctx.Response.Header.Set(fasthttp.HeaderLocation, apiBase+"/instances/"+name)
		writeInstance(ctx, fasthttp.StatusCreated, &st)
	case fasthttp.MethodPut:
		sp, ok := decodeSpec(ctx)
		if !ok {
			return
		}
		st, err := s.update(name, sp, ctx.Request.Body(), ifMatch(ctx))
		if err != nil {
			writeFleetError(ctx, err)
			return
		}
		writeInstance(ctx, fasthttp.StatusOK, &st)
	case fasthttp.MethodDelete:
		if err := s.fleet.Delete(name, ifMatch(ctx)); err != nil {
			writeFleetError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		methodNotAllowed(ctx, "GET, HEAD, POST, PUT, DELETE")
	}
}

// decodeSpec reads a JSON spec from the body: 415 unless the body is
// application/json, 400 with located messages if it does not decode.
func decodeSpec(ctx *fasthttp.RequestCtx) (*spec.Spec, bool) {
	ct := ctx.Request.Header.ContentType()
	if mt, _, _ := bytes.Cut(ct, []byte(";")); !bytes.EqualFold(bytes.TrimSpace(mt), []byte(contentJSON)) {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType,
			"request body must be application/json (got "+strconv.Quote(string(ct))+")", nil)
		return nil, false
	}
	sp, err := spec.Decode(ctx.Request.Body(), spec.JSON, "request body")
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid spec: "+err.Error(), errorDetails(err))
		return nil, false
	}
	return sp, true
}

// formatParam reads ?format= (yaml, toml or json) for the new spec file;
// empty means the fleet's default (YAML).
func formatParam(ctx *fasthttp.RequestCtx) (spec.Format, bool) {
	switch f := spec.Format(ctx.QueryArgs().Peek("format")); f {
	case "", spec.YAML, spec.TOML, spec.JSON:
		return f, true
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "format must be yaml, toml or json", nil)
		return "", false
	}
}

// ifMatch is the request's If-Match, as the fleet takes it (a list of
// entity tags, or *; see reconcile.ETagMatches), compared with the file
// on disk as it is written.
func ifMatch(ctx *fasthttp.RequestCtx) string {
	return strings.TrimSpace(string(ctx.Request.Header.Peek(fasthttp.HeaderIfMatch)))
}

// update is PUT's write. Secrets (api_key, hf_token) are never shown, so
// a body that leaves one out keeps the instance's current value: a client
// that reads an instance, changes a field and writes it back must not
// drop its key. An empty string removes it, and so does an api_key_file
// in the body (a key moved to a file). The current values are read as the
// file is written (fillUpdater), so no write in between is lost.
func (s *Server) update(name string, sp *spec.Spec, body []byte, match string) (reconcile.InstanceStatus, error) {
	keepKey, keepToken := !gjson.GetBytes(body, "api_key").Exists(), !gjson.GetBytes(body, "hf_token").Exists()
	if sp.APIKey != nil && *sp.APIKey == "" {
		sp.APIKey = nil
	}
	if sp.HFToken != nil && *sp.HFToken == "" {
		sp.HFToken = nil
	}
	fu, ok := s.fleet.(fillUpdater)
	if !ok || !keepKey && !keepToken {
		return s.fleet.Update(name, sp, match)
	}
	return fu.UpdateFrom(name, sp, match, func(cur, next *spec.Spec) {
		if cur == nil {
			return
		}
		if keepKey && next.APIKeyFile == nil {
			next.APIKey = cur.APIKey
		}
		if keepToken {
			next.HFToken = cur.HFToken
		}
	})
}

// fillUpdater is a Fleet that can complete a new spec from the file's
// current one under its write lock (reconcile.Loop can).
type fillUpdater interface {
	UpdateFrom(name string, s *spec.Spec, ifMatch string, fill func(cur, s *spec.Spec)) (reconcile.InstanceStatus, error)
}

var _ fillUpdater = (*reconcile.Loop)(nil)

// serveAction answers POST start, stop and restart.
func (s *Server) serveAction(ctx *fasthttp.RequestCtx, name, action string) {
	if !checkName(ctx, name) {
		return
	}
	if !ctx.IsPost() {
		methodNotAllowed(ctx, "POST")
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), s.cfg.ActionTimeout)
	defer cancel()
	var (
		st  reconcile.InstanceStatus
		err error
	)
	switch action {
	case "start":
		st, err = s.fleet.SetState(actx, name, spec.StateRunning)
	case "stop":
		st, err = s.fleet.SetState(actx, name, spec.StateStopped)
	default:
		st, err = s.fleet.Restart(actx, name)
		if errors.Is(err, runtime.ErrStopped) {
			// Restart acts on a running instance; a stopped one is
			// started, which is a write.
			writeError(ctx, fasthttp.StatusConflict, err.Error()+": start it instead (POST "+apiBase+"/instances/"+name+"/start)", nil)
			return
		}
	}
	if err != nil {
		writeFleetError(ctx, err)
		return
	}
	writeInstance(ctx, fasthttp.StatusOK, &st)
}

// serveLogs answers GET logs: ?lines missing or <= 0 is the whole log, N
// the last N lines (an integer too large for an int is the whole log too);
// a non-integer (empty included) is 400.
func (s *Server) serveLogs(ctx *fasthttp.RequestCtx, name string) {
	if !checkName(ctx, name) {
		return
	}
	if !isGet(ctx) {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	n := 0
	if raw := ctx.QueryArgs().Peek("lines"); raw != nil {
		v := strings.TrimSpace(string(raw))
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
				writeError(ctx, fasthttp.StatusBadRequest, "lines must be an integer, got "+strconv.Quote(v), nil)
				return
			}
			n = 0 // beyond any log's length (or below zero): all of it
		}
	}
	if n < 0 {
		n = 0
	}
	b, err := s.fleet.Logs(name, n)
	if err != nil {
		writeFleetError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentText)
	ctx.SetBody(b)
}

// serveInstanceProxy forwards any request under .../proxy to the instance,
// with the prefix stripped and the query kept. A sleeping on-demand
// instance is woken; one that is not running is 503.
func (s *Server) serveInstanceProxy(ctx *fasthttp.RequestCtx, rt route) {
	if !checkName(ctx, rt.name) {
		return
	}
	start := time.Now()
	if _, err := s.fleet.Get(rt.name); err != nil {
		writeFleetError(ctx, err)
		s.accessLog(ctx, &proxyCall{instance: rt.name, start: start}, ctx.Response.StatusCode(), int64(len(ctx.Response.Body())), err)
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), s.cfg.AcquireTimeout)
	acquiring := time.Now()
	name, addr, release, err := s.fleet.Acquire(actx, rt.name)
	waited := time.Since(acquiring)
	cancel()
	if err != nil {
		status := statusOf(err)
		if status != fasthttp.StatusNotFound && status < 500 || status == fasthttp.StatusGatewayTimeout {
			status = fasthttp.StatusServiceUnavailable
		}
		writeError(ctx, status, "instance "+rt.name+" is not running: "+err.Error(), nil)
		s.accessLog(ctx, &proxyCall{instance: rt.name, start: start}, status, int64(len(ctx.Response.Body())), err)
		return
	}
	if s.abandoned(ctx, &proxyCall{instance: name, start: start}, waited, release) {
		return
	}
	s.forwardStream(ctx, proxyCall{
		addr: addr, path: upstreamPath(ctx.URI().PathOriginal(), rt.prefix, rt.rest), instance: name, apiKey: s.instanceKey(name),
		release: release, start: start,
	})
}
