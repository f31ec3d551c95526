package spec

import (
	"maps"
	"math"
	"reflect"
	"slices"
)

// Clone returns a deep copy of s (including where it was decoded from).
func (s *Spec) Clone() *Spec {
	if s == nil {
		return nil
	}
	c := &Spec{Name: s.Name, State: s.State, src: s.src}
	for _, o := range options {
		if o.kind == oPlain || !o.present(s) {
			continue
		}
		src, dst := o.field(s), o.field(c)
		switch o.kind {
		case oStrings:
			dst.Set(reflect.ValueOf(slices.Clone(src.Interface().([]string))))
		case oEnv:
			dst.Set(reflect.ValueOf(maps.Clone(src.Interface().(map[string]string))))
		default:
			p := reflect.New(src.Type().Elem())
			p.Elem().Set(src.Elem())
			dst.Set(p)
		}
	}
	return c
}

// Redacted returns a copy of s with secrets (api_key, hf_token) removed,
// for showing through the API.
func (s *Spec) Redacted() *Spec {
	c := s.Clone()
	if c == nil {
		return nil
	}
	c.APIKey = nil
	c.HFToken = nil
	return c
}

// Equal reports whether a and b set the same options to the same values
// (where they were decoded from is ignored; NaN equals NaN).
func Equal(a, b *Spec) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, o := range options {
		x, y := o.field(a), o.field(b)
		if o.kind == oFloat && !x.IsNil() && !y.IsNil() {
			fx, fy := x.Elem().Float(), y.Elem().Float()
			if fx != fy && !(math.IsNaN(fx) && math.IsNaN(fy)) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(x.Interface(), y.Interface()) {
			return false
		}
	}
	return true
}
