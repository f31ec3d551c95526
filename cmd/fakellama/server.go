package main

import (
	"bytes"
	"context"
	_ "embed"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed props.json
var propsTemplate []byte

// Recorded bodies and header values of llama-server.
const (
	bodyLoading      = `{"error":{"message":"Loading model","type":"unavailable_error","code":503}}`
	bodyOK           = `{"status":"ok"}`
	bodyNotFound     = `{"error":{"message":"File Not Found","type":"not_found_error","code":404}}`
	bodyNoEmbeddings = "{\"error\":{\"code\":501,\"message\":\"This server does not support embeddings. Start it with `--embeddings`\",\"type\":\"not_supported_error\"}}"
	bodyNoMetrics    = `{"error":{"code":501,"message":"This server does not support metrics endpoint. Start it with ` + "`--metrics`" + `","type":"not_supported_error"}}`
	bodyBadAPIKey    = `{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}`
	bodyBadJSON      = `{"error":{"code":400,"message":"Failed to parse JSON request body","type":"invalid_request_error"}}`
	ctJSON           = "application/json; charset=utf-8"
	keepAliveValue   = "timeout=5, max=100"
	// keepAliveMax is how many requests one connection carries (the
	// "max" above): cpp-httplib answers the last with "Connection:
	// close" and closes the connection.
	keepAliveMax = 100
	fingerprint  = "b9431-bf87261d4"
)

// server answers llama-server's HTTP API with canned generations.
type server struct {
	opts *options
	f    *faults
	log  *logger

	ready    atomic.Bool
	nSlots   int
	nCtx     int
	instance []string // X-Fake-Instance header value
	pid      []string // X-Fake-Pid header value
	models   []byte   // GET /v1/models body
	props    []byte   // GET /props body
	longLine []byte   // written per request when FAKELLAMA_LONG_LINE_EACH=1

	answered        atomic.Int64 // completion requests fully answered
	processing      atomic.Int64
	promptTokens    atomic.Int64
	predictedTokens atomic.Int64

	streamsMu sync.Mutex
	streams   map[net.Conn]struct{}
}

var _ http.Handler = (*server)(nil)

func newServer(opts *options, f *faults, log *logger) *server {
	s := &server{
		opts:     opts,
		f:        f,
		log:      log,
		nSlots:   4,
		nCtx:     4096,
		instance: []string{opts.modelID()},
		pid:      []string{strconv.Itoa(os.Getpid())},
		streams:  map[net.Conn]struct{}{},
	}
	if opts.parallel > 0 {
		s.nSlots = opts.parallel
	}
	if opts.ctxSize > 0 {
		s.nCtx = opts.ctxSize
	}
	if f.longLineEach {
		s.longLine = longLine(f.longLine)
	}
	s.models = modelsBody(opts, s.nCtx, time.Now().Unix())
	s.props = propsBody(opts, s.nCtx, s.nSlots)
	return s
}

// ServeHTTP routes like llama-server: every path answers 503 while the
// model loads, an unknown path or method is 404 "File Not Found".
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.longLine != nil {
		s.log.write(s.longLine)
	}
	h := w.Header()
	h["Server"] = []string{"llama.cpp"}
	h["Access-Control-Allow-Origin"] = []string{r.Header.Get("Origin")}
	h["X-Fake-Instance"] = s.instance
	h["X-Fake-Pid"] = s.pid
	if n, ok := r.Context().Value(connRequestsKey{}).(*atomic.Int64); ok && n.Add(1) >= keepAliveMax {
		h["Connection"] = []string{"close"} // net/http closes the connection after the reply
	}
	status := s.route(w, r)
	if status != 0 {
		s.log.printf("srv  log_server_r: done request: %s %s %s %d", r.Method, r.URL.Path, remoteIP(r.RemoteAddr), status)
	}
}

