package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakellamaBin is the stand-in llama-server built by TestMain; empty with
// fakellamaErr set when the build failed.
var (
	fakellamaBin string
	fakellamaErr error
)

type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int {
	dir, err := os.MkdirTemp("", "httpapi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fakellama")
	out, err := exec.Command("go", "build", "-o", bin, "llamactl/cmd/fakellama").CombinedOutput()
	if err != nil {
		fakellamaErr = fmt.Errorf("build fakellama: %w: %s", err, out)
	} else {
		fakellamaBin = bin
	}
	return r.m.Run()
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(mainRunner{m},
		// fasthttp refreshes its cached Date header in a process-wide
		// goroutine started by the first server; it never ends.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	)
}

// startFakellama runs cmd/fakellama serving model alias on a free port
// and returns its address once /health answers 200.
func startFakellama(t testing.TB, alias string, env ...string) string {
	t.Helper()
	if fakellamaBin == "" {
		t.Fatalf("fakellama is not available: %v", fakellamaErr)
	}
	port := freePort(t)
	cmd := exec.Command(fakellamaBin, "--port", strconv.Itoa(port), "--host", "127.0.0.1", "-m", "x.gguf", "--alias", alias)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fakellama: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := client.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fakellama on %s not healthy after 10s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
