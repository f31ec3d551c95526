// Package reconcile makes a directory of spec files the desired state and
// drives runtime toward it, level-triggered.
package reconcile

import (
	"errors"
	"time"

	"github.com/rs/zerolog"

	"llamactl/runtime"
	"llamactl/spec"
)

// Errors returned by the write and lookup methods; errors.Is matches them.
var (
	ErrNotFound           = errors.New("instance not found")
	ErrExists             = errors.New("instance already exists")
	ErrReadOnly           = errors.New("specs are read-only: commit the change to the repository instead")
	ErrPreconditionFailed = errors.New("spec changed since it was read (If-Match does not match)")
	ErrConflict           = errors.New("instance name is claimed by more than one file")
	// Spec errors are spec.ErrInvalid (an spec.ErrorList).
)

// Condition is a Kubernetes-style status condition.
type Condition struct {
	Type               string    `json:"type"`   // SpecValid, Ready, Stalled
	Status             string    `json:"status"` // "True", "False", "Unknown"
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"last_transition_time"`
}

// InstanceStatus is what the API shows of one instance.
type InstanceStatus struct {
	Name         string
	Created      time.Time  // first seen (file mtime or creation)
	Spec         *spec.Spec // last good spec; nil if never valid
	File         string     // source file, relative to the specs dir
	Format       spec.Format
	ETag         string // content hash of the file as last read
	Revision     string // git-sync revision (link target), if any
	Desired      string // running | stopped
	DesiredHash  string
	ObservedHash string
	Sync         string // synced | out_of_sync
	Error        string // file:line:col: message of the current file, if broken
	Conditions   []Condition
	Runtime      runtime.Status
}

// DaemonStatus is the status of the specs directory as a whole.
type DaemonStatus struct {
	SpecsDir  string
	Revision  string
	ReadOnly  bool
	Error     string // e.g. directory missing; the fleet is not pruned meanwhile
	LastSync  time.Time
	Instances int
}

// Options configure a Loop.
type Options struct {
	SpecsDir       string
	ReadOnly       bool
	Debounce       time.Duration // default 200ms
	ResyncInterval time.Duration // default 60s
	Workers        int           // default 4
	Binary         string        // llama-server path
	Flags          *spec.Flags   // may be nil
	Defaults       Defaults
	Runtime        *runtime.Manager
	// Logger receives the loop's log lines; nil discards them.
	Logger *zerolog.Logger
}

// Defaults fill supervision fields a spec leaves out.
type Defaults struct {
	StopTimeout    time.Duration
	StartupTimeout time.Duration
	RestartDelay   time.Duration
	MaxRestarts    int
}
