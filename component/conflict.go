package component

import (
	"fmt"
	"sync"
	"time"
)

// Another process with the component's JID.
//
// A server with conflict_behaviour = "kick_old" (MongooseIM's setting
// for components, which presenced's setup guide asks for, so that a
// reconnect replaces a stale link at once) ends the older of two links
// with one JID with the stream error conflict. Two presenced started with
// one JID by mistake then replace each other forever, each reconnecting
// within its backoff: measured on MongooseIM 6.1.0, a kick every few
// hundred milliseconds, and the dashboards see the links flap.
//
// A conflict on a live link always means another process: this process
// dials again only after its link ended, so the stale link a reconnect of
// its own replaces is one it has already left. So each conflict in a row
// waits from MaxBackoff doubling up to conflictFactor times it (30 s to
// 5 min by default), logs an error that names the cause, and makes Health
// say so (/readyz), until a link ends for another reason. The kicks
// cannot stop altogether while both run (each reconnect replaces the
// other), but they grow rare, and the operator is told which JID is
// taken. Electing one holder among several processes is the cluster's
// work (issue 16), not this.

// conflictFactor bounds the wait after conflicts in a row: MaxBackoff
// times this.
const conflictFactor = 10

// conflicts counts the links in a row that the server ended with a
// conflict.
type conflicts struct {
	mu    sync.Mutex
	n     int
	last  time.Time // when the last one came
	retry time.Time // when the next dial is due
}

// record counts one more conflict at now and returns how many in a row.
func (c *conflicts) record(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.last = now
	return c.n
}

// retryAt notes when the next dial is due, for Health.
func (c *conflicts) retryAt(t time.Time) {
	c.mu.Lock()
	c.retry = t
	c.mu.Unlock()
}

// reset forgets the conflicts: a link ended for another reason.
func (c *conflicts) reset() {
	c.mu.Lock()
	c.n = 0
	c.mu.Unlock()
}

// err describes the conflicts for a health check, or is nil without one.
func (c *conflicts) err(jid string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return nil
	}
	return fmt.Errorf("another connection holds the component JID %s: the server replaced this link (stream error conflict) %d times in a row, last at %s; is a second presenced running with this JID? next try at %s",
		jid, c.n, c.last.UTC().Format(time.RFC3339), c.retry.UTC().Format(time.RFC3339))
}
