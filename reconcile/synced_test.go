package reconcile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"llamactl/runtime"
)

// A specs dir missing when the daemon restarts: Loaded closes (the daemon
// serves and shows the error) but Synced waits for a good read, so the
// children recorded by the previous run are not reaped meanwhile; once
// the dir is back they are adopted, not restarted.
func TestSyncedWaitsForAGoodRead(t *testing.T) {
	dir, state, data := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a"))
	base := 51000 + int(portBlock.Add(1))*50%4000
	run := func(keep bool) (*Loop, *runtime.Manager, func()) { return runDaemon(t, dir, data, base, keep) }

	l1, _, stop1 := run(true)
	select {
	case <-l1.Synced():
	default:
		t.Fatal("Synced not closed after a good initial load")
	}
	pa := runningPID(t, l1, state, "a", 0)
	stop1()

	moved := dir + ".moved"
	must(t, os.Rename(dir, moved))
	l2, m2, stop2 := run(false)
	defer stop2()
	if l2.Status().Error == "" {
		t.Fatal("no error for the missing specs dir")
	}
	select {
	case <-l2.Synced():
		t.Fatal("Synced closed while the specs dir is missing")
	default:
	}
	if got := m2.StaleRecords(); !slices.Equal(got, []string{"a"}) || !alive(pa) {
		t.Fatalf("stale records %v, child alive %v", got, alive(pa))
	}

	must(t, os.Rename(moved, dir))
	l2.Resync()
	select {
	case <-l2.Synced():
	case <-time.After(20 * time.Second):
		t.Fatal("Synced not closed after the specs dir came back")
	}
	if got := m2.StaleRecords(); len(got) != 0 {
		t.Fatalf("stale records after Synced: %v", got)
	}
	st, err := l2.Get("a")
	must(t, err)
	if st.Runtime.PID != pa || !st.Runtime.Adopted || !alive(pa) {
		t.Fatalf("a not adopted: %+v (was pid %d)", st.Runtime, pa)
	}
}
