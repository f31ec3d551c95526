package httpapi

import "strings"

// routeKind is what a request path addresses.
type routeKind uint8

const (
	routeNotFound  routeKind = iota
	routeOpenAPI             // /api/v1/openapi.json
	routeInstances           // /api/v1/instances
	routeInstance            // /api/v1/instances/{name}
	routeAction              // /api/v1/instances/{name}/{start|stop|restart}
	routeLogs                // /api/v1/instances/{name}/logs
	routeProxy               // /api/v1/instances/{name}/proxy[/rest]
	routeServer              // /api/v1/server/{devices|help|version}
	routeStatus              // /api/v1/status
	routeModels              // /v1/models
	routeModel               // /v1/models/{id}
	routeOpenAI              // /v1/anything-else
)

// route is a parsed request path.
type route struct {
	kind   routeKind
	name   string // instance name (not yet validated) or model id
	action string // start|stop|restart, devices|help|version
	rest   string // proxy: the path after /proxy, "/" at least; OpenAI: the path from /v1
	// prefix is what precedes rest in the path (proxy and OpenAI routes).
	prefix string
}

// apiBase is the management API's base path.
const apiBase = "/api/v1"

// parseRoute maps a (normalized) request path to a route. /v1/... is the
// OpenAI surface; it is also served under /api/v1/v1/... because the seed
// contract lists it beneath its base path.
func parseRoute(path string) route {
	if strings.HasPrefix(path, "/v1/") {
		return parseOpenAI(path)
	}
	p, ok := strings.CutPrefix(path, apiBase)
	if !ok || (p != "" && p[0] != '/') {
		return route{}
	}
	if strings.HasPrefix(p, "/v1/") {
		rt := parseOpenAI(p)
		rt.prefix = apiBase
		return rt
	}
	switch {
	case p == "/openapi.json":
		return route{kind: routeOpenAPI}
	case p == "/status":
		return route{kind: routeStatus}
	case p == "/instances" || p == "/instances/":
		return route{kind: routeInstances}
	case strings.HasPrefix(p, "/server/"):
		switch a := p[len("/server/"):]; a {
		case "devices", "help", "version":
			return route{kind: routeServer, action: a}
		}
		return route{}
	case strings.HasPrefix(p, "/instances/"):
		return parseInstance(p[len("/instances/"):])
	}
	return route{}
}

// parseInstance parses what follows /api/v1/instances/.
func parseInstance(p string) route {
	name, sub, hasSub := strings.Cut(p, "/")
	if name == "" {
		return route{}
	}
	if !hasSub || sub == "" {
		return route{kind: routeInstance, name: name}
	}
	verb, rest, hasRest := strings.Cut(sub, "/")
	switch verb {
	case "proxy":
		prefix := apiBase + "/instances/" + name + "/proxy"
		if !hasRest {
			return route{kind: routeProxy, name: name, rest: "/", prefix: prefix}
		}
		return route{kind: routeProxy, name: name, rest: "/" + rest, prefix: prefix}
	case "start", "stop", "restart":
		if !hasRest || rest == "" {
			return route{kind: routeAction, name: name, action: verb}
		}
	case "logs":
		if !hasRest || rest == "" {
			return route{kind: routeLogs, name: name}
		}
	}
	return route{}
}

// parseOpenAI parses an OpenAI path ("/v1/...").
func parseOpenAI(p string) route {
	if p == "/v1/models" || p == "/v1/models/" {
		return route{kind: routeModels}
	}
	if id, ok := strings.CutPrefix(p, "/v1/models/"); ok {
		return route{kind: routeModel, name: id}
	}
	return route{kind: routeOpenAI, rest: p}
}

// isOpenAIPath tells whether path is on the OpenAI surface (/v1, or the
// seed's /api/v1/v1), where errors take OpenAI's shape.
func isOpenAIPath(path string) bool {
	p, ok := strings.CutPrefix(path, apiBase)
	if !ok {
		p = path
	}
	return p == "/v1" || strings.HasPrefix(p, "/v1/")
}

// validName reports whether name follows the instance name rule: 1-64 of
// [A-Za-z0-9._-], not starting with '.' or '-'.
func validName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

const nameRule = "1-64 of [A-Za-z0-9._-], not starting with '.' or '-'"
