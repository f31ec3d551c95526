package reconcile

import (
	"path/filepath"
	"testing"

	"llamactl/runtime"
)

// Editing on_demand_start from true to false (the hash does not change)
// starts a sleeping instance; the edit restarts nothing else.
func TestOnDemandTurnedOffStarts(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "od.yaml"), fakeSpec(state, "od", "on_demand_start: true"))
	l, _ := newRealLoop(t, dir, nil)
	waitFor(t, "od to sleep", func() bool {
		st, err := l.Get("od")
		return err == nil && st.Runtime.Phase == runtime.PhaseSleeping
	})
	before, _ := l.Get("od")
	writeFile(t, filepath.Join(dir, "od.yaml"), fakeSpec(state, "od", "on_demand_start: false"))
	runningPID(t, l, state, "od", 0)
	if after, _ := l.Get("od"); after.DesiredHash != before.DesiredHash {
		t.Fatalf("on_demand_start changed the hash: %s -> %s", before.DesiredHash, after.DesiredHash)
	}
}
