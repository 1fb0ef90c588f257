package leakcheck

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps Check's cleanup and failure to
// itself, so a test can run Check and see what it would report.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, args...))
}

func (r *recorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// TestSignalLoopIsNoLeak: the first signal.Notify in a process starts
// os/signal's receive loop, which runs for the rest of the process. The
// fuzzing engine calls signal.Notify after a fuzz target's Check has taken
// its baseline, so every `go test -fuzz` of a target that calls Check
// failed with a "leak" that was no one's.
func TestSignalLoopIsNoLeak(t *testing.T) {
	r := &recorder{TB: t}
	Check(r)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	defer signal.Stop(c)
	r.finish()
	if len(r.errors) > 0 {
		t.Errorf("Check reported os/signal's loop as a leak:\n%s", r.errors[0])
	}
}

// TestLeakedGoroutineReported: a goroutine the test started and left
// running is still reported.
func TestLeakedGoroutineReported(t *testing.T) {
	defer func(g time.Duration) { grace = g }(grace)
	grace = 100 * time.Millisecond
	r := &recorder{TB: t}
	Check(r)
	stop := make(chan struct{})
	go func() { <-stop }()
	r.finish()
	close(stop)
	if len(r.errors) == 0 {
		t.Errorf("Check did not report a goroutine left running")
	}
}
