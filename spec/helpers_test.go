package spec

import (
	"math/rand/v2"
	"reflect"
	"strings"
)

// setSample sets option o in s to a fixed sample value; variant 1 gives
// the false or zero value.
func setSample(s *Spec, o *option, variant int) {
	v := o.field(s)
	switch o.kind {
	case oPlain:
		v.SetString("x")
	case oString:
		str := "value"
		if o.pair {
			str = "1 10"
		}
		if variant == 1 && !o.pair {
			str = ""
		}
		v.Set(reflect.ValueOf(&str))
	case oInt:
		i := 4 * (1 - variant)
		v.Set(reflect.ValueOf(&i))
	case oFloat:
		x := 0.5 * float64(1-variant)
		v.Set(reflect.ValueOf(&x))
	case oBool:
		b := variant == 0
		v.Set(reflect.ValueOf(&b))
	case oStrings:
		v.Set(reflect.ValueOf([]string{"a", "b"}))
	case oEnv:
		v.Set(reflect.ValueOf(map[string]string{"A": "1"}))
	}
}

const alphabet = "abcXYZ019 _-./:#\"'\\\n\t{}[],&*!|>%@`é→\u2028"

func randString(r *rand.Rand) string {
	if r.IntN(8) == 0 {
		pick := []string{"", "true", "no", "null", "~", "1", "1e3", "0x10", "-1", ".5", "  lead", "trail  ", "a: b", "#c", "- x", "on", "Off", "y", "1_000", ".inf", "+1"}
		return pick[r.IntN(len(pick))]
	}
	runes := []rune(alphabet)
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

// randomSpec sets each option with probability 1/2 to a random value.
func randomSpec(r *rand.Rand) *Spec {
	s := &Spec{}
	for _, o := range options {
		if r.IntN(2) == 0 {
			continue
		}
		v := o.field(s)
		switch o.kind {
		case oPlain:
			v.SetString(randString(r) + "x")
		case oString:
			str := randString(r)
			v.Set(reflect.ValueOf(&str))
		case oInt:
			i := r.IntN(1<<40) - 1<<39
			if r.IntN(4) == 0 {
				i = r.IntN(3) - 1
			}
			v.Set(reflect.ValueOf(&i))
		case oFloat:
			x := (r.Float64() - 0.5) * 1e6
			switch r.IntN(5) {
			case 0:
				x = float64(r.IntN(100))
			case 1:
				x = r.NormFloat64() * 1e-9
			case 2:
				x = 1e300 * r.Float64()
			}
			v.Set(reflect.ValueOf(&x))
		case oBool:
			b := r.IntN(2) == 0
			v.Set(reflect.ValueOf(&b))
		case oStrings:
			list := make([]string, 1+r.IntN(3))
			for i := range list {
				list[i] = randString(r)
			}
			v.Set(reflect.ValueOf(list))
		case oEnv:
			m := map[string]string{}
			for range 1 + r.IntN(3) {
				m[randString(r)+"K"] = randString(r)
			}
			v.Set(reflect.ValueOf(m))
		}
	}
	return s
}
