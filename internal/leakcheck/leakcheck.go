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

// Check records the current goroutine and fd counts and registers a
// cleanup that fails t if, within a grace period, they have not returned
// to that baseline. Call it first in a test, before anything that
// registers its own cleanups, so that it runs last.
func Check(t testing.TB) {
	t.Helper()
	g0, fd0 := runtime.NumGoroutine(), countFDs()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, fd := runtime.NumGoroutine(), countFDs()
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

func stacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var keep []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.(*T).Run") || strings.Contains(g, "testing.tRunner") && strings.Contains(g, "leakcheck") {
			continue
		}
		keep = append(keep, g)
	}
	return strings.Join(keep, "\n\n")
}
