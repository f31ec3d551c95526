package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestSpecsDirVanishes: a specs directory that disappears (an unmounted
// volume, a botched sync) stops nothing; when it comes back, changes in
// it are picked up again.
func TestSpecsDirVanishes(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	names := []string{"keep1", "keep2"}
	for _, n := range names {
		fd.writeSpec(t, n+".yaml", fd.specYAML(n, nil))
	}
	d := startDaemon(t, fd, daemonOpts{Env: map[string]string{"LLAMACTL_RECONCILE_RESYNC_INTERVAL": "2s"}})
	pids := map[string]int{}
	for _, n := range names {
		pids[n] = d.waitHealthy(n).PID
	}

	moved := fd.SpecsDir + ".moved"
	if err := os.Rename(fd.SpecsDir, moved); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the daemon status to show the missing dir", func() (bool, string) {
		st := d.status()
		return st.Error != "", fmt.Sprintf("%+v", st)
	})
	// Nothing announces "decided not to prune", so watch for a while:
	// longer than the debounce and the retry of an unreadable directory
	// (max(1s, 2*debounce)) together.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range names {
			inst, ok := d.instance(n)
			if !ok || !inst.Running || inst.PID != pids[n] || !alive(pids[n]) {
				t.Fatalf("specs dir vanished and %s changed: found %v %s, was pid %d", n, ok, inst, pids[n])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := os.Rename(moved, fd.SpecsDir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the daemon status to clear the error", func() (bool, string) {
		st := d.status()
		return st.Error == "", fmt.Sprintf("%+v", st)
	})
	// The directory was retried every second or so while it was gone; the
	// same error is logged once (again only after a minute), and its end
	// once.
	if n := len(d.log.records("specs dir unreadable")); n != 1 {
		t.Errorf("%d \"specs dir unreadable\" warnings while it was gone, want 1", n)
	}
	waitFor(t, 5*time.Second, "a \"specs dir readable again\" line", func() (bool, string) {
		n := len(d.log.records("specs dir readable again"))
		return n == 1, fmt.Sprint(n, " lines")
	})
	fd.writeSpec(t, "late.yaml", fd.specYAML("late", nil))
	d.waitHealthy("late")
	for _, n := range names {
		if inst, _ := d.instance(n); inst.PID != pids[n] || !inst.Running {
			t.Errorf("%s after the dir came back: %s, was pid %d", n, inst, pids[n])
		}
	}
	if got := len(fd.children()); got != 3 {
		t.Errorf("%d fakellama processes, want 3: %v", got, fmt.Sprint(fd.children()))
	}
}
