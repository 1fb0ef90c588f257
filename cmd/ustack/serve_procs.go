package main

import (
	"os"
	"runtime"
)

// serveProcs is the GOMAXPROCS `ustack serve` runs with, given the
// machine's CPU count and the GOMAXPROCS environment variable: what the
// variable says if it is set, else 1 on a machine with at most 2 CPUs,
// else Go's default (0: leave it).
//
// Why 1 on small machines: the stack's work on one TUN is serial (one
// device reader goroutine, one TCP processor, see stack.TCPConfig.
// Processors), and every packet hands off between goroutines: reader,
// processor, the service's goroutine. With 2 Ps each hand-off may wake an
// idle thread on the other CPU (a futex wake and a context switch), while
// the kernel-side peer needs that CPU anyway. With one P the hand-offs are
// run-queue switches on one thread. Measured over the vnet TUN on the
// 2-CPU build machine (tests/benchtun/ab.sh, docs/tunvnet.md): 10-25% less
// serve CPU per round trip, per connection and per GB, and conn/s +11-15%.
// On machines with more CPUs this was not measured, so Go's default stays.
func serveProcs(numCPU int, env string) int {
	if env != "" {
		return 0 // the runtime already applied it
	}
	if numCPU <= 2 {
		return 1
	}
	return 0
}

// setServeProcs applies serveProcs to this process.
func setServeProcs() {
	if n := serveProcs(runtime.NumCPU(), os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
