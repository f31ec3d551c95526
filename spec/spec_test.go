package spec

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestSpecCoversSwagger checks the Spec against the swagger copy: every
// CreateInstanceOptions property is a key of the same type.
func TestSpecCoversSwagger(t *testing.T) {
	data, err := os.ReadFile("testdata/llamactl-v0.2.0.swagger.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sw struct {
		Definitions map[string]struct {
			Properties map[string]struct {
				Type  string `yaml:"type"`
				Items struct {
					Type string `yaml:"type"`
				} `yaml:"items"`
			} `yaml:"properties"`
		} `yaml:"definitions"`
	}
	if err := yaml.Unmarshal(data, &sw); err != nil {
		t.Fatal(err)
	}
	props := sw.Definitions["llamactl.CreateInstanceOptions"].Properties
	if len(props) != 159 || swaggerOptionCount != 159 {
		t.Fatalf("%d properties (generated %d), want 159", len(props), swaggerOptionCount)
	}
	want := map[string]optKind{"integer": oInt, "number": oFloat, "string": oString, "boolean": oBool, "array": oStrings}
	for key, p := range props {
		o := byKey[key]
		if o == nil {
			t.Errorf("no key %s", key)
			continue
		}
		if o.kind != want[p.Type] || (p.Type == "array" && p.Items.Type != "string") {
			t.Errorf("%s: kind %s, swagger %s", key, o.kind, p.Type)
		}
	}
	if len(options) != 159+8 {
		t.Errorf("%d options, want 159 + 8 supervision", len(options))
	}
	for i, o := range options {
		if (i < len(supervisionKeys)) != (o.group == gSupervision) {
			t.Errorf("%s at %d: supervision keys must come first", o.key, i)
		}
	}
}

// TestJSONTags keeps the HTTP API's encoding: every exported field's
// JSON tag is its snake_case key with omitempty.
func TestJSONTags(t *testing.T) {
	typ := reflect.TypeFor[Spec]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		key, opts, _ := strings.Cut(tag, ",")
		if opts != "omitempty" || byKey[key] == nil || byKey[key].index != i {
			t.Errorf("%s: json tag %q", f.Name, tag)
		}
	}
	s := &Spec{Model: ptr("/m"), Temperature: ptr(0.0), Env: map[string]string{"A": "1"}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"env":{"A":"1"},"model":"/m","temperature":0}` {
		t.Errorf("json.Marshal = %s", b)
	}
	back, err := Decode(b, JSON, "api")
	if err != nil || !Equal(back, s) {
		t.Errorf("Decode(json.Marshal(s)) = %+v, %v", back, err)
	}
}
