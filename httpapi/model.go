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

// badModel is an error about the model value itself (OpenAI's param
// "model"), as against the body around it.
type badModel string

func (e badModel) Error() string { return string(e) }

// requestModel returns the "model" of a request body, and whether it asks
// for a streamed answer, without decoding or re-encoding the rest of it:
// for a JSON body the first top-level "model" (a string) and "stream"
// (true) keys, for a multipart/form-data body (audio transcription) its
// "model" field. contentType is the request's Content-Type header.
func requestModel(contentType, body []byte) (model string, stream bool, err error) {
	if isMultipart(contentType) {
		model, err = modelFromMultipart(contentType, body)
		return model, false, err
	}
	rawModel, rawStream, ok := scanJSON(body)
	if !ok {
		return "", false, errors.New("request body is not valid JSON")
	}
	model, err = modelValue(rawModel)
	if err != nil {
		return "", false, err
	}
	return model, string(rawStream) == "true", nil
}

// isMultipart tells whether a Content-Type is multipart/form-data, in any
// letter case (media types are case-insensitive).
func isMultipart(contentType []byte) bool {
	const mt = "multipart/form-data"
	ct := bytes.TrimLeft(contentType, " \t")
	return len(ct) >= len(mt) && bytes.EqualFold(ct[:len(mt)], []byte(mt))
}

// modelNames interns the model names requests give, up to maxInterned of
// them, so that a request naming a known model allocates nothing for it.
var modelNames cowMap[string]

const maxInterned = 256

// internModel returns string(b), interned.
func internModel(b []byte) string {
	if m, ok := modelNames.LoadBytes(b); ok {
		return m
	}
	m := string(b)
	if len(m) <= maxModelLen && modelNames.Len() < maxInterned {
		modelNames.LoadOrStore(m, m)
	}
	return m
}

// modelValue reads the raw JSON value of "model" (nil: absent).
func modelValue(raw []byte) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errNoModel
	}
	if raw[0] != '"' {
		return "", badModel("model must be a string")
	}
	var m string
	if bytes.IndexByte(raw, '\\') < 0 {
		m = internModel(raw[1 : len(raw)-1])
	} else {
		m = gjson.ParseBytes(raw).Str // unescaped as gjson does
	}
	if m == "" {
		return "", errNoModel
	}
	if len(m) > maxModelLen {
		return "", badModel("model name is too long")
	}
	return m, nil
}

// scanJSON checks that data is one JSON value, by the rules gjson.Valid
// applies, and returns the raw values of the first "model" and "stream"
// keys of its top-level object (nil when absent): one pass, and no
// recursion, so that no nesting depth exhausts the stack (a body of
// sixteen million "[" would).
func scanJSON(data []byte) (model, stream []byte, ok bool) {
	const (
		wantValue = iota
		afterValue
		wantKey
	)
	var stackArr [4]uint64
	objects := stackArr[:] // bit d: the container at depth d+1 is an object
	depth := 0
	inObject := func() bool { return objects[(depth-1)/64]>>((depth-1)%64)&1 == 1 }
	push := func(object bool) {
		if depth/64 == len(objects) {
			objects = append(objects, 0)
		}
		bit := uint64(1) << (depth % 64)
		if object {
			objects[depth/64] |= bit
		} else {
			objects[depth/64] &^= bit
		}
		depth++
	}
	key := 0 // the top-level key whose value is being read: 1 model, 2 stream
	valueStart := 0
	i, state := 0, wantValue
	for {
		switch state {
		case wantValue:
			i = skipSpace(data, i)
			if i == len(data) {
				return nil, nil, false
			}
			switch c := data[i]; c {
			case '{', '[':
				push(c == '{')
				i = skipSpace(data, i+1)
				switch {
				case i < len(data) && data[i] == c+2: // '}' or ']': empty
					depth--
					i++
					state = afterValue
				case c == '{':
					state = wantKey
				}
				continue
			case '"':
				i, _, ok = skipString(data, i+1)
			case 't':
				i, ok = skipLiteral(data, i, "true")
			case 'f':
				i, ok = skipLiteral(data, i, "false")
			case 'n':
				i, ok = skipLiteral(data, i, "null")
			default:
				if c != '-' && (c < '0' || c > '9') {
					return nil, nil, false
				}
				i, ok = skipNumber(data, i)
			}
			if !ok {
				return nil, nil, false
			}
			state = afterValue
		case afterValue:
			if depth == 1 && key != 0 {
				if key == 1 && model == nil {
					model = data[valueStart:i]
				} else if key == 2 && stream == nil {
					stream = data[valueStart:i]
				}
				key = 0
			}
			i = skipSpace(data, i)
			if depth == 0 {
				return model, stream, i == len(data)
			}
			if i == len(data) {
				return nil, nil, false
			}
			obj := inObject()
			switch c := data[i]; {
			case c == ',':
				i++
				if obj {
					state = wantKey
				} else {
					state = wantValue
				}
			case c == '}' && obj, c == ']' && !obj:
				depth--
				i++
			default:
				return nil, nil, false
			}
		case wantKey:
			i = skipSpace(data, i)
			if i == len(data) || data[i] != '"' {
				return nil, nil, false
			}
			start := i
			var escaped bool
			if i, escaped, ok = skipString(data, i+1); !ok {
				return nil, nil, false
			}
			if depth == 1 {
				key = keyOf(data[start:i], escaped)
			}
			i = skipSpace(data, i)
			if i == len(data) || data[i] != ':' {
				return nil, nil, false
			}
			i = skipSpace(data, i+1)
			valueStart = i
			state = wantValue
		}
	}
}

// keyOf tells the keys scanJSON looks for (1 "model", 2 "stream", else 0)
// from a quoted key.
func keyOf(quoted []byte, escaped bool) int {
	k := quoted[1 : len(quoted)-1]
	if escaped {
		k = []byte(gjson.ParseBytes(quoted).Str)
	}
	switch string(k) {
	case "model":
		return 1
	case "stream":
		return 2
	}
	return 0
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringPlain marks the bytes a JSON string holds as they are: all but
// control characters, the quote and the backslash.
var stringPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString skips the rest of a string from just past its opening quote
// to just past its closing one: no control characters, and only JSON's
// escapes.
func skipString(data []byte, i int) (end int, escaped, ok bool) {
	for {
		for i < len(data) && stringPlain[data[i]] {
			i++
		}
		if i == len(data) {
			return i, escaped, false
		}
		switch data[i] {
		case '"':
			return i + 1, escaped, true
		case '\\':
			escaped = true
			i++
			if i == len(data) {
				return i, escaped, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return i, escaped, false
				}
				i += 5
			default:
				return i, escaped, false
			}
		default: // a control character
			return i, escaped, false
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func skipLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// skipNumber skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(data []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if data[i] == '-' {
		i++
	}
	if i < len(data) && data[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	if i < len(data) && data[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
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
