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

// TestByteOrderMark: a file that starts with a UTF-8 byte order mark (as
// some Windows editors write) decodes as without it, its errors keep
// their positions as an editor shows them, and an update keeps the mark
// and the comments.
func TestByteOrderMark(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	for f, data := range map[Format]string{
		YAML: "model: /m\n# c\ntemprature: 1\n",
		TOML: "model = \"/m\"\n# c\ntemprature = 1\n",
		JSON: "{\"model\": \"/m\",\n\n\"temprature\": 1}\n",
	} {
		t.Run(string(f), func(t *testing.T) {
			_, err := Decode([]byte(bom+data), f, "f")
			if err == nil || !strings.HasPrefix(err.Error(), "f:3:1: unknown key \"temprature\"") {
				t.Fatalf("Decode = %v", err)
			}
			good := bom + strings.Replace(data, "temprature", "temperature", 1)
			s, err := Decode([]byte(good), f, "f")
			if err != nil || *s.Model != "/m" || *s.Temperature != 1 {
				t.Fatalf("Decode = %+v, %v", s, err)
			}
			s.Temperature = ptr(0.5)
			out, err := Update([]byte(good), f, s)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(out), bom) || f != JSON && !strings.Contains(string(out), "# c") {
				t.Errorf("Update lost the mark or the comment:\n%q", out)
			}
			if back, err := Decode(out, f, "f"); err != nil || *back.Temperature != 0.5 {
				t.Errorf("updated file decodes to %+v, %v", back, err)
			}
		})
	}
	if _, err := Decode([]byte(bom), YAML, "f"); err == nil || !strings.Contains(err.Error(), "empty spec") {
		t.Errorf("a file holding only the mark: %v, want empty spec", err)
	}
}

// TestUpdateKeepsCRLF: an update of a file with Windows line endings
// keeps them and its comments.
func TestUpdateKeepsCRLF(t *testing.T) {
	for f, data := range map[Format]string{
		YAML: "# top\r\nmodel: /m  # the model\r\ntemperature: 1\r\n",
		TOML: "# top\r\nmodel = \"/m\"  # the model\r\ntemperature = 1\r\n",
	} {
		t.Run(string(f), func(t *testing.T) {
			s, err := Decode([]byte(data), f, "f")
			if err != nil {
				t.Fatal(err)
			}
			s.Temperature = ptr(0.5)
			out, err := Update([]byte(data), f, s)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
			if strings.Count(string(out), "\n") != strings.Count(string(out), "\r\n") || len(lines) != 3 ||
				!strings.Contains(string(out), "# top") || !strings.Contains(string(out), "# the model") {
				t.Errorf("Update = %q, want CRLF lines with the comments kept", out)
			}
			if back, err := Decode(out, f, "f"); err != nil || *back.Temperature != 0.5 {
				t.Errorf("updated file decodes to %+v, %v", back, err)
			}
		})
	}
}
