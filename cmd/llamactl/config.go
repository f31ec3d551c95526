package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"llamactl/spec"
)

// Config is the daemon's configuration. Precedence: built-in defaults <
// config file (YAML or TOML) < LLAMACTL_* environment < flags.
type Config struct {
	SpecsDir    string    `koanf:"specs_dir"`
	Listen      string    `koanf:"listen"`
	DataDir     string    `koanf:"data_dir"`
	LlamaServer string    `koanf:"llama_server"`
	PortRange   PortRange `koanf:"port_range"`
	ReadOnly    bool      `koanf:"readonly"`
	// ReadOnlySet tells that readonly was given (file, environment or
	// flag): an explicit false lets the API write specs in a git work
	// tree, which is read-only by default.
	ReadOnlySet bool `koanf:"-"`
	// Warnings are what loading noticed without failing: LLAMACTL_*
	// variables that name no key (scripts may set their own, so they are
	// not an error).
	Warnings  []string  `koanf:"-"`
	Auth      Auth      `koanf:"auth"`
	Reconcile Reconcile `koanf:"reconcile"`
	Defaults  Defaults  `koanf:"defaults"`
	Limits    Limits    `koanf:"limits"`
	Log       Log       `koanf:"log"`
	Shutdown  Shutdown  `koanf:"shutdown"`
	CORS      CORS      `koanf:"cors"`
	Health    Health    `koanf:"health"`
}

// PortRange is where instances without an explicit port get one.
type PortRange struct {
	Min int `koanf:"min"`
	Max int `koanf:"max"`
}

// Auth holds API keys. Keys may also come from files (one key a line).
type Auth struct {
	ManagementKeys        []string `koanf:"management_keys"`
	InferenceKeys         []string `koanf:"inference_keys"`
	ManagementKeysFile    string   `koanf:"management_keys_file"`
	InferenceKeysFile     string   `koanf:"inference_keys_file"`
	RequireManagementAuth bool     `koanf:"require_management_auth"`
	RequireInferenceAuth  bool     `koanf:"require_inference_auth"`
}

// Reconcile tunes the reconcile loop.
type Reconcile struct {
	Debounce       time.Duration `koanf:"debounce"`
	ResyncInterval time.Duration `koanf:"resync_interval"`
	Workers        int           `koanf:"workers"`
}

// Defaults fill supervision fields a spec leaves out.
type Defaults struct {
	StopTimeout         time.Duration `koanf:"stop_timeout"`
	StartupTimeout      time.Duration `koanf:"startup_timeout"`
	RestartDelaySeconds int           `koanf:"restart_delay_seconds"`
	MaxRestarts         int           `koanf:"max_restarts"`
}

// Limits bound what clients may send.
type Limits struct {
	MaxBodyBytes int `koanf:"max_body_bytes"`
}

// Log configures the daemon's own log.
type Log struct {
	Level  string `koanf:"level"`  // trace|debug|info|warn|error
	Format string `koanf:"format"` // auto|json|console
}

// Shutdown says what happens to children when the daemon exits.
type Shutdown struct {
	KeepChildren bool          `koanf:"keep_children"` // leave them running for adoption
	DrainTimeout time.Duration `koanf:"drain_timeout"` // in-flight requests get this long
}

// Health is the liveness check of running instances: /health probed
// every Interval (0 turns it off), each probe bounded by Timeout; after
// Failures probes in a row without a 200 the instance is taken for hung
// and restarted as after a crash.
type Health struct {
	Interval time.Duration `koanf:"interval"`
	Timeout  time.Duration `koanf:"timeout"`
	Failures int           `koanf:"failures"`
}

// CORS is off unless origins are listed.
type CORS struct {
	AllowOrigins []string `koanf:"allow_origins"`
}

