package stack

import (
	"container/heap"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// heapClock is the tcpip.Clock every Stack gives gVisor: Now and
// NowMonotonic are gVisor's standard clock's, but the timers of AfterFunc
// live in one heap of the clock's own, and only its earliest deadline is a
// Go runtime timer.
//
// Why: gVisor gives each TCP endpoint several timers (retransmission,
// probe, keepalive, FIN-WAIT-2, TIME_WAIT) and resets or stops them on
// almost every segment. As Go runtime timers they all sit in the P's timer
// heap, and the runtime rescans that whole heap (runtime.(*timers).adjust)
// whenever a timer it was told had moved comes due, or a quarter of it is
// stopped timers. With connections in TIME_WAIT for a second that is ~10k
// timers at ~8k connections/s: 10% of `ustack serve`'s CPU per connection
// went to those rescans (docs/tunvnet.md). Here a Reset or Stop is a
// heap fix-up of O(log n) on this clock's heap, and the runtime's heap
// holds one timer per Stack.
//
// The semantics are those of tcpip.Timer on time.AfterFunc: f runs in its
// own goroutine once the duration has passed; Stop reports whether it
// stopped a pending timer; Reset makes a stopped or expired timer pending
// again, or moves a pending one.
type heapClock struct {
	tcpip.Clock           // gVisor's standard clock, for Now and NowMonotonic
	epoch       time.Time // origin of the deadlines below

	mu       sync.Mutex
	h        timerHeap     // guarded by mu: pending timers, earliest first
	master   *time.Timer   // fires at masterAt and runs fire
	masterAt time.Duration // guarded by mu: when master fires; 0 when not armed
}

// heapTimer is one timer of a heapClock.
type heapTimer struct {
	c    *heapClock
	f    func()
	when time.Duration // guarded by c.mu: deadline, since c.epoch
	idx  int           // guarded by c.mu: index in c.h, -1 when not pending
}

var (
	_ tcpip.Clock = (*heapClock)(nil)
	_ tcpip.Timer = (*heapTimer)(nil)
)

// timerHeap is a container/heap of timers by deadline; each knows its index.
type timerHeap []*heapTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) { t := x.(*heapTimer); t.idx = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

// newHeapClock returns a clock with no pending timers.
func newHeapClock() *heapClock {
	c := &heapClock{Clock: tcpip.NewStdClock(), epoch: time.Now()}
	c.master = time.AfterFunc(time.Hour, c.fire)
	c.master.Stop()
	return c
}

func (c *heapClock) now() time.Duration { return time.Since(c.epoch) }

// AfterFunc implements tcpip.Clock.
func (c *heapClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	t := &heapTimer{c: c, f: f, idx: -1}
	t.Reset(d)
	return t
}

// Stop implements tcpip.Timer.
func (t *heapTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&c.h, t.idx)
	return true
}

// Reset implements tcpip.Timer.
func (t *heapTimer) Reset(d time.Duration) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	t.when = c.now() + d
	if t.idx >= 0 {
		heap.Fix(&c.h, t.idx)
	} else {
		heap.Push(&c.h, t)
	}
	c.armLocked()
}

// armLocked makes master fire by the earliest deadline. A master armed
// for an earlier time is left alone: fire re-arms it. c.mu must be held.
func (c *heapClock) armLocked() {
	if len(c.h) == 0 {
		return
	}
	next := c.h[0].when
	if c.masterAt != 0 && c.masterAt <= next {
		return
	}
	c.masterAt = next
	c.master.Reset(next - c.now())
}

// fire runs, each in its own goroutine, the timers that are due, and arms
// master for the next.
func (c *heapClock) fire() {
	c.mu.Lock()
	c.masterAt = 0
	now := c.now()
	var due []*heapTimer
	for len(c.h) > 0 && c.h[0].when <= now {
		due = append(due, heap.Pop(&c.h).(*heapTimer))
	}
	c.armLocked()
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}
