package bridge

import (
	"context"
	"sync"
	"time"
)

// The write side of the stream: who writes a connection's frames, and how.
//
// A connection has one writer at a time (streamConn.running). Changes from
// the hub and pings are written by a small pool of workers (this file;
// Config.StreamWriters, half the CPUs by default) with non-blocking writes
// straight to the socket (rawwrite.go): a worker never waits for a client.
// When a write would block (the client's socket buffer is full), or there
// is rarer work (a snapshot, an error frame, a close), the connection gets
// a goroutine of its own, drain (drain.go), which writes with a deadline
// until the queue is empty and then ends. Both take what they write from
// the connection's queue (queue.go), framed by framed.go.
//
// Alternatives measured (docs/benchmarks.md, WebSocket fan-out): a writer
// goroutine per connection started for every change spends, at 10,000
// subscribers, more time creating, scheduling and deadline-arming
// goroutines than in the write itself; a long-lived writer per connection
// costs a goroutine stack per idle client.

// writerPool runs the workers that write for connections with something to
// send. Each connection is in ready at most once (its running flag), so
// ready is bounded by the number of connections.
type writerPool struct {
	mu    sync.Mutex
	cond  sync.Cond
	ready []*streamConn
	head  int
	done  bool
	// working counts the workers writing a batch of connections; idleAt
	// is when the last one finished with nothing left.
	working int
	idleAt  time.Time
}

// state reports whether the workers are writing or have connections
// waiting, when they were last done with everything, and whether they
// have stopped for good.
func (p *writerPool) state() (busy bool, idleAt time.Time, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.working > 0 || p.head < len(p.ready), p.idleAt, p.done
}

func newWriterPool() *writerPool {
	p := &writerPool{}
	p.cond.L = &p.mu
	return p
}

// add hands connections, each already marked running, to the workers.
func (p *writerPool) add(cs []*streamConn) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, cs...)
	p.mu.Unlock()
	p.cond.Broadcast()
}

// run starts n workers until ctx ends.
func (p *writerPool) run(ctx context.Context, n int) {
	for range n {
		go p.work()
	}
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		p.done = true
		p.mu.Unlock()
		p.cond.Broadcast()
	}()
}

// work takes connections a few at a time, oldest first, and writes what
// each has.
func (p *writerPool) work() {
	w := &fastWriter{}
	w.fn = w.write
	var batch []*streamConn
	for {
		p.mu.Lock()
		if len(batch) > 0 {
			if p.working--; p.working == 0 && p.head == len(p.ready) {
				p.idleAt = time.Now()
			}
		}
		for p.head == len(p.ready) && !p.done {
			p.cond.Wait()
		}
		if p.done {
			p.mu.Unlock()
			return
		}
		k := min(len(p.ready)-p.head, 32)
		batch = append(batch[:0], p.ready[p.head:p.head+k]...)
		clear(p.ready[p.head : p.head+k])
		if p.head += k; p.head == len(p.ready) {
			p.ready, p.head = p.ready[:0], 0
		}
		p.working++
		p.mu.Unlock()
		for _, c := range batch {
			c.drainFast(w)
		}
	}
}
