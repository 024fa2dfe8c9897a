// Package backoff is presenced's one retry policy: capped exponential
// delays with "equal jitter", for every loop that retries after a failure
// (the component's reconnects, the PostgreSQL store's writes).
//
// Design: one pure function of the attempt number rather than a stateful
// object, so that each loop keeps its own count and resets it the way
// that suits it (the component after a link that lived, the store after a
// write that worked). github.com/cenkalti/backoff/v5 was considered: its
// ExponentialBackOff is a stateful timer with a multiplicative jitter
// (delays anywhere in [d/2, 3d/2]) and an elapsed-time budget that neither
// loop wants; the policy here is ten lines and what both loops need.
// Equal jitter (a random point in the upper half of the nominal delay)
// keeps many presenced processes restarted together from retrying in step,
// while a delay never drops below half its nominal value, so a failing
// peer is never retried in a tight loop.
package backoff
