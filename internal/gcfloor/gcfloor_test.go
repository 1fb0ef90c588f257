package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		base, want  int
	}{
		{0, 256 * mib, 100, 100},          // nothing measured yet
		{64 * mib, 256 * mib, 100, 400},   // small heap: grow by the floor
		{256 * mib, 256 * mib, 100, 100},  // the floor equals GOGC's growth
		{1024 * mib, 256 * mib, 100, 100}, // large heap: GOGC's proportion
		{64 * mib, 256 * mib, 800, 800},   // a higher GOGC is kept
		{1, 256 * mib, 100, 1 << 20},      // capped
		{100 * mib, 150 * mib, 100, 150},
	} {
		if got := Percent(tc.live, tc.floor, tc.base); got != tc.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", tc.live, tc.floor, tc.base, got, tc.want)
		}
	}
}

// gogc reads the GOGC in effect.
func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStartRaisesAndStopRestores(t *testing.T) {
	base := gogc()
	if base < 0 {
		t.Skip("GOGC=off in this environment")
	}
	stop := Start(1 << 40) // far above this test's live heap
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for gogc() <= base {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after collections, want it raised above %d", gogc(), base)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	stop()
	if got := gogc(); got != base {
		t.Errorf("after stop GOGC = %d, want the base %d", got, base)
	}
	for range 3 { // later collections leave it alone
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if got := gogc(); got != base {
		t.Errorf("after stop and collections GOGC = %d, want the base %d", got, base)
	}
}

func TestStartOffDoesNothing(t *testing.T) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	stop := Start(1 << 30)
	runtime.GC()
	time.Sleep(time.Millisecond)
	if got := gogc(); got != -1 {
		t.Errorf("GOGC = %d with the collector off, want -1 (left alone)", got)
	}
	stop()
	if got := gogc(); got != -1 {
		t.Errorf("after stop GOGC = %d, want -1", got)
	}
}
