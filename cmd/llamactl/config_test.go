package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", `
specs_dir: /from/file
listen: 127.0.0.1:9000
data_dir: /data/file
port_range: {min: 5000, max: 5100}
reconcile:
  debounce: 50ms
defaults:
  stop_timeout: 3
`)
	env := []string{
		"LLAMACTL_LISTEN=127.0.0.1:9001",
		"LLAMACTL_DATA_DIR=/data/env",
		"LLAMACTL_AUTH_MANAGEMENT_KEYS=k1, k2",
		"UNRELATED=1",
	}
	cfg, err := loadConfig(file, env, map[string]any{"data_dir": "/data/flag"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"file beats default", cfg.SpecsDir, "/from/file"},
		{"env beats file", cfg.Listen, "127.0.0.1:9001"},
		{"flag beats env", cfg.DataDir, "/data/flag"},
		{"nested file key", cfg.PortRange.Min, 5000},
		{"duration string", cfg.Reconcile.Debounce, 50 * time.Millisecond},
		{"duration seconds", cfg.Defaults.StopTimeout, 3 * time.Second},
		{"default kept", cfg.Reconcile.ResyncInterval, 60 * time.Second},
		{"env list", strings.Join(cfg.Auth.ManagementKeys, "|"), "k1|k2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigTOML(t *testing.T) {
	file := writeFile(t, "c.toml", "specs_dir = \"/toml\"\n[port_range]\nmin = 100\nmax = 200\n")
	cfg, err := loadConfig(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SpecsDir != "/toml" || cfg.PortRange.Max != 200 {
		t.Fatalf("got %+v", cfg)
	}
	// Keys, once configured, guard both surfaces unless turned off.
	if !cfg.Auth.RequireManagementAuth || !cfg.Auth.RequireInferenceAuth {
		t.Fatalf("auth requirements default to %+v, want both on", cfg.Auth)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name    string
		file    string // YAML body; "" = no file
		env     []string
		wantSub string
	}{
		{"unknown key with suggestion", "listne: 1.2.3.4:5\n", nil, `did you mean "listen"`},
		{"unknown nested key", "reconcile:\n  debunce: 1s\n", nil, `reconcile.debunce`},
		{"bad duration", "reconcile:\n  debounce: fast\n", nil, `bad duration "fast"`},
		{"impossible port range", "port_range: {min: 9000, max: 8000}\n", nil, "port_range 9000-8000 is impossible"},
		{"port above 65535", "port_range: {min: 1, max: 70000}\n", nil, "impossible"},
		{"bad listen", "listen: nowhere\n", nil, "want HOST:PORT"},
		{"bad env duration", "", []string{"LLAMACTL_RECONCILE_RESYNC_INTERVAL=often"}, `bad duration "often"`},
		{"bad log level", "log: {level: loud}\n", nil, "log.level"},
		{"syntax error", "listen: [\n", nil, "config file"},
		{"wrong type", "reconcile: {workers: many}\n", nil, "workers"},
		{"no health failures", "health: {failures: 0}\n", nil, "health.failures"},
		{"negative health interval", "", []string{"LLAMACTL_HEALTH_INTERVAL=-1s"}, "health.interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, "c.yaml", c.file)
			}
			_, err := loadConfig(path, c.env, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, errConfig) {
				t.Errorf("error %v is not a configuration error", err)
			}
			if !strings.Contains(err.Error(), c.wantSub) {
				t.Errorf("error %q does not mention %q", err, c.wantSub)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := loadConfig(filepath.Join(t.TempDir(), "nope.yaml"), nil, nil); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("unknown extension", func(t *testing.T) {
		if _, err := loadConfig(writeFile(t, "c.ini", "x=1"), nil, nil); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestKeyFile(t *testing.T) {
	keys := writeFile(t, "keys", "# comment\nabc\n\n def \n")
	cfg, err := loadConfig("", []string{"LLAMACTL_AUTH_INFERENCE_KEYS_FILE=" + keys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Auth.InferenceKeys, ","); got != "abc,def" {
		t.Fatalf("inference keys = %q", got)
	}
}

func TestEnvNames(t *testing.T) {
	for key, want := range map[string]string{
		"specs_dir":            "LLAMACTL_SPECS_DIR",
		"auth.management_keys": "LLAMACTL_AUTH_MANAGEMENT_KEYS",
		"port_range.min":       "LLAMACTL_PORT_RANGE_MIN",
	} {
		if got := envName(key); got != want {
			t.Errorf("envName(%q) = %q, want %q", key, got, want)
		}
	}
}

// readonly is known to be given, false included, from each source: an
// explicit false lets the API write into a git work tree.
func TestReadOnlySet(t *testing.T) {
	dir := t.TempDir()
	withKey := filepath.Join(dir, "ro.yaml")
	without := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(withKey, []byte("readonly: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(without, []byte("listen: 127.0.0.1:9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		env     []string
		flags   map[string]any
		set, ro bool
	}{
		{"nothing", "", nil, nil, false, false},
		{"file without the key", without, nil, nil, false, false},
		{"file false", withKey, nil, nil, true, false},
		{"env false", "", []string{"LLAMACTL_READONLY=false"}, nil, true, false},
		{"env true", "", []string{"LLAMACTL_READONLY=true"}, nil, true, true},
		{"flag false", "", nil, map[string]any{"readonly": false}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.file, tt.env, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ReadOnlySet != tt.set || cfg.ReadOnly != tt.ro {
				t.Errorf("ReadOnlySet %v ReadOnly %v, want %v %v", cfg.ReadOnlySet, cfg.ReadOnly, tt.set, tt.ro)
			}
		})
	}
}

// A LLAMACTL_* variable that names no setting is a warning (with the
// closest name), not an error: scripts may set their own.
func TestUnknownEnvWarns(t *testing.T) {
	cfg, err := loadConfig("", []string{"LLAMACTL_LISTN=127.0.0.1:1", "LLAMACTL_CONFIG=", "LLAMACTL_LOG_LEVEL=debug", "OTHER=1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "LLAMACTL_LISTN") || !strings.Contains(cfg.Warnings[0], "did you mean LLAMACTL_LISTEN?") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Log.Level != "debug" {
		t.Fatalf("listen %q level %q", cfg.Listen, cfg.Log.Level)
	}
}

// TestExampleConfigLoads: the commented example config is a valid config
// whose values are the documented ones.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := loadConfig("../../examples/llamactl.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Health.Interval != 10*time.Second || cfg.Health.Timeout != 5*time.Second || cfg.Health.Failures != 3 {
		t.Errorf("health = %+v", cfg.Health)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.PortRange.Min != 41000 {
		t.Errorf("listen %q, port_range %+v", cfg.Listen, cfg.PortRange)
	}
}
