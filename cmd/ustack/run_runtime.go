package main

import (
	"os"
	"runtime"
	"time"

	"github.com/ustack/ustack/relay"
)

// `ustack run` on a 2-CPU machine runs with one P (GOMAXPROCS=1) while at
// most one relayed connection moves bulk data, and with both when two or
// more do.
//
// Why: one TCP flow's relay is a serial pipeline of goroutines (the TUN
// reader, gVisor's TCP processor, the copier writing the host socket; or
// the copier reading it, the TUN writer), and every hand-off between them
// with a second idle P wakes another thread on the other CPU (a futex
// wake, a context switch, a spinning scheduler), while the kernel side of
// the transfer (CMD, the host peer, the loopback and TUN paths) needs that
// CPU anyway. With one P the hand-offs are run-queue switches on one
// thread. Measured on the 2-CPU build machine (tests/bench-run-ab.sh,
// docs/run.md): 15-20% less CPU per GB for one flow either way at the same
// throughput. But one P caps ustack at one CPU, and four parallel flows
// lost 15-30% throughput with it, their pipelines being independent. So
// the relay's count of busy flows decides, every procsTick. Many new
// connections count as busy flows too: their set-ups (a host dial and a
// handshake each) are independent work as well, and the connection rate
// of 4 parallel clients fell 15% with one P.
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
	// count as two busy flows (200/s).
	procsConnBurst = 50
	// procsCalmTicks is how many ticks in a row with at most one busy
	// flow bring GOMAXPROCS back to 1, so that flows pausing between
	// requests do not flip it every tick.
	procsCalmTicks = 4
)

// procsPolicy decides GOMAXPROCS tick by tick.
type procsPolicy struct {
	max  int // GOMAXPROCS for two or more busy flows: the runtime's default
	cur  int // GOMAXPROCS now
	calm int // ticks in a row with at most one busy flow while cur > 1
}

// next returns the GOMAXPROCS for a tick that counted busy flows and
// newConns new connections.
func (p *procsPolicy) next(busy int, newConns uint64) int {
	if newConns >= procsConnBurst {
		busy += 2
	}
	switch {
	case busy >= 2:
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
		busy := rl.BusyFlows(procsBulkBytes)
		st := rl.Stats()
		conns := st.TCPRelayed + st.ForwardAccepted
		newConns := conns - lastConns
		lastConns = conns
		if n := p.next(busy, newConns); n != cur {
			runtime.GOMAXPROCS(n)
			if logf != nil {
				logf("GOMAXPROCS %d -> %d (%d busy flows, %d new connections in %v)", cur, n, busy, newConns, procsTick)
			}
		}
	}
}
