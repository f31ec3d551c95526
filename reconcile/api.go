// Package reconcile makes a directory of spec files the desired state and
// drives runtime toward it, level-triggered, the way Kubernetes
// controllers and Flux do.
//
// # Desired state
//
// The specs dir is scanned recursively for .yaml, .yml, .toml and .json
// files; hidden files and folders (.git), editor swap and backup files and
// our own temporary files are skipped. An instance's name is its file's
// stem; a stem claimed by two files is a conflict reported on both, and
// neither is started (a running one is left as it is). Each file is
// decoded and validated (package spec) into name -> {spec, hash, file,
// format, etag, revision, error}. A file that stops parsing keeps its last
// good spec and puts "file:line:col: message" on the instance's status; a
// deleted file deletes the instance. A directory that is missing,
// unreadable, or suddenly empty never prunes the fleet: that is an error
// on the daemon status until a read at least a second later agrees.
//
// # Events
//
// One goroutine owns an fsnotify watcher on every folder of the tree and
// on the folder holding the specs dir (or holding the symlink above it
// that git-sync swaps). Events are debounced (Options.Debounce) into one
// batch; a batch re-reads only the paths its events named, while a swapped
// link, a replaced dir, an overflow, a retry and the periodic resync
// (Options.ResyncInterval) walk the whole tree. Content hashes make a
// repeated event, and the event of our own write, a no-op.
//
// # Loop
//
// Changed names go on a queue (duplicates merge, one pass per name at a
// time, a name re-added mid-pass runs again after, per-name exponential
// backoff on error). A pass compares the desired spec with the
// supervisor's state and does the least: start, stop, update (a restart
// only when the canonical hash changed) or remove. Errors wrapping
// spec.ErrInvalid are terminal and wait for the file to change.
//
// # Writes
//
// Create, Update, Delete and SetState write the spec file atomically in
// its own format (temp file in the same folder, fsync, compare-and-swap
// against the file's current content, rename, fsync of the folder),
// apply the new content at once and queue the name. With
// Options.ReadOnly, when the specs dir is under a symlink (git-sync), or
// when it is in a git work tree (unless Options.GitWritable), every write
// fails with ErrReadOnly.
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
	SpecsDir string
	ReadOnly bool
	// GitWritable lets the API write specs in a git work tree (the
	// operator set readonly: false); by default such specs are read-only,
	// changed by commits. A git-sync link is read-only regardless.
	GitWritable    bool
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
