//go:build linux

package sockapi

// CPU-time companions of BenchmarkConnectAcceptClose and BenchmarkPingPong.
// On a machine shared with other work, wall time per operation mostly
// measures how much CPU the scheduler gave this process; the CPU time the
// process spends per operation (getrusage, user+system, every thread:
// gVisor's TCP processors, timers and GC included) does not depend on
// that, so it compares settings and implementations far more steadily.
// Kernel work done in a syscall (loopback TCP runs its softirq there) is
// charged to the process too, so the two sides are measured alike.
//
//	go test ./sockapi -run '^$' -bench 'CPU' -benchtime=20000x -count=3
//
// Both sides run in alternating blocks of cpuBlock operations, each block
// timed with two getrusage calls, so both see the same machine load.

import (
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// cpuBlock is how many operations run between two getrusage calls.
const cpuBlock = 50

// processCPU is the CPU time all of this process's threads have used.
func processCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// interleaveCPU runs every side's op b.N times in alternating blocks and
// adds each block's CPU time to the side's total.
func interleaveCPU(b *testing.B, sides ...*benchSide) {
	b.Helper()
	b.ResetTimer()
	for done := 0; done < b.N; done += cpuBlock {
		n := min(cpuBlock, b.N-done)
		for _, s := range sides {
			c0 := processCPU(b)
			for i := 0; i < n; i++ {
				if err := s.op(); err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
			}
			s.total += processCPU(b) - c0
		}
	}
	b.StopTimer()
}

// reportCPU reports each side's CPU microseconds per operation and the
// ratio of the second side's to the first's.
func reportCPU(b *testing.B, base, other *benchSide) {
	us := func(s *benchSide) float64 { return float64(s.total.Microseconds()) / float64(b.N) }
	b.ReportMetric(us(base), base.name+"-cpu-µs/op")
	b.ReportMetric(us(other), other.name+"-cpu-µs/op")
	b.ReportMetric(us(other)/us(base), other.name+"/"+base.name)
}

// reportSegments reports the TCP segments st sent per operation since
// before, the number of packets each operation costs the stack.
func reportSegments(b *testing.B, st *stack.Stack, before uint64) {
	b.ReportMetric(float64(st.Stats().TCP.SegmentsSent-before)/float64(b.N), "ustack-segs/op")
}

func BenchmarkCPUConnectAcceptClose(b *testing.B) {
	k, u, st := benchEnvs(b)
	sides := []*benchSide{connectSide("kernel", k), connectSide("ustack", u)}
	segs := st.Stats().TCP.SegmentsSent
	interleaveCPU(b, sides...)
	reportCPU(b, sides[0], sides[1])
	reportSegments(b, st, segs)
}

func BenchmarkCPUPingPong(b *testing.B) {
	k, u, st := benchEnvs(b)
	sides := []*benchSide{pingPongSide("kernel", k), pingPongSide("ustack", u)}
	segs := st.Stats().TCP.SegmentsSent
	interleaveCPU(b, sides...)
	reportCPU(b, sides[0], sides[1])
	reportSegments(b, st, segs)
}

// BenchmarkCPUConnectUstack is the ustack half of
// BenchmarkCPUConnectAcceptClose alone, for profiles that the kernel's
// share would otherwise dilute:
//
//	go test ./sockapi -run '^$' -bench CPUConnectUstack -benchtime=80000x -cpuprofile cpu.prof
func BenchmarkCPUConnectUstack(b *testing.B) {
	_, u, st := benchEnvs(b)
	side := connectSide("ustack", u)
	segs := st.Stats().TCP.SegmentsSent
	interleaveCPU(b, side)
	b.ReportMetric(float64(side.total.Microseconds())/float64(b.N), "ustack-cpu-µs/op")
	reportSegments(b, st, segs)
}
