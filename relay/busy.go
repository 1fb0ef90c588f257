package relay

import "sync/atomic"

// flowBytes counts the bytes one relayed TCP connection moved, both ways,
// for BusyFlows.
type flowBytes struct {
	n    atomic.Uint64
	seen uint64 // guarded by Relay.busyMu: n at the previous BusyFlows
}

// counter is where a copy loop adds the bytes it moved: the relay's total
// for the direction, and the connection's own count (if flow is set).
type counter struct {
	total *atomic.Uint64
	flow  *flowBytes
}

func (c counter) add(n int) {
	if c.flow != nil {
		c.flow.n.Add(uint64(n))
	}
	c.total.Add(uint64(n)) // last: once Stats shows it, BusyFlows does too
}

// addFlow and removeFlow register a connection's count with BusyFlows.
func (r *Relay) addFlow(f *flowBytes) {
	r.busyMu.Lock()
	r.busy[f] = struct{}{}
	r.busyMu.Unlock()
}

func (r *Relay) removeFlow(f *flowBytes) {
	r.busyMu.Lock()
	delete(r.busy, f)
	r.busyMu.Unlock()
}

// BusyFlows returns how many relayed TCP connections (port forwards
// included) moved at least minBytes, both ways together, since the
// previous call: the bulk transfers under way, for a caller that sizes
// its resources to them (ustack run's GOMAXPROCS). Calls are meant to
// come from one goroutine at regular intervals; each resets the counts.
func (r *Relay) BusyFlows(minBytes uint64) int {
	r.busyMu.Lock()
	defer r.busyMu.Unlock()
	n := 0
	for f := range r.busy {
		v := f.n.Load()
		if v-f.seen >= minBytes {
			n++
		}
		f.seen = v
	}
	return n
}