// route answers r and returns the status code, or 0 when the handler
// already logged (streams log themselves when they end).
func (s *server) route(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.Path
	if r.Method == http.MethodOptions {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Access-Control-Allow-Credentials", "true")
		return s.reply(w, http.StatusOK, "text/html", nil, false)
	}
	if !s.ready.Load() {
		return s.reply(w, http.StatusServiceUnavailable, ctJSON, []byte(bodyLoading), false)
	}
	get, post := r.Method == http.MethodGet || r.Method == http.MethodHead, r.Method == http.MethodPost
	switch {
	case get && (path == "/health" || path == "/v1/health"):
		return s.reply(w, http.StatusOK, ctJSON, []byte(bodyOK), false)
	case get && (path == "/v1/models" || path == "/models"):
		return s.reply(w, http.StatusOK, ctJSON, s.models, false)
	}
	if !s.authorized(r) {
		return s.reply(w, http.StatusUnauthorized, ctJSON, []byte(bodyBadAPIKey), false)
	}
	switch {
	case post && (path == "/v1/chat/completions" || path == "/chat/completions"):
		return s.generate(w, r, kindChat)
	case post && (path == "/v1/completions" || path == "/completions"):
		return s.generate(w, r, kindOAICompletion)
	case post && path == "/completion":
		return s.generate(w, r, kindNative)
	case post && (path == "/v1/embeddings" || path == "/embeddings"):
		if !s.opts.embeddings {
			return s.reply(w, http.StatusNotImplemented, ctJSON, []byte(bodyNoEmbeddings), true)
		}
		return s.embeddings(w, r)
	case get && path == "/props":
		return s.reply(w, http.StatusOK, ctJSON, s.props, false)
	case get && path == "/slots":
		return s.reply(w, http.StatusOK, ctJSON, s.slotsBody(), false)
	case get && path == "/metrics":
		if !s.opts.metrics {
			return s.reply(w, http.StatusNotImplemented, ctJSON, []byte(bodyNoMetrics), true)
		}
		return s.reply(w, http.StatusOK, "text/plain; version=0.0.4", s.metricsBody(), false)
	}
	return s.reply(w, http.StatusNotFound, ctJSON, []byte(bodyNotFound), true)
}

// connRequestsKey keys a connection's request count in its context.
type connRequestsKey struct{}

// connContext gives each connection a request count (see keepAliveMax).
func connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connRequestsKey{}, new(atomic.Int64))
}

