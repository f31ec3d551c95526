package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// jsonParser builds a node tree from JSON with encoding/json's tokenizer,
// locating each token by the decoder's input offset.
type jsonParser struct {
	data  []byte
	dec   *json.Decoder
	lines []int // offsets of line starts
}

// parseJSON returns nil after recording a syntax error.
func parseJSON(data []byte, e *errs) *node {
	p := &jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	p.lines = lineStarts(data)
	n, err := p.value(e, 0)
	at := p.posOf(int(p.dec.InputOffset()))
	if err == nil {
		var tat pos
		if _, tat, err = p.next(); err == io.EOF {
			err = nil
		} else {
			at, err = tat, errors.New("unexpected data after the top-level value")
		}
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			at = p.posOf(int(se.Offset))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			at = p.posOf(len(p.data))
			err = errors.New("unexpected end of JSON")
		}
		e.add(at, "", "syntax error: %s", err.Error())
		return nil
	}
	return n
}

func (p *jsonParser) posOf(off int) pos { return posOf(p.data, p.lines, off) }

// next returns the next token and where it starts.
func (p *jsonParser) next() (json.Token, pos, error) {
	off := int(p.dec.InputOffset())
	for off < len(p.data) {
		c := p.data[off]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != ':' {
			break
		}
		off++
	}
	tok, err := p.dec.Token()
	return tok, p.posOf(off), err
}

var errNesting = errors.New("nesting too deep")

func (p *jsonParser) value(e *errs, depth int) (*node, error) {
	tok, at, err := p.next()
	if err != nil {
		return nil, err
	}
	return p.fromToken(tok, at, e, depth)
}

func (p *jsonParser) fromToken(tok json.Token, at pos, e *errs, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errNesting
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kNull, at: at}, nil
	case bool:
		return &node{kind: kBool, at: at, b: t}, nil
	case string:
		return &node{kind: kString, at: at, str: t}, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return &node{kind: kInt, at: at, i: i}, nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, errors.New("number " + string(t) + " out of range")
		}
		return &node{kind: kFloat, at: at, f: f}, nil
	case json.Delim:
		switch t {
		case '[':
			out := &node{kind: kList, at: at}
			for p.dec.More() {
				c, err := p.value(e, depth+1)
				if err != nil {
					return nil, err
				}
				out.items = append(out.items, c)
			}
			_, err := p.dec.Token()
			return out, err
		case '{':
			out := &node{kind: kMap, at: at}
			for p.dec.More() {
				ktok, kat, err := p.next()
				if err != nil {
					return nil, err
				}
				key, _ := ktok.(string)
				v, err := p.value(e, depth+1)
				if err != nil {
					return nil, err
				}
				if prev := out.lookup(key); prev != nil {
					e.add(kat, key, "duplicate key %q (first at line %d)", key, prev.at.Line)
					continue
				}
				out.put(&entry{key: key, at: kat, val: v})
			}
			_, err := p.dec.Token()
			return out, err
		}
	}
	return nil, errors.New("unexpected token")
}
