package relay

import "sync/atomic"

// flowBytes counts the bytes one relayed TCP connection moved each way,
// for BusyFlows.
type flowBytes struct {
	out, in         atomic.Uint64 // namespace to host, host to namespace
	outDone         atomic.Bool   // the namespace-to-host copy has ended (Drain)
	seenOut, seenIn uint64        // guarded by Relay.busyMu: out and in at the previous BusyFlows
}

// counter is where a copy loop adds the bytes it moved: the relay's total
// for the direction, and the connection's own count for it (if set).
type counter struct {
	total *atomic.Uint64
	flow  *atomic.Uint64
}

func (c counter) add(n int) {
	if c.flow != nil {
		c.flow.Add(uint64(n))
	}
	c.total.Add(uint64(n)) // last: once Stats shows it, BusyFlows does too
}

// addFlow and removeFlow register a connection's counts with BusyFlows.
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
// included) moved at least minBytes namespace-to-host (out) and
// host-to-namespace (in) since the previous call: the bulk transfers
// under way, for a caller that sizes its resources to them (ustack run's
// GOMAXPROCS). Calls are meant to come from one goroutine at regular
// intervals; each starts the counts afresh.
func (r *Relay) BusyFlows(minBytes uint64) (out, in int) {
	r.busyMu.Lock()
	defer r.busyMu.Unlock()
	for f := range r.busy {
		vo, vi := f.out.Load(), f.in.Load()
		if vo-f.seenOut >= minBytes {
			out++
		}
		if vi-f.seenIn >= minBytes {
			in++
		}
		f.seenOut, f.seenIn = vo, vi
	}
	return out, in
}
