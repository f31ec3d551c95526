package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"

	"github.com/tidwall/gjson"
)

// maxModelLen bounds a model name read from a request.
const maxModelLen = 256

var errNoModel = errors.New("request has no model")

// modelFromBody returns the "model" of a request body without decoding or
// re-encoding the rest of it: a top-level JSON string for JSON bodies, the
// "model" field of a multipart/form-data body (audio transcription).
// contentType is the request's Content-Type header.
func modelFromBody(contentType, body []byte) (string, error) {
	if bytes.HasPrefix(bytes.TrimSpace(contentType), []byte("multipart/form-data")) {
		return modelFromMultipart(contentType, body)
	}
	if !gjson.ValidBytes(body) {
		return "", errors.New("request body is not valid JSON")
	}
	m := gjson.GetBytes(body, "model")
	if !m.Exists() || m.Type == gjson.Null {
		return "", errNoModel
	}
	if m.Type != gjson.String {
		return "", errors.New("model must be a string")
	}
	if m.Str == "" {
		return "", errNoModel
	}
	if len(m.Str) > maxModelLen {
		return "", errors.New("model name is too long")
	}
	return m.Str, nil
}

// modelFromMultipart reads the "model" form field of a multipart body.
func modelFromMultipart(contentType, body []byte) (string, error) {
	_, params, err := mime.ParseMediaType(string(contentType))
	if err != nil {
		return "", errors.New("bad multipart content type")
	}
	boundary := params["boundary"]
	if boundary == "" {
		return "", errors.New("multipart body has no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", errNoModel
		}
		if err != nil {
			return "", errors.New("malformed multipart body")
		}
		if part.FormName() != "model" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, maxModelLen+1))
		if err != nil {
			return "", errors.New("malformed multipart body")
		}
		if len(b) > maxModelLen {
			return "", errors.New("model name is too long")
		}
		if len(b) == 0 {
			return "", errNoModel
		}
		return string(b), nil
	}
}

// wantsStream reports whether a JSON request body asks for a streamed
// answer ("stream": true).
func wantsStream(contentType, body []byte) bool {
	if bytes.HasPrefix(bytes.TrimSpace(contentType), []byte("multipart/")) {
		return false
	}
	// Most requests do not stream: a fast scan spares them the lookup.
	// A key may be written with escapes, so a body with a backslash is
	// always looked up.
	if !bytes.Contains(body, []byte("stream")) && bytes.IndexByte(body, '\\') < 0 {
		return false
	}
	return gjson.GetBytes(body, "stream").Type == gjson.True
}
