package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// record is what the daemon writes about a running child so that the next
// daemon can adopt it or clean it up: <DataDir>/run/<name>.json.
type record struct {
	Name      string    `json:"name"`
	PID       int       `json:"pid"`
	PGID      int       `json:"pgid"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Leased    bool      `json:"leased"`     // port came from the range
	StartTime uint64    `json:"start_time"` // /proc/<pid>/stat starttime
	Cmdline   []string  `json:"cmdline"`
	Binary    string    `json:"binary"`
	Hash      string    `json:"hash"`
	StartedAt time.Time `json:"started_at"`
	LogOffset int64     `json:"log_offset"`
	// Spec is Config.Spec: what the child runs, kept for the next daemon
	// (see Manager.RecordedSpec). Records are private files (0600), as
	// the command line already holds the same secrets.
	Spec []byte `json:"spec,omitempty"`
}

// ours reports whether r.PID still is the process r describes, alive and
// not a zombie: the same start time (clock ticks since boot) and either
// the same argv or still the leader of the recorded process group (a
// wrapper may have exec'd after the record was written).
func (r record) ours() bool {
	if r.PID <= 1 {
		return false
	}
	pi, err := readProc(r.PID)
	if err != nil || pi.Zombie {
		return false
	}
	return pi.StartTime == r.StartTime && (slices.Equal(pi.Cmdline, r.Cmdline) || pi.PGID == r.PGID && r.PGID == r.PID)
}

func recordPath(dir, name string) string { return filepath.Join(dir, name+".json") }

// writeRecord writes r atomically: temp file in the same directory, then
// rename. There is no fsync: records matter across a daemon crash (the page
// cache survives it), not across a power loss (which ends the children
// too), and the supervisor loop must not stall on a busy disk.
func writeRecord(dir string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+r.Name+".*.tmp")
	if errors.Is(err, fs.ErrNotExist) { // the folder went away: make it again
		if err = os.MkdirAll(dir, 0o755); err == nil {
			tmp, err = os.CreateTemp(dir, "."+r.Name+".*.tmp")
		}
	}
	if err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), recordPath(dir, r.Name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

func removeRecord(dir, name string) {
	_ = os.Remove(recordPath(dir, name))
}

// readRecords reads every record in dir. Unreadable records are skipped
// and returned as errors (they are also removed: nothing can be done
// with them).
func readRecords(dir string) (map[string]record, error) {
	out := map[string]record{}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read records: %w", err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		var r record
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && r.Name != strings.TrimSuffix(name, ".json") {
			err = fmt.Errorf("name %q does not match the file", r.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read record %s: %w", p, err))
			_ = os.Remove(p)
			continue
		}
		out[r.Name] = r
	}
	return out, errors.Join(errs...)
}
