package stack

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// tcpProcessors counts the goroutines running gVisor's TCP processor loop.
func tcpProcessors() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "tcp.(*processor).start(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// settledProcessors waits up to a second for the processor goroutines a
// stack starts (they begin running asynchronously) to number want, and
// returns the count it last saw.
func settledProcessors(want int) int {
	n := tcpProcessors()
	for deadline := time.Now().Add(time.Second); n != want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		n = tcpProcessors()
	}
	return n
}

func TestTCPProcessors(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name       string
		processors int
		want       int
	}{
		{"default", 0, 1},
		{"three", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, procs := tcpProcessors(), runtime.GOMAXPROCS(0)
			s, err := New(Config{TCP: TCPConfig{Processors: tc.processors}})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close()
			if got := settledProcessors(before+tc.want) - before; got != tc.want {
				t.Errorf("New(TCP.Processors: %d) started %d TCP processors, want %d", tc.processors, got, tc.want)
			}
			if got := runtime.GOMAXPROCS(0); got != procs {
				t.Errorf("GOMAXPROCS after New = %d, want %d as before", got, procs)
			}
		})
	}
}

// Stacks built at the same time must each put GOMAXPROCS back, not leave
// one's temporary value behind.
func TestTCPProcessorsConcurrentNew(t *testing.T) {
	leakcheck.Check(t)
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := New(Config{TCP: TCPConfig{Processors: 1 + i%3}})
			if err != nil {
				t.Errorf("New: %v", err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS after concurrent New = %d, want %d", got, procs)
	}
}

func TestTCPProcessorsNegative(t *testing.T) {
	if s, err := New(Config{TCP: TCPConfig{Processors: -1}}); err == nil {
		s.Close()
		t.Fatal("New(TCP.Processors: -1) = nil error, want an error naming the field")
	} else if !strings.Contains(err.Error(), "TCP.Processors") {
		t.Errorf("New(TCP.Processors: -1) = %v, want an error naming TCP.Processors", err)
	}
}
