package httpapi

import (
	"sync"
	"sync/atomic"
)

// cowMap is a map from string read on every proxied request and written
// rarely (a new instance address, a key looked up again each second): a
// read is a plain map lookup in the current copy, a write replaces the
// copy. sync.Map costs several times as much per read.
type cowMap[V any] struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[string]V]
}

// Load returns the value of key.
func (c *cowMap[V]) Load(key string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

// LoadBytes is Load of string(key), without allocating that string.
func (c *cowMap[V]) LoadBytes(key []byte) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[string(key)]
		return v, ok
	}
	var zero V
	return zero, false
}

// Len returns the number of entries.
func (c *cowMap[V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// LoadOrStore returns the value of key, storing v first if there is none.
func (c *cowMap[V]) LoadOrStore(key string, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if have, ok := (*old)[key]; ok {
			return have
		}
	}
	c.storeLocked(old, key, v)
	return v
}

// Store sets the value of key.
func (c *cowMap[V]) Store(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storeLocked(c.m.Load(), key, v)
}

func (c *cowMap[V]) storeLocked(old *map[string]V, key string, v V) {
	m := make(map[string]V, 1)
	if old != nil {
		m = make(map[string]V, len(*old)+1)
		for k, x := range *old {
			m[k] = x
		}
	}
	m[key] = v
	c.m.Store(&m)
}

// Range calls f for every entry of the current copy.
func (c *cowMap[V]) Range(f func(key string, v V) bool) {
	if m := c.m.Load(); m != nil {
		for k, v := range *m {
			if !f(k, v) {
				return
			}
		}
	}
}
