// Package gcfloor keeps Go's garbage collector from running often while
// the live heap is small: after each collection it sets GOGC so that the
// heap may grow by at least a floor of bytes before the next one, and by
// the usual proportion once the live heap is larger than the floor.
//
// A program that allocates fast around a small live heap (a network stack
// allocating per packet and per connection) otherwise collects every few
// megabytes. A fixed high GOGC would fix that too, but would also let a
// large live heap grow by several times its size; with a floor the extra
// memory is at most the floor.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Percent is the GOGC that lets a heap of live bytes grow by at least
// floor bytes, and never below base, the GOGC the program had: base
// when live is 0 or base's growth already exceeds floor.
func Percent(live, floor uint64, base int) int {
	if live == 0 {
		return base
	}
	p := floor * 100 / live
	if p <= uint64(base) {
		return base
	}
	if p > 1<<20 { // far above any useful value; keeps the int conversion safe
		p = 1 << 20
	}
	return int(p)
}

// Start applies Percent after every collection, until stop is called,
// with base the GOGC in effect now. It does nothing (and stop does
// nothing) when the collector is off (GOGC=off).
func Start(floor uint64) (stop func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base < 0 {
		return func() {}
	}
	t := &tuner{floor: floor, base: base}
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(base)
		}
	}
}

// tuner re-arms a cleanup on a fresh sentinel after each collection: the
// sentinel is unreachable as soon as arm returns, so the next collection
// frees it and the runtime runs the cleanup, once per cycle.
type tuner struct {
	floor  uint64
	base   int
	sample []metrics.Sample

	mu      sync.Mutex
	stopped bool
}

func (t *tuner) arm() {
	sentinel := new([16]byte) // not tiny-allocated: it must be freed on its own
	runtime.AddCleanup(sentinel, func(t *tuner) { t.afterGC() }, t)
}

// afterGC runs on the runtime's cleanup goroutine.
func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		// Set every cycle, not only on change: it costs a lock, and
		// a value someone else set in between is overruled at once.
		debug.SetGCPercent(Percent(t.sample[0].Value.Uint64(), t.floor, t.base))
	}
	t.arm()
}
