package spec

import (
	"strings"
	"testing"
)

// TestCRLF: files with Windows line endings decode, and errors keep
// their line numbers.
func TestCRLF(t *testing.T) {
	for f, data := range map[Format]string{
		YAML: "model: /m\r\n# c\r\ntemprature: 1\r\n",
		TOML: "model = \"/m\"\r\n# c\r\ntemprature = 1\r\n",
		JSON: "{\"model\": \"/m\",\r\n\r\n\"temprature\": 1}\r\n",
	} {
		t.Run(string(f), func(t *testing.T) {
			_, err := Decode([]byte(data), f, "f")
			if err == nil || !strings.HasPrefix(err.Error(), "f:3:1: unknown key \"temprature\"") {
				t.Fatalf("Decode = %v", err)
			}
			s, err := Decode([]byte(strings.Replace(data, "temprature", "temperature", 1)), f, "f")
			if err != nil || *s.Model != "/m" || *s.Temperature != 1 {
				t.Fatalf("Decode = %+v, %v", s, err)
			}
		})
	}
}
