package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// debugEnv names the environment variable that turns on the debug
// listener: USTACK_DEBUG_ADDR=127.0.0.1:6060 ustack serve ... serves Go's
// profiles (/debug/pprof/) and a JSON snapshot of the process and its
// stacks (/debug/vars; ?gc=1 collects garbage first) on that loopback
// address, for the life of the process. It exists to find leaks in long
// runs (tests/soak, docs/soak.md): goroutine and heap profiles say what
// grows, /debug/vars how much.
const debugEnv = "USTACK_DEBUG_ADDR"

// debugStacks are the stacks /debug/vars reports, in the order made.
var debugStacks struct {
	mu   sync.Mutex // guards list
	list []*stack.Stack
}

// trackStack lists st in /debug/vars until the returned function is
// called (before st.Close).
func trackStack(st *stack.Stack) (untrack func()) {
	debugStacks.mu.Lock()
	debugStacks.list = append(debugStacks.list, st)
	debugStacks.mu.Unlock()
	return func() {
		debugStacks.mu.Lock()
		defer debugStacks.mu.Unlock()
		for i, s := range debugStacks.list {
			if s == st {
				debugStacks.list = append(debugStacks.list[:i], debugStacks.list[i+1:]...)
				return
			}
		}
	}
}

// startDebug listens on addr (a loopback address and port) and serves the
// debug pages on a goroutine that lives as long as the process. An empty
// addr does nothing.
func startDebug(addr string) error {
	if addr == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: want a loopback IP:PORT: %w", debugEnv, addr, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		// Profiles show what the process holds; keep them off the network.
		return fmt.Errorf("%s=%q: want a loopback address", debugEnv, addr)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return fmt.Errorf("%s: %w", debugEnv, err)
	}
	srv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // for the life of the process
	return nil
}

func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			// The live heap, not what waits for the next collection
			// (serve lets 256 MiB of garbage pile up: serveGCFloor).
			runtime.GC()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(readDebugVars())
	})
	return mux
}

// debugVars is what /debug/vars shows.
type debugVars struct {
	Goroutines  int          `json:"goroutines"`
	FDs         int          `json:"fds"` // -1 where /proc/self/fd is missing
	HeapAlloc   uint64       `json:"heap_alloc"`
	HeapInuse   uint64       `json:"heap_inuse"`
	HeapObjects uint64       `json:"heap_objects"`
	Sys         uint64       `json:"sys"`
	NumGC       uint32       `json:"num_gc"`
	Stacks      []debugStack `json:"stacks"`
}

// debugStack is one stack's counters and its endpoint count (which
// Stats leaves out for its cost: stack.Stack.Endpoints).
type debugStack struct {
	stack.Stats
	Endpoints stack.EndpointStats
}

func readDebugVars() debugVars {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	v := debugVars{
		Goroutines: runtime.NumGoroutine(), FDs: -1,
		HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, HeapObjects: m.HeapObjects,
		Sys: m.Sys, NumGC: m.NumGC, Stacks: []debugStack{},
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		v.FDs = len(ents)
	}
	debugStacks.mu.Lock()
	defer debugStacks.mu.Unlock()
	for _, st := range debugStacks.list {
		v.Stacks = append(v.Stacks, debugStack{st.Stats(), st.Endpoints()})
	}
	return v
}
