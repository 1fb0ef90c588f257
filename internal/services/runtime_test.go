package services

import (
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestStatusShowsRuntimeAndEndpoints: the status page carries what an
// operator (or tests/soak) watches over a long run: the process's
// goroutines and heap, and the stack's endpoints, which a connection
// raises while it is open and which go back down after it.
func TestStatusShowsRuntimeAndEndpoints(t *testing.T) {
	leakcheck.Check(t)
	old := sampleMaxAge
	sampleMaxAge = 0 // count anew on every request
	t.Cleanup(func() { sampleMaxAge = old })
	st, srv := start(t)
	before := srv.Status()
	// Every service listens on 127.0.0.1 and ::1: 5 TCP and 3 UDP each.
	if got := before.Endpoints.Registered; got != 16 {
		t.Errorf("Endpoints.Registered at rest = %d, want the 16 listeners", got)
	}
	if r := before.Runtime; r.Goroutines == 0 || r.HeapAlloc == 0 || r.HeapObjects == 0 || r.Sys == 0 {
		t.Errorf("Runtime = %+v, want every figure set", r)
	}
	c := dial(t, st, lo4, PortDiscard)
	if got := srv.Status().Endpoints.Registered; got != 18 {
		t.Errorf("Endpoints.Registered with a connection open = %d, want 18 (both ends are in this stack)", got)
	}
	c.Close()
}
