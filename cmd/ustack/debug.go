package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/stack"
)

// debugEnv names the environment variable that turns on the debug
// listener: USTACK_DEBUG_ADDR=127.0.0.1:6060 ustack serve ... serves Go's
// profiles (/debug/pprof/) and a JSON snapshot of the process and its
// stacks (/debug/vars; ?gc=1 collects garbage first) on that loopback
// address, for the life of the process. It exists to find leaks in long
// runs (tests/soak, docs/soak.md): goroutine and heap profiles say what
// grows, /debug/vars how much. serve and run start it in the process
// that holds the stack (for a rootless run, the copy in the user
// namespace), never in the namespace's init.
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

// startDebugFromEnv starts the debug listener debugEnv asks for, if any,
// and reports a bad value on stderr as cmd's usage error.
func startDebugFromEnv(cmd string, stderr io.Writer) bool {
	if _, err := startDebug(os.Getenv(debugEnv)); err != nil {
		fmt.Fprintf(stderr, "ustack %s: %v\n", cmd, err)
		return false
	}
	return true
}

// startDebug listens on addr and serves the debug pages on a goroutine
// for the life of the process; an empty addr does nothing. addr is a
// loopback IP:PORT, which every local user can reach (and a `ustack run`
// CMD too, through the gateway, with --allow-host-loopback), or
// unix:PATH, a new socket only this user can open. Only tests close the
// server it returns.
func startDebug(addr string) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := debugListen(addr)
	if err != nil {
		return nil, err
	}
	// A CPU profile or trace runs for the ?seconds asked, up to this.
	srv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	return srv, nil
}

func debugListen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("%s=%q: want unix:PATH", debugEnv, addr)
		}
		// Profiles show what the process holds (its command line, CMD's
		// included): the socket is created 0600, with no moment at which
		// another user could connect. Nothing else runs yet.
		old := syscall.Umask(0o177)
		ln, err := net.Listen("unix", path)
		syscall.Umask(old)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", debugEnv, err)
		}
		return ln, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want a loopback IP:PORT or unix:PATH: %w", debugEnv, addr, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		// Keep the profiles off the network.
		return nil, fmt.Errorf("%s=%q: want a loopback address or unix:PATH", debugEnv, addr)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", debugEnv, err)
	}
	return ln, nil
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
