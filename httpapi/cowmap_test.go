package httpapi

import (
	"strconv"
	"sync"
	"testing"
)

func TestCowMap(t *testing.T) {
	var m cowMap[int]
	if _, ok := m.Load("a"); ok {
		t.Fatal("empty map has a")
	}
	m.Store("a", 1)
	if got := m.LoadOrStore("a", 2); got != 1 {
		t.Fatalf("LoadOrStore kept %d, want 1", got)
	}
	if got := m.LoadOrStore("b", 3); got != 3 {
		t.Fatalf("LoadOrStore stored %d, want 3", got)
	}
	if v, ok := m.LoadBytes([]byte("b")); !ok || v != 3 || m.Len() != 2 {
		t.Fatalf("LoadBytes(b) = %d, %v; Len %d", v, ok, m.Len())
	}
	m.Store("a", 4)
	seen := map[string]int{}
	m.Range(func(k string, v int) bool { seen[k] = v; return true })
	if len(seen) != 2 || seen["a"] != 4 || seen["b"] != 3 {
		t.Fatalf("Range saw %v", seen)
	}

	// Readers run while writers replace the map; every value read is one
	// that was stored for its key.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				k := strconv.Itoa(i % 10)
				m.Store(k, i%10+10*w)
				if v, ok := m.Load(k); !ok || v%10 != i%10 {
					t.Errorf("Load(%s) = %d, %v", k, v, ok)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestInternModel: a model name seen before costs no allocation, and the
// interned set stays bounded whatever names clients send.
func TestInternModel(t *testing.T) {
	name := []byte("interned-model")
	if got := internModel(name); got != "interned-model" {
		t.Fatalf("internModel = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = internModel(name) }); n != 0 {
		t.Fatalf("%v allocations for a known name", n)
	}
	for i := range 2 * maxInterned {
		if got := internModel([]byte("junk-" + strconv.Itoa(i))); got != "junk-"+strconv.Itoa(i) {
			t.Fatalf("internModel = %q", got)
		}
	}
	if n := modelNames.Len(); n > maxInterned {
		t.Fatalf("%d names interned, want at most %d", n, maxInterned)
	}
}
