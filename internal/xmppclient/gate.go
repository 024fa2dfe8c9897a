package xmppclient

import (
	"net"
	"sync"
)

// gate is a connection that can be frozen: while frozen, reads and writes
// wait (a read already waiting for data returns that data once, the next
// one waits), so the client neither answers nor consumes anything, and the
// peer sees an open, silent connection. Closing it ends the wait.
type gate struct {
	net.Conn
	mu     sync.Mutex
	frozen bool // a freeze is final
	closed chan struct{}
	once   sync.Once
}

func newGate(c net.Conn) *gate { return &gate{Conn: c, closed: make(chan struct{})} }

func (g *gate) freeze() {
	g.mu.Lock()
	g.frozen = true
	g.mu.Unlock()
}

func (g *gate) isFrozen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.frozen
}

// wait blocks while the gate is frozen, and reports false once it is
// closed.
func (g *gate) wait() bool {
	if !g.isFrozen() {
		return true
	}
	<-g.closed
	return false
}

func (g *gate) Read(p []byte) (int, error) {
	if !g.wait() {
		return 0, net.ErrClosed
	}
	return g.Conn.Read(p)
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.wait() {
		return 0, net.ErrClosed
	}
	return g.Conn.Write(p)
}

func (g *gate) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Conn.Close()
}
