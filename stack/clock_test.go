package stack

import (
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeapClockFiresInOrder: timers fire once each, after their duration,
// earliest first, including one added earlier than what the clock was
// already waiting for.
func TestHeapClockFiresInOrder(t *testing.T) {
	c := newHeapClock()
	start := time.Now()
	got := make(chan int, 3)
	for _, tc := range []struct {
		n int
		d time.Duration
	}{{3, 60 * time.Millisecond}, {2, 40 * time.Millisecond}, {1, 20 * time.Millisecond}} {
		c.AfterFunc(tc.d, func() {
			if e := time.Since(start); e < tc.d {
				t.Errorf("timer %d fired after %v, before its %v", tc.n, e, tc.d)
			}
			got <- tc.n
		})
	}
	for want := 1; want <= 3; want++ {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("timer %d fired, want %d next", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timer %d never fired", want)
		}
	}
	select {
	case n := <-got:
		t.Fatalf("timer %d fired twice", n)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestHeapClockStopReset checks Stop's result and that Stop and Reset
// decide whether and when the function runs.
func TestHeapClockStopReset(t *testing.T) {
	c := newHeapClock()
	var fired atomic.Int32
	tm := c.AfterFunc(30*time.Millisecond, func() { fired.Add(1) })
	if !tm.Stop() {
		t.Errorf("Stop() of a pending timer = false, want true")
	}
	if tm.Stop() {
		t.Errorf("Stop() of a stopped timer = true, want false")
	}
	time.Sleep(60 * time.Millisecond)
	if n := fired.Load(); n != 0 {
		t.Fatalf("stopped timer fired %d times", n)
	}

	done := make(chan time.Time, 2)
	start := time.Now()
	tm = c.AfterFunc(time.Hour, func() { done <- time.Now() })
	tm.Reset(20 * time.Millisecond) // pending: moved earlier
	select {
	case at := <-done:
		if at.Sub(start) < 20*time.Millisecond {
			t.Errorf("reset timer fired after %v, before 20ms", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer moved from 1h to 20ms never fired")
	}
	if tm.Stop() {
		t.Errorf("Stop() of an expired timer = true, want false")
	}
	tm.Reset(10 * time.Millisecond) // expired: pending again
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("expired timer reset to 10ms never fired")
	}
}

// TestHeapClockConcurrent resets, stops and lets fire many timers from
// several goroutines; each timer still left pending at the end fires
// exactly once. Run with -race.
func TestHeapClockConcurrent(t *testing.T) {
	c := newHeapClock()
	const n = 400
	var wg sync.WaitGroup
	counts := make([]atomic.Int32, n)
	pending := make([]atomic.Bool, n)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			for i := g; i < n; i += 4 {
				tm := c.AfterFunc(time.Duration(r.Intn(20))*time.Millisecond, func() { counts[i].Add(1) })
				switch r.Intn(3) {
				case 0:
					if tm.Stop() {
						continue // stopped before firing: must never fire
					}
					pending[i].Store(true) // already fired
				case 1:
					tm.Reset(time.Duration(r.Intn(20)) * time.Millisecond)
					pending[i].Store(true)
				default:
					pending[i].Store(true)
				}
			}
		}(g)
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	for i := range counts {
		want := int32(0)
		if pending[i].Load() {
			want = 1
		}
		// A Reset of a timer that had already fired makes it fire again.
		if got := counts[i].Load(); got != want && !(want == 1 && got == 2) {
			t.Errorf("timer %d fired %d times, want %d", i, got, want)
		}
	}
}
