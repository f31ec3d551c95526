package spec

import (
	"math/rand/v2"
	"testing"
)

// TestRoundTrip is a property test: for random specs over all fields,
// Decode(Encode(s)) equals s in every format.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		s := randomSpec(r)
		for _, f := range []Format{YAML, TOML, JSON} {
			data, err := Encode(s, f)
			if err != nil {
				t.Fatalf("case %d %s: encode: %v", i, f, err)
			}
			if len(data) == 0 {
				continue
			}
			got, err := Decode(data, f, "x."+string(f))
			if err != nil {
				t.Fatalf("case %d %s: decode: %v\n%s", i, f, err, data)
			}
			if !Equal(got, s) {
				t.Fatalf("case %d %s: round trip differs\n%s", i, f, data)
			}
			again, _ := Encode(got, f)
			if string(again) != string(data) {
				t.Fatalf("case %d %s: encoding not stable", i, f)
			}
		}
	}
}
