package httpapi

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config tunes the HTTP server. The zero value of a field means its
// default, listed beside it.
type Config struct {
	// ManagementKeys guard /api/v1; InferenceKeys (and ManagementKeys)
	// guard /v1. A key is presented as "Authorization: Bearer KEY" or
	// "X-API-Key: KEY".
	ManagementKeys []string
	InferenceKeys  []string
	// RequireManagementAuth and RequireInferenceAuth turn the checks on.
	// With a check on and no key configured the server answers without
	// auth, which CheckBind allows on loopback only.
	RequireManagementAuth bool
	RequireInferenceAuth  bool

	MaxBodyBytes   int           // request body limit (413 past it); default 16 MiB
	MaxHeaderBytes int           // request line + headers limit (431 past it); default 16 KiB
	ReadTimeout    time.Duration // reading one request; default 60s
	// WriteTimeout bounds writing a response; a streamed response gets it
	// anew for every chunk, so long generations are not cut. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long; default
	// 60s, equal to ReadTimeout's so that the two share a coarse read
	// deadline (see coarseConn).
	IdleTimeout time.Duration

	// CORSAllowOrigins lists the origins allowed to call the API from a
	// browser ("*" allows any). Empty: no CORS headers at all.
	CORSAllowOrigins []string

	// Logger receives one info line per proxied request and warnings for
	// failures; nil logs nothing.
	Logger *zerolog.Logger
	// AccessLog, if set, takes the info lines of proxied requests that
	// were answered in place of Logger, written by hand in the shape of
	// Logger's JSON lines (the same fields and "time" and "message"), one
	// line per Write, at a fraction of the cost. Set it to the writer of a
	// JSON Logger; Logger's level still decides whether they are written.
	// Write must not keep p.
	AccessLog io.Writer

	// ProxyTimeout bounds one proxied request from sending it upstream to
	// the end of the response; 0 means no bound (generations can be long).
	ProxyTimeout time.Duration
	// AcquireTimeout bounds waiting for an instance to become ready
	// (waking an on-demand one); default 5m.
	AcquireTimeout time.Duration
	// ActionTimeout bounds start/stop/restart waiting for the instance to
	// reach the new state; default 2m.
	ActionTimeout time.Duration
	// MaxConnsPerUpstream limits connections to one llama-server; default 512.
	MaxConnsPerUpstream int
	// UpstreamIdleTimeout closes pooled upstream connections idle this
	// long; default 4s, under llama-server's keep-alive timeout of 5s.
	UpstreamIdleTimeout time.Duration
}

// ServerInfo is how to run the llama-server binary for /api/v1/server/*.
type ServerInfo struct {
	Binary         string        // path or name on PATH
	CommandTimeout time.Duration // default 10s
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 16 << 10
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.AcquireTimeout <= 0 {
		c.AcquireTimeout = 5 * time.Minute
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 2 * time.Minute
	}
	if c.MaxConnsPerUpstream <= 0 {
		c.MaxConnsPerUpstream = 512
	}
	if c.UpstreamIdleTimeout <= 0 {
		c.UpstreamIdleTimeout = 4 * time.Second
	}
	return c
}

// CheckBind refuses to serve on a non-loopback address while an auth check
// is required but has no key: that would expose the API to the network
// without protection. listenAddr is host:port; an empty host means all
// interfaces.
func CheckBind(listenAddr string, cfg Config) error {
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return fmt.Errorf("check listen address %q: %w", listenAddr, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	var missing []string
	if cfg.RequireManagementAuth && len(cfg.ManagementKeys) == 0 {
		missing = append(missing, "management keys (config auth.management_keys or LLAMACTL_AUTH_MANAGEMENT_KEYS)")
	}
	if cfg.RequireInferenceAuth && len(cfg.InferenceKeys) == 0 && len(cfg.ManagementKeys) == 0 {
		missing = append(missing, "inference keys (config auth.inference_keys or LLAMACTL_AUTH_INFERENCE_KEYS)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("refuse to listen on %s without keys: auth is required but no %s are set; "+
		"set them (comma-separated in the environment), listen on 127.0.0.1, or turn the requirement off "+
		"(auth.require_management_auth / auth.require_inference_auth)", listenAddr, strings.Join(missing, " and no "))
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
