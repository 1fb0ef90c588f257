// Package leakcheck lets a test assert that the goroutines and file
// descriptors it started are gone when it ends.
package leakcheck

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// grace is how long Check waits for goroutines and fds to go.
var grace = 5 * time.Second

// lifelong marks goroutines that, once started, run for the rest of the
// process, so they are nobody's leak: os/signal's receive loop starts at
// the first signal.Notify, which the fuzzing engine calls after a fuzz
// target's baseline is taken.
var lifelong = []string{"os/signal.signal_recv", "os/signal.loop"}

// Check records the current goroutine and fd counts and registers a
// cleanup that fails t if, within a grace period, they have not returned
// to that baseline. Call it first in a test, before anything that
// registers its own cleanups, so that it runs last.
func Check(t testing.TB) {
	t.Helper()
	g0, fd0 := countGoroutines(), countFDs()
	t.Cleanup(func() {
		deadline := time.Now().Add(grace)
		for {
			// NumGoroutine counts the lifelong ones too, so when it is
			// within the baseline the full count is; only otherwise is
			// it worth reading every stack.
			g, fd := runtime.NumGoroutine(), countFDs()
			if g > g0 {
				g = countGoroutines()
			}
			if g <= g0 && fd <= fd0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s",
					g, g0, fd, fd0, stacks())
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// countFDs counts this process's open descriptors, or returns 0 where
// /proc/self/fd does not exist.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// goroutines returns the stack of every goroutine but the lifelong ones.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !isLifelong(g) {
			out = append(out, g)
		}
	}
	return out
}

func isLifelong(g string) bool {
	for _, f := range lifelong {
		if strings.Contains(g, f) {
			return true
		}
	}
	return false
}

func countGoroutines() int { return len(goroutines()) }

func stacks() string {
	var keep []string
	for _, g := range goroutines() {
		if strings.Contains(g, "testing.(*T).Run") || strings.Contains(g, "testing.tRunner") && strings.Contains(g, "leakcheck") {
			continue
		}
		keep = append(keep, g)
	}
	return strings.Join(keep, "\n\n")
}
