// Package runtime supervises llama-server processes: one Supervisor per
// instance, each owned by one goroutine.
//
// A Manager owns what supervisors share: the port range, the data
// directory (logs/<name>.log, run/<name>.json) and the records of a
// previous run. A Supervisor turns a Config into a live, healthy process
// and keeps it so (see Supervisor for the state table).
//
// Processes. The binary runs with cfg.Args + "--host H --port P", the
// daemon environment plus cfg.Env, DataDir as working directory, stdin
// on /dev/null, in its own process group. Stop is SIGTERM to the group,
// StopTimeout, SIGKILL to the group; whenever the leader exits (stop or
// crash) the rest of its group is killed before the leader is reaped, so a
// wrapper's children never outlive it holding the port. Exits are watched
// through a pidfd (also for adopted processes, which are not our
// children), so no goroutine blocks in an uncancellable wait.
//
// Ports. An explicit Config.Port is used as is. Otherwise a port of
// [PortMin, PortMax] is leased: never to two instances, only after a bind
// test shows it free, released when the process is gone. A child that
// exits with code 1 within 500 ms of exec while its leased port is busy
// lost a race for the port: it is started again on another port, not
// counted as a crash (at most 3 times per start).
//
// Readiness. running means GET /health answered 200 (probed on loopback
// when the host is a wildcard), polled every 4 ms for the first 200 ms,
// then backing off to 1 s, bounded by StartupTimeout.
//
// Logs. The child writes straight into its log file (see logfile.go for
// why and how rotation works); Tail reads from the end of the file.
//
// Adoption. Each child's pid, pgid, port, /proc start time, command line
// and config hash are recorded (atomic write) in run/<name>.json. With
// KeepOnShutdown, Shutdown leaves children and records in place; the next
// Manager adopts a recorded child whose hash matches, that is still the
// same process (start time and command line) and healthy, and watches it
// like its own. ReapStale stops recorded children nobody claimed; records
// whose pid now belongs to an unrelated process are dropped, not killed.
package runtime

import (
	"errors"
	"time"

	"github.com/rs/zerolog"
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
	// Spec is opaque to runtime: kept in the child's record so that the
	// next daemon can tell what a recorded child runs (RecordedSpec).
	// reconcile stores the spec it applied.
	Spec []byte

	StopTimeout    time.Duration // SIGTERM to SIGKILL; 0 = DefaultStopTimeout, KillAtOnce = no wait
	StartupTimeout time.Duration // exec to healthy; 0 = DefaultStartupTimeout

	AutoRestart  bool          // false: a crash leaves the instance failed
	MaxRestarts  int           // restarts before failed; < 0 = no limit
	RestartDelay time.Duration // first backoff; doubles up to MaxRestartDelay

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
	KeepOnShutdown bool        // leave children running for adoption on Shutdown
	LogMaxBytes    int64       // rotate a log past this size; default 10 MiB
	LogBackups     int         // rotated files kept (name.log.1 ...); 0 = 3, < 0 = none
	OnEvent        func(Event) // optional; called from supervisor goroutines, must not block

	// Logger, when set, gets one line per phase transition (field
	// "instance" = the name).
	Logger *zerolog.Logger
	// Env is the daemon environment children start with (cfg.Env is
	// added on top). Nil means os.Environ().
	Env []string
	// MaxRestartDelay caps the exponential restart backoff; default 30s.
	MaxRestartDelay time.Duration
	// StableAfter is how long an instance must stay healthy for its
	// restart count to reset; default 60s.
	StableAfter time.Duration
	// LogCheckInterval is how often a running child's log size is checked
	// for rotation; default 1s.
	LogCheckInterval time.Duration
	// AdoptProbeTimeout bounds the /health probe of a recorded child
	// before adopting it; default 1s.
	AdoptProbeTimeout time.Duration
	// Liveness: a running child's /health is probed every LivenessInterval
	// (default 10s; < 0: never), each probe bounded by LivenessTimeout
	// (default 5s). After LivenessFailures probes in a row that do not
	// answer 200 (default 3) the child is taken for hung: it is stopped
	// (SIGTERM, SIGKILL after its stop timeout) and restarted as after a
	// crash, counted against its restart budget.
	LivenessInterval time.Duration
	LivenessTimeout  time.Duration
	LivenessFailures int
}

// KillAtOnce as Config.StopTimeout sends SIGKILL right after SIGTERM (a
// spec's stop_timeout: 0).
const KillAtOnce time.Duration = -1

// Defaults applied where a Config or ManagerOptions leaves zero.
const (
	DefaultStopTimeout      = 10 * time.Second
	DefaultStartupTimeout   = 5 * time.Minute
	DefaultMaxRestartDelay  = 30 * time.Second
	DefaultStableAfter      = 60 * time.Second
	DefaultLogMaxBytes      = 10 << 20
	DefaultLogBackups       = 3
	DefaultLogCheckInterval = time.Second
	DefaultLivenessInterval = 10 * time.Second
	DefaultLivenessTimeout  = 5 * time.Second
	DefaultLivenessFailures = 3
)

// Errors of EnsureReady; errors.Is matches them.
var (
	ErrStopped  = errors.New("instance is stopped") // desired state stopped
	ErrFailed   = errors.New("instance has failed") // past its restart budget
	ErrNotReady = errors.New("instance not ready")  // startup timed out or crashed while waiting
)
