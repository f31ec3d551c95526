package runtime

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStartToHealthy measures exec-to-/health-200 through the
// supervisor (Start, then EnsureReady returns) against fakellama with no
// load delay. The "direct" sub-benchmark is the child's own readiness:
// exec plus a tight /health poll loop, no supervisor. The difference is
// the supervisor's overhead.
func BenchmarkStartToHealthy(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		port := freePort(b)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		for b.Loop() {
			cmd := exec.Command(fakellama, "-m", "tiny.gguf", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			for {
				if ok, _ := probeHealth(context.Background(), addr, time.Second); ok {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			waitPortFree(b, port)
			b.StartTimer()
		}
	})
	b.Run("supervised", func(b *testing.B) {
		m := newManager(b, nil)
		cfg := testConfig("bench")
		cfg.StopTimeout = 5 * time.Second
		s := m.Supervise(cfg)
		ctx := context.Background()
		for b.Loop() {
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			_, release, err := s.EnsureReady(ctx)
			if err != nil {
				b.Fatal(err)
			}
			release()
			b.StopTimer()
			if err := s.Stop(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkStop measures Stop of a healthy, well-behaved child: SIGTERM to
// its group, its graceful exit, reaping, and the phase reaching stopped.
func BenchmarkStop(b *testing.B) {
	m := newManager(b, nil)
	s := m.Supervise(testConfig("bench-stop"))
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		_, release, err := s.EnsureReady(ctx)
		if err != nil {
			b.Fatal(err)
		}
		release()
		b.StartTimer()
		if err := s.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnsureReadyRunning is the proxy's hot path on a running
// instance.
func BenchmarkEnsureReadyRunning(b *testing.B) {
	m := newManager(b, nil)
	s, _ := startRunning(b, m, testConfig("bench-hot"))
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, release, err := s.EnsureReady(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPortFree(b *testing.B, port int) {
	for i := 0; i < 1000 && !portIsFree(port); i++ {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkEnsureReadySerial is the hot path without contention.
func BenchmarkEnsureReadySerial(b *testing.B) {
	m := newManager(b, nil)
	s, _ := startRunning(b, m, testConfig("bench-serial"))
	ctx := context.Background()
	for b.Loop() {
		_, release, err := s.EnsureReady(ctx)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}