// reply writes a complete response. Like llama-server, error replies
// (404, 501) and the last reply a connection carries (keepAliveMax) say
// "Connection: close" and the connection is closed; others announce
// Keep-Alive.
func (s *server) reply(w http.ResponseWriter, status int, contentType string, body []byte, closeConn bool) int {
	h := w.Header()
	if closeConn || h["Connection"] != nil {
		h["Connection"] = []string{"close"}
	} else {
		h["Keep-Alive"] = []string{keepAliveValue}
	}
	h["Content-Type"] = []string{contentType}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// authorized checks --api-key like llama-server: "Authorization: Bearer
// KEY" or "X-Api-Key: KEY"; without keys everything is allowed.
func (s *server) authorized(r *http.Request) bool {
	if len(s.opts.apiKeys) == 0 {
		return true
	}
	key := r.Header.Get("X-Api-Key")
	if a := r.Header.Get("Authorization"); len(a) > 7 && a[:7] == "Bearer " {
		key = a[7:]
	}
	for _, k := range s.opts.apiKeys {
		if key == k {
			return true
		}
	}
	return false
}

// finishGeneration counts a fully answered completion request and, with
// FAKELLAMA_CRASH_AFTER_REQUESTS=N, exits after the Nth.
func (s *server) finishGeneration() {
	n := s.answered.Add(1)
	if s.f.crashAfterRequests > 0 && n == s.f.crashAfterRequests {
		s.log.printf("fakellama: exiting after %d completion requests (FAKELLAMA_CRASH_AFTER_REQUESTS)", n)
		os.Exit(s.f.exitCode)
	}
}

func (s *server) trackStream(c net.Conn, add bool) {
	s.streamsMu.Lock()
	if add {
		s.streams[c] = struct{}{}
	} else {
		delete(s.streams, c)
	}
	s.streamsMu.Unlock()
}

// stopStreams closes every hijacked streaming connection (shutdown).
func (s *server) stopStreams() {
	s.streamsMu.Lock()
	for c := range s.streams {
		_ = c.Close()
	}
	s.streamsMu.Unlock()
}

func (s *server) embeddings(w http.ResponseWriter, r *http.Request) int {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return s.reply(w, http.StatusBadRequest, ctJSON, []byte(bodyBadJSON), false)
	}
	g, ok := parseGenRequest(body, s.opts.modelID(), 0)
	if !ok {
		return s.reply(w, http.StatusBadRequest, ctJSON, []byte(bodyBadJSON), false)
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"object":"list","usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(g.promptN), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(g.promptN), 10)
	b = append(b, `},"data":[{"embedding":[0.125,-0.25,0.5,-0.0625,0.75,-0.375,0.03125,0.875],"index":0,"object":"embedding"}]}`...)
	status := s.reply(w, http.StatusOK, ctJSON, b, false)
	s.flush(w)
	s.finishGeneration()
	return status
}

func (s *server) flush(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// modelsBody renders GET /v1/models in the recorded shape.
func modelsBody(opts *options, nCtx int, created int64) []byte {
	id := opts.modelID()
	aliases := opts.aliases
	if len(aliases) == 0 {
		aliases = []string{id}
	}
	var b []byte
	b = append(b, `{"models":[{"name":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],"capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"","families":[""],"parameter_size":"","quantization_level":""}}],"object":"list","data":[{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"aliases":[`...)
	for i, a := range aliases {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	b = append(b, `],"tags":[],"object":"model","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":32000,"n_ctx":`...)
	b = strconv.AppendInt(b, int64(nCtx), 10)
	b = append(b, `,"n_ctx_train":4096,"n_embd":64,"n_params":4194624,"size":8389888}}]}`...)
	return b
}

// propsBody renders GET /props from the recording with this instance's
// alias, model path, context size and slot count.
func propsBody(opts *options, nCtx, nSlots int) []byte {
	b := propsTemplate
	b = bytes.Replace(b, []byte(`"model_alias": "tiny"`), appendJSONString([]byte(`"model_alias": `), opts.modelID()), 1)
	b = bytes.Replace(b, []byte(`"model_path": "/models/tiny.gguf"`), appendJSONString([]byte(`"model_path": `), opts.model), 1)
	b = bytes.Replace(b, []byte(`"n_ctx": 256`), strconv.AppendInt([]byte(`"n_ctx": `), int64(nCtx), 10), 1)
	b = bytes.Replace(b, []byte(`"total_slots": 2`), strconv.AppendInt([]byte(`"total_slots": `), int64(nSlots), 10), 1)
	b = bytes.Replace(b, []byte(`"endpoint_metrics": false`), []byte(`"endpoint_metrics": `+strconv.FormatBool(opts.metrics)), 1)
	return b
}

func (s *server) slotsBody() []byte {
	b := []byte{'['}
	for i := range s.nSlots {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"id_task":-1,"n_ctx":`...)
		b = strconv.AppendInt(b, int64(s.nCtx/s.nSlots), 10)
		b = append(b, `,"speculative":false,"is_processing":false}`...)
	}
	return append(b, ']')
}

func (s *server) metricsBody() []byte {
	var b []byte
	metric := func(name, help, typ string, v int64) {
		b = append(b, "# HELP llamacpp:"+name+" "+help+"\n# TYPE llamacpp:"+name+" "+typ+"\nllamacpp:"+name+" "...)
		b = strconv.AppendInt(b, v, 10)
		b = append(b, '\n')
	}
	metric("prompt_tokens_total", "Number of prompt tokens processed.", "counter", s.promptTokens.Load())
	metric("prompt_seconds_total", "Prompt process time", "counter", 0)
	metric("tokens_predicted_total", "Number of generation tokens processed.", "counter", s.predictedTokens.Load())
	metric("tokens_predicted_seconds_total", "Predict process time", "counter", 0)
	metric("n_decode_total", "Total number of llama_decode() calls", "counter", s.predictedTokens.Load())
	metric("n_tokens_max", "Largest observed n_tokens.", "counter", 0)
	metric("prompt_tokens_seconds", "Average prompt throughput in tokens/s.", "gauge", 0)
	metric("predicted_tokens_seconds", "Average generation throughput in tokens/s.", "gauge", 0)
	metric("requests_processing", "Number of requests processing.", "gauge", s.processing.Load())
	metric("requests_deferred", "Number of requests deferred.", "gauge", 0)
	metric("n_busy_slots_per_decode", "Average number of busy slots per llama_decode() call", "gauge", 1)
	return b
}
