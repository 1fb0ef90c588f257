package main

import (
	"os"
	"runtime"
	"time"

	"github.com/ustack/ustack/relay"
)

// `ustack run` on a 2-CPU machine runs with one P (GOMAXPROCS=1) while
// its only bulk transfer is one upload (namespace to host), and with both
// otherwise.
//
// Why: an upload's relay is a serial pipeline of goroutines (the TUN
// reader, gVisor's TCP processor, the copier writing the host socket), and
// with a second idle P every hand-off between them wakes a thread on the
// other CPU (a futex wake, a context switch, a spinning scheduler), while
// the kernel side of the transfer (CMD, the host peer, the loopback and
// TUN paths) needs that CPU anyway; with one P the hand-offs are run-queue
// switches on one thread. Measured on the 2-CPU build machine
// (tests/bench-run-ab.sh, docs/run.md): one upload took 20-30% less CPU
// per GB with one P, at equal or better throughput. A download is
// different: the TUN write of each 64 KiB segment runs the namespace
// kernel's receive path inside ustack (a third of its time) on the TUN
// writer goroutine, which with two Ps overlaps the host socket reads:
// one download moved 8% more with two Ps at the same CPU per GB. Several
// bulk flows have independent pipelines, and four parallel uploads lost
// 15-30% throughput with one P (one P caps ustack at one CPU); a burst
// of new connections (a host dial and a handshake each) is independent
// work too, and 4 parallel connecting clients lost 15%. So the relay's
// count of busy flows and new connections decides, every procsTick.
//
// On machines with more CPUs this was not measured, and Go's default
// stays; so it does when the GOMAXPROCS environment variable is set.
const (
	// procsTick is how often the busy flows are counted.
	procsTick = 250 * time.Millisecond
	// procsBulkBytes is what a connection must move in a tick to count
	// as busy: 64 Mbit/s. Flows slower than that never needed a CPU of
	// their own.
	procsBulkBytes = 2 << 20
	// procsConnBurst is how many new relayed connections in a tick
	// (200/s) ask for both Ps.
	procsConnBurst = 50
	// procsCalmTicks is how many ticks in a row with at most one busy
	// upload bring GOMAXPROCS back to 1, so that flows pausing between
	// requests do not flip it every tick.
	procsCalmTicks = 4
)

// procsPolicy decides GOMAXPROCS tick by tick.
type procsPolicy struct {
	max  int // GOMAXPROCS for anything but one upload: the runtime's default
	cur  int // GOMAXPROCS now
	calm int // ticks in a row with at most one busy upload while cur > 1
}

// next returns the GOMAXPROCS for a tick that counted out and in busy
// flows (bulk uploads and downloads; a connection busy both ways counts
// in both) and newConns new connections.
func (p *procsPolicy) next(out, in int, newConns uint64) int {
	switch {
	case out+in >= 2 || in >= 1 || newConns >= procsConnBurst:
		p.cur, p.calm = p.max, 0
	case p.cur > 1:
		if p.calm++; p.calm >= procsCalmTicks {
			p.cur, p.calm = 1, 0
		}
	}
	return p.cur
}

// adaptProcs applies procsPolicy to this process until stop is closed,
// then restores the default, and closes done. It returns at once (closing
// done) when the policy does not apply: GOMAXPROCS set in the
// environment, or a default other than 2.
//
// logf, if not nil, is told of each change.
func adaptProcs(rl *relay.Relay, logf func(string, ...any), stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	def := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || def != 2 {
		return
	}
	p := procsPolicy{max: def, cur: 1}
	runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(def)
	var lastConns uint64
	t := time.NewTicker(procsTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur := p.cur
		out, in := rl.BusyFlows(procsBulkBytes)
		st := rl.Stats()
		conns := st.TCPRelayed + st.ForwardAccepted
		newConns := conns - lastConns
		lastConns = conns
		if n := p.next(out, in, newConns); n != cur {
			runtime.GOMAXPROCS(n)
			if logf != nil {
				logf("GOMAXPROCS %d -> %d (busy flows: %d out, %d in; %d new connections in %v)", cur, n, out, in, newConns, procsTick)
			}
		}
	}
}
