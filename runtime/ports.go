package runtime

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// errNoPort means every port of the range is leased or busy.
var errNoPort = errors.New("no free port in range")

// ports leases ports of [min, max] to instances: one port is never leased
// to two instances, and a port is leased only after a bind test shows it
// free on the host. Safe for concurrent use.
type ports struct {
	min, max int
	free     func(host string, port int) bool // bind test; replaced in tests

	mu     sync.Mutex
	leased map[int]string // port -> instance name
	next   int            // where the next search starts
}

func newPorts(min, max int) *ports {
	return &ports{min: min, max: max, free: portFree, leased: map[int]string{}, next: min}
}

// lease returns a free port for name, trying prefer first (when it is in
// the range and not leased to someone else) and skipping avoid.
func (p *ports) lease(name, host string, prefer int, avoid map[int]bool) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.min <= 0 || p.max < p.min {
		return 0, fmt.Errorf("lease port: %w: range %d-%d is empty", errNoPort, p.min, p.max)
	}
	try := func(port int) bool {
		if port < p.min || port > p.max || avoid[port] {
			return false
		}
		if owner, ok := p.leased[port]; ok && owner != name {
			return false
		}
		if !p.free(host, port) {
			return false
		}
		p.leased[port] = name
		return true
	}
	if prefer != 0 && try(prefer) {
		return prefer, nil
	}
	n := p.max - p.min + 1
	for i := 0; i < n; i++ {
		port := p.min + (p.next-p.min+i)%n
		if try(port) {
			p.next = port + 1
			if p.next > p.max {
				p.next = p.min
			}
			return port, nil
		}
	}
	return 0, fmt.Errorf("lease port: %w %d-%d", errNoPort, p.min, p.max)
}

// claim marks port as name's without a bind test (an adopted child holds
// it, or the config names it explicitly).
func (p *ports) claim(name string, port int) {
	if port <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leased[port] = name
}

// owner is the instance port is leased to or claimed by, "" if none.
func (p *ports) owner(port int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leased[port]
}

// release frees port if name holds it.
func (p *ports) release(name string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leased[port] == name {
		delete(p.leased, port)
	}
}

// portFree reports whether port can be bound on host right now.
func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(bindHost(host), strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// bindProblem says why port on host cannot be bound, for a port the bind
// test found unusable: in use by another process, as a rule, but also an
// address that is not this host's or a port the daemon may not bind.
func bindProblem(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(bindHost(host), strconv.Itoa(port)))
	if err == nil {
		_ = l.Close() // freed since the test
	}
	if err == nil || errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %d on %s is in use by another process", port, host)
	}
	return fmt.Errorf("cannot bind port %d on %s: %w", port, host, err)
}

// bindHost is the address a child binds: 127.0.0.1 when host is empty.
func bindHost(host string) string {
	if host == "" {
		return "127.0.0.1"
	}
	return host
}

// probeHost is the address to reach a child at: loopback when it binds a
// wildcard address.
func probeHost(host string) string {
	switch host {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::", "[::]":
		return "::1"
	}
	return host
}