func defaultConfig() map[string]any {
	return map[string]any{
		"specs_dir":                      "instances",
		"listen":                         "127.0.0.1:8080",
		"data_dir":                       defaultDataDir(),
		"llama_server":                   "llama-server",
		"port_range.min":                 41000,
		"port_range.max":                 41999,
		"readonly":                       false,
		"auth.management_keys":           []string{},
		"auth.inference_keys":            []string{},
		"auth.management_keys_file":      "",
		"auth.inference_keys_file":       "",
		"auth.require_management_auth":   true,
		"auth.require_inference_auth":    true,
		"reconcile.debounce":             "200ms",
		"reconcile.resync_interval":      "60s",
		"reconcile.workers":              4,
		"defaults.stop_timeout":          "10s",
		"defaults.startup_timeout":       "10m",
		"defaults.restart_delay_seconds": 2,
		"defaults.max_restarts":          5,
		"limits.max_body_bytes":          32 << 20,
		"log.level":                      "info",
		"log.format":                     "auto",
		"shutdown.keep_children":         false,
		"shutdown.drain_timeout":         "30s",
		"cors.allow_origins":             []string{},
		"health.interval":                "10s",
		"health.timeout":                 "5s",
		"health.failures":                3,
	}
}

// defaultDataDir is $XDG_STATE_HOME/llamactl, else ~/.local/state/llamactl.
func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "llamactl")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "llamactl")
	}
	return "llamactl-data"
}

// configKeys lists every leaf key, for the environment mapping and for
// rejecting unknown keys.
func configKeys() []string {
	keys := make([]string, 0, 32)
	for k := range defaultConfig() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// envName is the LLAMACTL_* variable of a config key: upper-cased, with
// '_' for nesting (auth.management_keys -> LLAMACTL_AUTH_MANAGEMENT_KEYS).
func envName(key string) string {
	return "LLAMACTL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// listKeys are comma-separated in the environment and on the command line.
var listKeys = map[string]bool{
	"auth.management_keys": true,
	"auth.inference_keys":  true,
	"cors.allow_origins":   true,
}

// errConfig marks a configuration error (exit code 2).
var errConfig = errors.New("configuration error")

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, a...))
}

// loadConfig merges defaults, the config file, environ and flag overrides
// (already-set flags only, keyed by config key) and validates the result.
func loadConfig(path string, environ []string, flags map[string]any) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaultConfig(), "."), nil); err != nil {
		return nil, configErr("load defaults: %v", err)
	}
	fromFile := false
	if path != "" {
		var p koanf.Parser
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml":
			p = yaml.Parser()
		case ".toml":
			p = toml.Parser()
		default:
			return nil, configErr("config file %s: unknown format (want .yaml, .yml or .toml)", path)
		}
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), p); err != nil {
			return nil, configErr("config file %s: %v", path, err)
		}
		known := map[string]bool{}
		for _, key := range configKeys() {
			known[key] = true
		}
		for _, key := range fk.Keys() {
			if !known[key] {
				return nil, configErr("config file %s: unknown key %q%s", path, key, suggestKey(key))
			}
		}
		fromFile = fk.Exists("readonly")
		if err := k.Merge(fk); err != nil {
			return nil, configErr("config file %s: %v", path, err)
		}
	}
	envMap := map[string]any{}
	env := map[string]string{}
	for _, kv := range environ {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "LLAMACTL_") {
			env[name] = val
		}
	}
	for _, key := range configKeys() {
		val, ok := env[envName(key)]
		if !ok {
			continue
		}
		if listKeys[key] {
			envMap[key] = splitList(val)
		} else {
			envMap[key] = val
		}
	}
	if err := k.Load(confmap.Provider(envMap, "."), nil); err != nil {
		return nil, configErr("environment: %v", err)
	}
	if err := k.Load(confmap.Provider(flags, "."), nil); err != nil {
		return nil, configErr("flags: %v", err)
	}

	var cfg Config
	dc := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			stringToListHook,
		),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &cfg,
		TagName:          "koanf",
	}
	d, err := mapstructure.NewDecoder(dc)
	if err != nil {
		return nil, configErr("%v", err)
	}
	if err := d.Decode(k.Raw()); err != nil {
		return nil, configErr("%v", err)
	}
	cfg.Warnings = unknownEnv(env)
	_, fromEnv := envMap["readonly"]
	_, fromFlag := flags["readonly"]
	cfg.ReadOnlySet = fromFlag || fromEnv || fromFile
	if err := cfg.readKeyFiles(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// configEnv names the config file; it is no config key.
const configEnv = "LLAMACTL_CONFIG"

// unknownEnv names the LLAMACTL_* variables of env that are no config key
// (nor LLAMACTL_CONFIG), with the closest known name.
func unknownEnv(env map[string]string) []string {
	known := []string{configEnv}
	for _, key := range configKeys() {
		known = append(known, envName(key))
	}
	var out []string
	for name := range env {
		if slices.Contains(known, name) {
			continue
		}
		msg := "environment variable " + name + " names no setting; it is ignored"
		if best := spec.Closest(name, known); best != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// durationHook accepts Go durations ("200ms", "1m") and plain numbers,
// which are seconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(n * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("bad duration %q (want e.g. \"500ms\", \"30s\", \"2m\", or seconds)", v)
		}
		return d, nil
	case int, int64, float64:
		f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
		return time.Duration(f * float64(time.Second)), nil
	}
	return data, nil
}

