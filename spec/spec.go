// Package spec owns the llamactl instance spec: the Spec type, strict
// decoding of YAML, TOML and JSON with file:line:col errors, validation,
// the name rule, llama-server argv building, the canonical hash and
// encoding back in a file's own format.
//
// A Spec field is a pointer (or a nil slice/map) so that "absent" and
// "present with the zero value" differ: a temperature of 0 written in a
// file is a real setting and is passed to llama-server.
package spec

// Format is a spec file's encoding.
type Format string

// The formats a spec file can be written in.
const (
	YAML Format = "yaml"
	TOML Format = "toml"
	JSON Format = "json"
)

// Desired states.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// Spec is one instance's desired state: every option of the seed API's
// CreateInstanceOptions (same snake_case keys) plus supervision fields.
type Spec struct {
	// Name, if present, must equal the file stem.
	Name string `json:"name,omitempty"`

	// Supervision fields (not passed to llama-server).
	State               string            `json:"state,omitempty"`
	OnDemandStart       *bool             `json:"on_demand_start,omitempty"`
	IdleTimeout         *int              `json:"idle_timeout,omitempty"`
	Env                 map[string]string `json:"env,omitempty"`
	ExtraArgs           []string          `json:"extra_args,omitempty"`
	StopTimeout         *int              `json:"stop_timeout,omitempty"`
	StartupTimeout      *int              `json:"startup_timeout,omitempty"`
	AutoRestart         *bool             `json:"auto_restart,omitempty"`
	MaxRestarts         *int              `json:"max_restarts,omitempty"`
	RestartDelaySeconds *int              `json:"restart_delay_seconds,omitempty"`

	// llama-server options used outside this package; the rest of the
	// seed's options follow in options.go.
	Host    *string `json:"host,omitempty"`
	Port    *int    `json:"port,omitempty"`
	Alias   *string `json:"alias,omitempty"`
	Model   *string `json:"model,omitempty"`
	APIKey  *string `json:"api_key,omitempty"`
	HFToken *string `json:"hf_token,omitempty"`
}
