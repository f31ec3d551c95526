package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/goccy/go-yaml"
)

// The contract check validates every response a test receives against
// the seed swagger (testdata/, converted to OpenAPI 3) and against our own
// openapi.json, so that neither can drift from the handlers.
//
// The seed is applied with the deviations openapi.json documents, and only
// those: its error bodies ("type: string" under application/json) are
// replaced by our JSON error object, and its plain-string success bodies
// (logs, /server/*) are accepted as text/plain. Statuses the seed does not
// list are not failures against the seed (it is silent there); against
// openapi.json every status must be documented.

type contractDocs struct {
	seed, own *openapi3.T
	err       error
}

var (
	docsOnce sync.Once
	docs     contractDocs
)

func loadDocs() contractDocs {
	docsOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/event-stream", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(r)
			return string(b), err
		})
		docs.seed, docs.err = loadSeed()
		if docs.err != nil {
			return
		}
		docs.own, docs.err = openapi3.NewLoader().LoadFromData(openAPIDoc)
		if docs.err == nil {
			docs.err = docs.own.Validate(context.Background())
		}
	})
	return docs
}

func loadSeed() (*openapi3.T, error) {
	y, err := os.ReadFile("testdata/llamactl-v0.2.0.swagger.yaml")
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, err
	}
	var d2 openapi2.T
	if err := json.Unmarshal(j, &d2); err != nil {
		return nil, err
	}
	d3, err := openapi2conv.ToV3(&d2)
	if err != nil {
		return nil, err
	}
	own, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		return nil, err
	}
	// The seed's operations require ApiKeyAuth but it never defines it.
	d3.Components.SecuritySchemes = openapi3.SecuritySchemes{
		"ApiKeyAuth": &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName("X-API-Key")},
	}
	errSchema, oaiErrSchema := own.Components.Schemas["Error"], own.Components.Schemas["OpenAIError"]
	for p, item := range d3.Paths.Map() {
		for _, op := range item.Operations() {
			for code, r := range op.Responses.Map() {
				mt := r.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || !mt.Schema.Value.Type.Is("string") {
					continue
				}
				if code >= "400" {
					mt.Schema = errSchema
					if strings.HasPrefix(p, "/v1/") {
						mt.Schema = oaiErrSchema
					}
				} else {
					r.Value.Content["text/plain"] = &openapi3.MediaType{Schema: mt.Schema}
				}
			}
		}
	}
	return d3, d3.Validate(context.Background())
}

func TestContractDocumentsLoad(t *testing.T) {
	d := loadDocs()
	if d.err != nil {
		t.Fatalf("load API documents: %v", d.err)
	}
	// Every path of the seed has a counterpart in openapi.json.
	for p, item := range d.seed.Paths.Map() {
		ownPath := strings.TrimSuffix(p, "/")
		if ownPath == "/v1" {
			ownPath = "/v1/{path}"
		}
		oi := d.own.Paths.Value(ownPath)
		if oi == nil {
			t.Errorf("seed path %s is missing from openapi.json", p)
			continue
		}
		for m := range item.Operations() {
			if oi.GetOperation(m) == nil {
				t.Errorf("seed operation %s %s is missing from openapi.json", m, p)
			}
		}
	}
}

// templateRE turns a path template into a regexp: {path} matches the rest
// of the path (slashes included), any other {param} one segment.
func templateRE(tmpl string) *regexp.Regexp {
	segs := strings.Split(tmpl, "/")
	for i, s := range segs {
		switch {
		case s == "{path}":
			segs[i] = ".*"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			segs[i] = "[^/]+"
		default:
			segs[i] = regexp.QuoteMeta(s)
		}
	}
	return regexp.MustCompile("^" + strings.Join(segs, "/") + "$")
}

// findOperation maps a request path (relative to /api/v1, or /v1/...) to
// doc's path template and operation, preferring the template with the
// fewest parameters. seed selects the seed's conventions: its /v1/ entry
// stands for every POST /v1/*, its proxy entry for every sub-path.
func findOperation(doc *openapi3.T, rel, method string, seed bool) (string, *openapi3.PathItem, *openapi3.Operation) {
	best, bestParams := "", 1<<30
	for tmpl := range doc.Paths.Map() {
		if !templateRE(tmpl).MatchString(rel) {
			continue
		}
		// A catch-all {path} ranks below any single-segment parameter.
		if n := strings.Count(tmpl, "{") + strings.Count(tmpl, "{path}"); n < bestParams {
			best, bestParams = tmpl, n
		}
	}
	if best == "" && seed {
		switch {
		case strings.HasPrefix(rel, "/v1/"):
			best = "/v1/"
		case regexp.MustCompile(`^/instances/[^/]+/proxy/`).MatchString(rel):
			best = "/instances/{name}/proxy"
		}
	}
	if best == "" {
		return "", nil, nil
	}
	item := doc.Paths.Value(best)
	if item == nil {
		return best, nil, nil
	}
	return best, item, item.GetOperation(method)
}

// relPath strips the management base from a request path.
func relPath(p string) string {
	if r, ok := strings.CutPrefix(p, apiBase); ok && (r == "" || r[0] == '/') {
		return r
	}
	return p
}

// checkContract validates one response against both documents.
func checkContract(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	d := loadDocs()
	if d.err != nil {
		t.Fatalf("load API documents: %v", d.err)
	}
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return // CORS preflight: answered for every path, documented once in info
	}
	rel := relPath(req.URL.Path)
	for _, c := range []struct {
		name string
		doc  *openapi3.T
		seed bool
	}{{"seed swagger", d.seed, true}, {"openapi.json", d.own, false}} {
		tmpl, item, op := findOperation(c.doc, rel, req.Method, c.seed)
		if op == nil {
			if c.seed {
				continue // the seed is silent about this operation
			}
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed ||
				resp.StatusCode == http.StatusUnauthorized {
				continue // no such route or method: undocumented by design
			}
			t.Fatalf("%s %s (%d): no operation in %s (template %q)", req.Method, req.URL.Path, resp.StatusCode, c.name, tmpl)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request: req,
				Route:   &routers.Route{Spec: c.doc, Path: tmpl, PathItem: item, Method: req.Method, Operation: op},
			},
			Status:  resp.StatusCode,
			Header:  resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: !c.seed, MultiError: true},
		}
		in.SetBodyBytes(bytes.Clone(body))
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Fatalf("%s %s (%d) breaks %s: %v\nbody: %.500s", req.Method, req.URL.Path, resp.StatusCode, c.name, err, body)
		}
	}
}