func stringToListHook(from, to reflect.Type, data any) (any, error) {
	if s, ok := data.(string); ok && to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.String {
		return splitList(s), nil
	}
	return data, nil
}

func (c *Config) readKeyFiles() error {
	for _, kf := range []struct {
		path string
		dst  *[]string
	}{
		{c.Auth.ManagementKeysFile, &c.Auth.ManagementKeys},
		{c.Auth.InferenceKeysFile, &c.Auth.InferenceKeys},
	} {
		if kf.path == "" {
			continue
		}
		b, err := os.ReadFile(kf.path)
		if err != nil {
			return configErr("read key file: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				*kf.dst = append(*kf.dst, line)
			}
		}
	}
	return nil
}

func (c *Config) validate() error {
	var errs []string
	if c.SpecsDir == "" {
		errs = append(errs, "specs_dir is empty")
	}
	if c.DataDir == "" {
		errs = append(errs, "data_dir is empty")
	}
	if c.LlamaServer == "" {
		errs = append(errs, "llama_server is empty")
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Sprintf("listen %q: want HOST:PORT", c.Listen))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Sprintf("listen %q: bad port", c.Listen))
	}
	pr := c.PortRange
	if pr.Min < 1 || pr.Max > 65535 || pr.Min > pr.Max {
		errs = append(errs, fmt.Sprintf("port_range %d-%d is impossible (want 1 <= min <= max <= 65535)", pr.Min, pr.Max))
	}
	if c.Reconcile.Debounce < 0 || c.Reconcile.ResyncInterval <= 0 {
		errs = append(errs, "reconcile.debounce must be >= 0 and reconcile.resync_interval > 0")
	}
	if c.Reconcile.Workers < 1 {
		errs = append(errs, "reconcile.workers must be at least 1")
	}
	if c.Defaults.StopTimeout <= 0 || c.Defaults.StartupTimeout <= 0 {
		errs = append(errs, "defaults.stop_timeout and defaults.startup_timeout must be positive")
	}
	if c.Defaults.RestartDelaySeconds < 0 || c.Defaults.MaxRestarts < 0 {
		errs = append(errs, "defaults.restart_delay_seconds and defaults.max_restarts must not be negative")
	}
	if c.Health.Interval < 0 || c.Health.Timeout <= 0 || c.Health.Failures < 1 {
		errs = append(errs, "health.interval must be >= 0 (0: no liveness probes), health.timeout > 0 and health.failures at least 1")
	}
	if c.Limits.MaxBodyBytes < 1024 {
		errs = append(errs, "limits.max_body_bytes must be at least 1024")
	}
	if !slices.Contains([]string{"trace", "debug", "info", "warn", "error"}, c.Log.Level) {
		errs = append(errs, fmt.Sprintf("log.level %q: want trace, debug, info, warn or error", c.Log.Level))
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.Log.Format) {
		errs = append(errs, fmt.Sprintf("log.format %q: want auto, json or console", c.Log.Format))
	}
	if c.Shutdown.DrainTimeout < 0 {
		errs = append(errs, "shutdown.drain_timeout must not be negative")
	}
	if len(errs) > 0 {
		return configErr("%s", strings.Join(errs, "; "))
	}
	return nil
}

// suggestKey names the closest known key, if one is close.
func suggestKey(key string) string {
	if best := spec.Closest(key, configKeys()); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
