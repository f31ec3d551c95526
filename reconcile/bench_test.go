package reconcile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"llamactl/runtime"
)

// BenchmarkEditToSpawn measures, per edit of one spec file, the time from
// the write until the restarted child process is running its main (it
// has written its pid file), minus the debounce. Run with
// -benchtime=100x for p50/p99 over 100 edits.
func BenchmarkEditToSpawn(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	path := filepath.Join(dir, "a.yaml")
	pidFile := filepath.Join(state, "a.pid")
	writeFile(b, path, fakeSpec(state, "a"))
	l, _ := newRealLoop(b, dir, func(o *Options) { o.Debounce = 50 * time.Millisecond })
	pid := runningPID(b, l, state, "a", 0)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		writeFile(b, path, fakeSpec(state, "a", "ctx_size: "+strconv.Itoa(1024+i)))
		for {
			data, _ := os.ReadFile(pidFile)
			if p, _ := strconv.Atoi(string(bytes.TrimSpace(data))); p != 0 && p != pid {
				pid = p
				break
			}
			if time.Since(start) > 20*time.Second {
				b.Fatal("no new process")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start)-l.opts.Debounce)
		runningPID(b, l, state, "a", 0) // healthy before the next edit
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkCreateToSpawn measures, per new spec file, the time from its
// write until its child process runs (has written its pid file), minus the
// debounce. Each instance is deleted again, untimed, before the next.
func BenchmarkCreateToSpawn(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	// A stopped instance stays: a directory left with no spec file never
	// prunes anything, so without it the removals below would not count.
	writeFile(b, filepath.Join(dir, "keeper.yaml"), fakeSpec(state, "keeper", "state: stopped"))
	l, m := newRealLoop(b, dir, func(o *Options) { o.Debounce = 50 * time.Millisecond })
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("n%03d", i)
		path := filepath.Join(dir, name+".yaml")
		start := time.Now()
		writeFile(b, path, fakeSpec(state, name))
		for {
			if _, err := os.Stat(filepath.Join(state, name+".pid")); err == nil {
				break
			}
			if time.Since(start) > 20*time.Second {
				b.Fatal("no process")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start)-l.opts.Debounce)
		b.StopTimer()
		runningPID(b, l, state, name, 0)
		must(b, os.Remove(path))
		waitFor(b, name+" to go", func() bool { _, ok := m.Get(name); return !ok })
		b.StartTimer()
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkEditToUpdate is BenchmarkEditToSpawn for the loop alone: from
// the write of a spec file to the supervisor's Update with the new config
// (fake processes), minus the debounce, among 1,000 instances.
func BenchmarkEditToUpdate(b *testing.B) {
	dir := b.TempDir()
	for j := range 1000 {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("m%04d.yaml", j)), model(strconv.Itoa(j)))
	}
	l, procs := newFakeLoop(b, dir, nil)
	settle(b, l)
	path := filepath.Join(dir, "m0500.yaml")
	waitSeen(b, l, path)
	updated := make(chan struct{}, 1)
	sup := procs.sup("m0500")
	sup.mu.Lock()
	sup.onUpdate = func(runtime.Config) { updated <- struct{}{} }
	sup.mu.Unlock()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		writeFile(b, path, model("m0500", "ctx_size: "+strconv.Itoa(1024+i)))
		select {
		case <-updated:
		case <-time.After(20 * time.Second):
			b.Fatal("no update")
		}
		lat = append(lat, time.Since(start)-l.opts.Debounce)
		settle(b, l)
		waitSeen(b, l, path)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoad1000 measures the initial load of 1,000 spec files (none
// running): time until Loaded (scanned, parsed, queued), time until every
// instance had its pass, heap and RSS afterwards, and the CPU used while
// idle for three seconds. "fake" isolates the loop (processes are fakes);
// "runtime" includes the real runtime.Manager's 1,000 supervisors.
func BenchmarkLoad1000(b *testing.B) {
	for _, real := range []bool{false, true} {
		b.Run(map[bool]string{false: "fake", true: "runtime"}[real], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchLoad(b, real)
			}
		})
	}
}

func benchLoad(b *testing.B, real bool) {
	dir := b.TempDir()
	for j := range 1000 {
		writeFile(b, filepath.Join(dir, "team"+strconv.Itoa(j%10), fmt.Sprintf("model-%04d.yaml", j)),
			fmt.Sprintf("# instance %d\nmodel: /models/m%d.gguf\nstate: stopped\nctx_size: %d\nalias: alias-%d\n", j, j, 1024+j, j))
	}
	goruntime.GC()
	start := time.Now()
	var l *Loop
	if real {
		l, _ = newRealLoop(b, dir, nil)
	} else {
		l, _ = newFakeLoop(b, dir, nil)
	}
	loaded := time.Since(start)
	settle(b, l)
	settled := time.Since(start)
	if n := len(l.List()); n != 1000 {
		b.Fatalf("loaded %d", n)
	}
	// The walk that follows the first watch of new folders is part of the
	// load, not of idling.
	waitFor(b, "the follow-up walk", func() bool { return l.scans.Load() >= 2 })
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	cpu0 := cpuTime()
	time.Sleep(3 * time.Second)
	idle := cpuTime() - cpu0
	b.ReportMetric(float64(loaded.Milliseconds()), "load-ms")
	b.ReportMetric(float64(settled.Milliseconds()), "settled-ms")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(rssMB(), "rss-MB")
	b.ReportMetric(float64(idle.Microseconds())/1000/3, "idle-cpu-ms/s")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB is this process's resident set size in MiB, from /proc.
func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkRescan1000 is one scan of 1,000 unchanged spec files: "event"
// is a debounced batch naming one file, "walk" a full walk that stats
// every file, "read" a periodic resync that reads every file.
func BenchmarkRescan1000(b *testing.B) {
	dir := b.TempDir()
	for j := range 1000 {
		writeFile(b, filepath.Join(dir, "team"+strconv.Itoa(j%10), fmt.Sprintf("m%04d.yaml", j)), model(strconv.Itoa(j)))
	}
	s := &scanner{dir: dir, cache: map[string]cached{}}
	if res := s.scan(true, true, nil); res.err != nil {
		b.Fatal(res.err)
	}
	one := map[string]struct{}{filepath.Join(s.root, "team3", "m0503.yaml"): {}}
	for _, tc := range []struct {
		name        string
		full, force bool
		dirty       map[string]struct{}
	}{{"event", false, false, one}, {"walk", true, false, nil}, {"read", true, true, nil}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if res := s.scan(tc.full, tc.force, tc.dirty); res.err != nil || len(res.files) != 1000 {
					b.Fatal(res.err, len(res.files))
				}
			}
		})
	}
}
