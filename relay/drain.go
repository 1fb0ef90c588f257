package relay

import "time"

// drainPoll is how often Drain looks at the connections still sending.
const drainPoll = 10 * time.Millisecond

// Drain waits, at most timeout, until every relayed TCP connection (port
// forwards included) has passed to the host everything the namespace
// sent on it up to its end (FIN or reset). Call it after the namespace's
// processes are gone and before Close: what they wrote was acknowledged
// to their kernel by the relay's stack, which can hold megabytes of it
// still to copy, and Close drops it. A kernel would keep sending after
// the process exits; Drain is that, bounded.
//
// It waits for every connection's namespace-to-host direction, so it is
// for when the namespace's processes are gone: their kernel then ends
// each connection, at once where nothing is left to send.
func (r *Relay) Drain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for r.draining() && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
}

// draining reports whether a connection is still copying namespace
// bytes to the host.
func (r *Relay) draining() bool {
	r.busyMu.Lock()
	defer r.busyMu.Unlock()
	for f := range r.busy {
		if !f.outDone.Load() {
			return true
		}
	}
	return false
}
