// Package reconcile makes a directory of spec files the desired state and
// drives runtime toward it, level-triggered.
package reconcile

import (
	"context"
	"errors"
	"time"

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
}

// Defaults fill supervision fields a spec leaves out.
type Defaults struct {
	StopTimeout    time.Duration
	StartupTimeout time.Duration
	RestartDelay   time.Duration
	MaxRestarts    int
}

// Loop owns the desired state and the reconcile queue.
type Loop struct{}

// New scans nothing yet; Run does the initial load.
func New(opts Options) (*Loop, error) { panic("unimplemented") }

// Run loads the directory, reconciles every instance, then watches until
// ctx ends. Load returns after the initial load so callers can wait for it.
func (l *Loop) Run(ctx context.Context) error { panic("unimplemented") }

// Loaded is closed once the initial load has been queued.
func (l *Loop) Loaded() <-chan struct{} { panic("unimplemented") }

// Resync queues a full re-read of the directory (SIGHUP).
func (l *Loop) Resync() { panic("unimplemented") }

// List returns every instance, sorted by name.
func (l *Loop) List() []InstanceStatus { panic("unimplemented") }

// Get returns one instance.
func (l *Loop) Get(name string) (InstanceStatus, error) { panic("unimplemented") }

// Status returns the daemon-level status.
func (l *Loop) Status() DaemonStatus { panic("unimplemented") }

// Create writes a new spec file (format "" = YAML) and queues it.
func (l *Loop) Create(name string, s *spec.Spec, f spec.Format) (InstanceStatus, error) {
	panic("unimplemented")
}

// Update replaces the spec in its file, keeping the file's format. A
// non-empty ifMatch must equal the file's current ETag.
func (l *Loop) Update(name string, s *spec.Spec, ifMatch string) (InstanceStatus, error) {
	panic("unimplemented")
}

// Delete removes the spec file; the instance is stopped and forgotten.
func (l *Loop) Delete(name string, ifMatch string) error { panic("unimplemented") }

// SetState writes state (running|stopped) into the spec file and waits
// for the reconcile pass that applies it, bounded by ctx.
func (l *Loop) SetState(ctx context.Context, name, state string) (InstanceStatus, error) {
	panic("unimplemented")
}

// Restart restarts the instance's process without changing its file.
func (l *Loop) Restart(ctx context.Context, name string) (InstanceStatus, error) {
	panic("unimplemented")
}

// Acquire maps an OpenAI model name (instance name or alias) to its
// instance, wakes it if it sleeps and waits until it is healthy (bounded by
// ctx). It returns the instance name, the upstream address (host:port) and
// a release func to call when the request ends. Errors: ErrNotFound for an
// unknown model; runtime.ErrStopped / runtime.ErrFailed / runtime.ErrNotReady.
func (l *Loop) Acquire(ctx context.Context, model string) (name, addr string, release func(), err error) {
	panic("unimplemented")
}

// Logs returns the last n lines of the instance's log (n <= 0: all).
func (l *Loop) Logs(name string, n int) ([]byte, error) { panic("unimplemented") }
