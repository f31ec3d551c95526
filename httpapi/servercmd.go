package httpapi

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"time"

	"github.com/valyala/fasthttp"
)

// serverArgs maps /api/v1/server/{what} to llama-server's flag.
var serverArgs = map[string]string{
	"devices": "--list-devices",
	"help":    "--help",
	"version": "--version",
}

// serveServer runs the configured llama-server with --list-devices,
// --help or --version, bounded by ServerInfo.CommandTimeout, and answers
// with its output as text. llama-server prints its version on stderr, so
// the answer is stderr followed by stdout.
func (s *Server) serveServer(ctx *fasthttp.RequestCtx, what string) {
	if !isGet(ctx) {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	if s.info.Binary == "" {
		writeError(ctx, fasthttp.StatusInternalServerError, "no llama-server binary is configured (llama_server)", nil)
		return
	}
	out, err := runBinary(s.info.Binary, serverArgs[what], s.info.CommandTimeout)
	if err != nil {
		s.log.Warn().Bytes("request_id", requestID(ctx)).Err(err).Msg("run llama-server")
		writeError(ctx, fasthttp.StatusInternalServerError, err.Error(), nil)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentText)
	ctx.SetBody(out)
}

// runBinary runs bin with one flag and returns stderr then stdout.
func runBinary(bin, flag string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, flag)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, errors.New("run " + bin + " " + flag + ": timed out after " + timeout.String())
	}
	if err != nil {
		msg := "run " + bin + " " + flag + ": " + err.Error()
		if tail := lastBytes(bytes.TrimSpace(stderr.Bytes()), 2048); len(tail) > 0 {
			msg += ": " + string(tail)
		}
		return nil, errors.New(msg)
	}
	return append(stderr.Bytes(), stdout.Bytes()...), nil
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
