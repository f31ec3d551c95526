// Package runtime supervises llama-server processes: one Supervisor per
// instance, each owned by one goroutine.
package runtime

import (
	"context"
	"errors"
	"time"
)

// Phase is where an instance's process is in its life.
type Phase string

// Phases.
const (
	PhaseStopped  Phase = "stopped"
	PhaseStarting Phase = "starting"
	PhaseRunning  Phase = "running" // healthy: /health answered 200
	PhaseStopping Phase = "stopping"
	PhaseBackoff  Phase = "backoff"
	PhaseFailed   Phase = "failed"
	PhaseSleeping Phase = "sleeping" // on-demand: waits for a request
)

// Config is everything a supervisor needs to run one instance. It is
// built by reconcile from a spec; runtime never reads spec files.
type Config struct {
	Name   string
	Binary string
	Args   []string // llama-server argv without the binary, --host, --port
	Env    map[string]string
	Host   string // address llama-server binds; default 127.0.0.1
	Port   int    // 0 = lease one from the manager's port range
	Hash   string // canonical spec hash; a change means restart

	StopTimeout    time.Duration
	StartupTimeout time.Duration

	AutoRestart  bool
	MaxRestarts  int
	RestartDelay time.Duration

	OnDemand    bool          // sleep until EnsureReady
	IdleTimeout time.Duration // 0 = never stop for idleness
}

// Status is a snapshot of one supervisor.
type Status struct {
	Name      string
	Phase     Phase
	Since     time.Time // time of the last phase transition
	Hash      string    // hash of the config the process runs (or will)
	PID       int
	Port      int
	Restarts  int // crashes counted against the restart budget
	LastError string
	StartedAt time.Time // when the current process became healthy
	InFlight  int
	Adopted   bool
}

// Event is one phase transition.
type Event struct {
	Name     string
	From, To Phase
	At       time.Time
	Reason   string
}

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	DataDir        string // logs in DataDir/logs, records in DataDir/run
	PortMin        int
	PortMax        int
	KeepOnShutdown bool // leave children running for adoption on Shutdown
	LogMaxBytes    int64
	LogBackups     int
	OnEvent        func(Event) // optional; called from supervisor goroutines, must not block
}

// Manager owns what supervisors share: the port leases, the data
// directory and the records of running children.
type Manager struct{}

// NewManager prepares the data directory and reads the records of a
// previous run (they are adopted or cleaned up by Supervise/ReapStale).
func NewManager(opts ManagerOptions) (*Manager, error) { panic("unimplemented") }

// Supervise returns the supervisor for cfg.Name, creating it (stopped) if
// needed. A child recorded by a previous run with the same name and hash
// that is alive, ours and healthy is adopted instead of started anew.
func (m *Manager) Supervise(cfg Config) *Supervisor { panic("unimplemented") }

// Get returns the supervisor of name, if any.
func (m *Manager) Get(name string) (*Supervisor, bool) { panic("unimplemented") }

// Remove stops the supervisor of name and forgets it.
func (m *Manager) Remove(ctx context.Context, name string) error { panic("unimplemented") }

// ReapStale stops every recorded child not adopted by now (its record is
// stale or its instance no longer desired) and frees its port. A record
// whose pid now belongs to an unrelated process is dropped, not killed.
func (m *Manager) ReapStale(ctx context.Context) error { panic("unimplemented") }

// Shutdown stops every child (or detaches them, with KeepOnShutdown) and
// ends all supervisor goroutines.
func (m *Manager) Shutdown(ctx context.Context) error { panic("unimplemented") }

// Supervisor runs one instance. Its methods are safe for concurrent use.
type Supervisor struct{}

// Update sets a new config. When the hash changed and a process runs, it
// is restarted: in-flight requests finish first (bounded by StopTimeout)
// and requests arriving meanwhile wait for the new process.
func (s *Supervisor) Update(ctx context.Context, cfg Config) error { panic("unimplemented") }

// Start makes the instance desired-running (sleeping when OnDemand) and
// clears a failed state. It returns once the start is under way.
func (s *Supervisor) Start(ctx context.Context) error { panic("unimplemented") }

// Stop makes the instance desired-stopped and waits until the process
// group is gone.
func (s *Supervisor) Stop(ctx context.Context) error { panic("unimplemented") }

// Restart stops and starts the process, resetting the restart budget.
func (s *Supervisor) Restart(ctx context.Context) error { panic("unimplemented") }

// EnsureReady wakes a sleeping instance and waits until it is healthy.
// On success it returns the address (host:port) to send the request to
// and a release func that must be called when the request ends: while
// any request is in flight the instance is not stopped for idleness.
func (s *Supervisor) EnsureReady(ctx context.Context) (addr string, release func(), err error) {
	panic("unimplemented")
}

// Snapshot returns the current status.
func (s *Supervisor) Snapshot() Status { panic("unimplemented") }

// Subscribe returns phase transition events until cancel is called.
func (s *Supervisor) Subscribe() (events <-chan Event, cancel func()) { panic("unimplemented") }

// LogPath is the instance's current log file.
func (s *Supervisor) LogPath() string { panic("unimplemented") }

// Tail returns the last n lines of the instance's log (n <= 0: all).
func (s *Supervisor) Tail(n int) ([]byte, error) { panic("unimplemented") }

// Errors of EnsureReady; errors.Is matches them.
var (
	ErrStopped  = errors.New("instance is stopped") // desired state stopped
	ErrFailed   = errors.New("instance has failed") // past its restart budget
	ErrNotReady = errors.New("instance not ready")  // startup timed out or crashed while waiting
)
