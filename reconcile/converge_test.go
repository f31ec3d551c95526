package reconcile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"llamactl/spec"
)

// TestConvergesUnderConcurrentWrites races API writes (with If-Match,
// retried on a conflict) against editors saving the same files, and
// checks that afterwards every instance runs exactly what its file says.
func TestConvergesUnderConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		writeFile(t, filepath.Join(dir, n+".yaml"), model(n))
	}
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.Debounce = 10 * time.Millisecond })
	settle(t, l)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
		apiWrites int
	)
	deadline := time.Now().Add(time.Second)
	for _, n := range names {
		wg.Go(func() { // the API client
			for i := 0; time.Now().Before(deadline); i++ {
				st, err := l.Get(n)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = l.Update(n, &spec.Spec{Model: ptr(fmt.Sprintf("/m/api-%d.gguf", i))}, st.ETag)
				mu.Lock()
				switch {
				case errors.Is(err, ErrPreconditionFailed):
					conflicts++
				case err != nil:
					t.Errorf("update %s: %v", n, err)
				default:
					apiWrites++
				}
				mu.Unlock()
			}
		})
		wg.Go(func() { // the editor, saving in place and by rename
			path := filepath.Join(dir, n+".yaml")
			for i := 0; time.Now().Before(deadline); i++ {
				data := []byte(model(n, fmt.Sprintf("ctx_size: %d", 1000+i)))
				if i%2 == 0 {
					must(t, os.WriteFile(path, data, 0o644))
				} else {
					tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", n, i))
					must(t, os.WriteFile(tmp, data, 0o644))
					must(t, os.Rename(tmp, path))
				}
				time.Sleep(time.Millisecond)
				if i%5 == 4 {
					time.Sleep(25 * time.Millisecond) // a quiet spell: the loop catches up
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d API writes, %d conflicts", apiWrites, conflicts)
	if apiWrites == 0 {
		t.Fatal("no API write went through")
	}
	for _, n := range names {
		path := filepath.Join(dir, n+".yaml")
		waitSeen(t, l, path)
		data, err := os.ReadFile(path)
		must(t, err)
		want, err := spec.Decode(data, spec.YAML, n+".yaml")
		must(t, err)
		hash := want.Hash(l.opts.Binary, nil)
		waitFor(t, n+" to converge", func() bool {
			st, _ := l.Get(n)
			sup := procs.sup(n)
			return st.ETag == etagOf(data) && st.DesiredHash == hash && sup != nil && sup.config().Hash == hash && st.Sync == "synced"
		})
	}
}
