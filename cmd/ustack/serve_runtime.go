package main

import (
	"os"
	"runtime"

	"github.com/ustack/ustack/internal/gcfloor"
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

// serveGCFloor is how far `ustack serve` lets its heap grow past the live
// heap before the next collection (internal/gcfloor), unless the GOGC
// environment variable is set: 256 MiB, or GOGC's usual proportion when
// the live heap is larger.
//
// Why: gVisor allocates about 14 KB in some 160 objects per TCP
// connection (docs/perf.md), while the live heap of a busy serve is
// mostly its TIME_WAIT endpoints, tens of MB. At Go's default GOGC the
// collector ran every few thousand connections and took 10-20% of serve's
// CPU. Measured over the vnet TUN (tests/benchtun/ab.sh, docs/tunvnet.md):
// GOGC=400 gave connections/s with 8 clients +26% against 100, with serve
// CPU per connection 0.87; bulk and round trips unchanged. A floor gives
// a small heap that room without letting a large one (many bulk
// connections' buffers) grow by four times its size.
const serveGCFloor = 256 << 20

// setServeRuntime applies serveProcs and serveGCFloor to this process.
func setServeRuntime() {
	if n := serveProcs(runtime.NumCPU(), os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	if os.Getenv("GOGC") == "" {
		gcfloor.Start(serveGCFloor) // for the life of the process
	}
}
