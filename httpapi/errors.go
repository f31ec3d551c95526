package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/valyala/fasthttp"

	"llamactl/reconcile"
	"llamactl/runtime"
	"llamactl/spec"
)

// apiError is the management API's error body:
//
//	{"error":{"code":400,"message":"...","details":["file:line:col: msg"]}}
//
// The seed documents error bodies as plain strings; a JSON object carries
// the status and the spec's located messages, and is what clients of a
// JSON API can parse. openapi.json documents the difference.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    int      `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

// openAIError is the /v1 error body, in OpenAI's shape.
type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// statusOf maps a Fleet or runtime error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, reconcile.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, reconcile.ErrExists), errors.Is(err, reconcile.ErrReadOnly),
		errors.Is(err, reconcile.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, reconcile.ErrPreconditionFailed):
		return http.StatusPreconditionFailed
	case errors.Is(err, spec.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, runtime.ErrStopped), errors.Is(err, runtime.ErrFailed),
		errors.Is(err, runtime.ErrNotReady):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// errorDetails lists the located messages of a spec error, if err is one.
func errorDetails(err error) []string {
	var list spec.ErrorList
	if errors.As(err, &list) {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	var one *spec.Error
	if errors.As(err, &one) {
		return []string{one.Error()}
	}
	return nil
}

// writeError answers a management request with status and msg.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string, details []string) {
	b, _ := json.Marshal(apiError{Error: apiErrorBody{Code: status, Message: msg, Details: details}})
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(b)
}

// writeFleetError answers with the status err maps to.
func writeFleetError(ctx *fasthttp.RequestCtx, err error) {
	writeError(ctx, statusOf(err), err.Error(), errorDetails(err))
}

// OpenAI error types and codes used on /v1.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuth           = "authentication_error"
	typeUnavailable    = "unavailable_error"
	typeServer         = "server_error"
)

// writeOpenAIError answers a /v1 request in OpenAI's error shape.
func writeOpenAIError(ctx *fasthttp.RequestCtx, status int, typ, code, param, msg string) {
	body := openAIError{Error: openAIErrorBody{Message: msg, Type: typ, Code: code}}
	if param != "" {
		body.Error.Param = &param
	}
	b, _ := json.Marshal(body)
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(b)
}

const (
	contentJSON = "application/json"
	contentText = "text/plain; charset=utf-8"
)
