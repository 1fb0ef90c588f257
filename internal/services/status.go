package services

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
)

// trackedListener enters every connection the HTTP server accepts in the
// Server's table, so that the status page lists it and Close closes it.
type trackedListener struct {
	*listener
	s    *Server
	port uint16
}

func (l trackedListener) Accept() (net.Conn, error) {
	for {
		a, err := l.listener.accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := l.s.conns.add(a, serviceName(l.port), false); ok {
			return tc, nil
		}
	}
}

// Status is what the status page shows: the stack's counters and the open
// connections.
type Status struct {
	Version  string       `json:"version"`
	Uptime   string       `json:"uptime"`
	Stats    stack.Stats  `json:"stats"`
	Device   *tun.Stats   `json:"device,omitempty"` // nil without Config.DeviceStats
	Services ServiceStats `json:"services"`
	// Endpoints is the stack's endpoint count (stack.Stack.Endpoints) and
	// Runtime the process's figures, both at most sampleMaxAge old.
	Endpoints   stack.EndpointStats `json:"endpoints"`
	Runtime     RuntimeStats        `json:"runtime"`
	Connections []ConnInfo          `json:"connections"`
}

// RuntimeStats is the serving process's own use of memory and goroutines,
// so that an operator (or tests/soak) can see whether it stays bounded
// over days of churn.
type RuntimeStats struct {
	Goroutines  uint64 `json:"goroutines"`
	HeapAlloc   uint64 `json:"heap_alloc"`   // bytes of live and not yet collected objects
	HeapObjects uint64 `json:"heap_objects"` // objects allocated and not yet freed
	Sys         uint64 `json:"sys"`          // bytes obtained from the OS
}

// sampleMaxAge is how long the stack's endpoint count and the process's
// runtime figures are shown again rather than taken anew: counting walks
// every endpoint holding the stack's lock (7 ms for 10,000 endpoints),
// runtime.ReadMemStats stops the world, and any peer can ask for the
// page. Tests set it to 0.
var sampleMaxAge = time.Second

// sampled returns the stack's endpoint count and the runtime figures,
// taking them at most once per sampleMaxAge.
func (s *Server) sampled() (stack.EndpointStats, RuntimeStats) {
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	if s.sampleAt.IsZero() || time.Since(s.sampleAt) >= sampleMaxAge {
		s.ep, s.rt, s.sampleAt = s.cfg.Stack.Endpoints(), readRuntime(), time.Now()
	}
	return s.ep, s.rt
}

func readRuntime() RuntimeStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return RuntimeStats{
		Goroutines:  uint64(runtime.NumGoroutine()),
		HeapAlloc:   m.HeapAlloc,
		HeapObjects: m.HeapObjects,
		Sys:         m.Sys,
	}
}

// ServiceStats counts what the services themselves refused.
type ServiceStats struct {
	// UDPLowPortDropped: datagrams to UDP echo or daytime from a source
	// port below 1024, left unanswered so that no forged source can
	// start a loop between two services (see mayLoop).
	UDPLowPortDropped uint64 `json:"udp_low_port_dropped"`
	// ConnLimitReset: connections reset at once because MaxConns were
	// open.
	ConnLimitReset uint64 `json:"conn_limit_reset"`
}

// Status returns a snapshot of the stack's counters and open connections.
func (s *Server) Status() Status {
	st := Status{
		Version:     s.cfg.Version,
		Uptime:      time.Since(s.started).Round(time.Second).String(),
		Stats:       s.cfg.Stack.Stats(),
		Connections: s.Conns(),
		Services:    ServiceStats{UDPLowPortDropped: s.udpLowPortDropped.Load(), ConnLimitReset: s.conns.limitReset.Load()},
	}
	st.Endpoints, st.Runtime = s.sampled()
	if s.cfg.DeviceStats != nil {
		d := s.cfg.DeviceStats()
		st.Device = &d
	}
	return st
}

func (s *Server) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeStatus(w, s.Status())
	})
	mux.HandleFunc("GET /stats.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	})
	return mux
}

// writeStatus renders st as plain text: one "Group.Counter value" line per
// counter, then a table of connections.
func writeStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "ustack %s, up %s\n\n", st.Version, st.Uptime)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, n := range st.Stats.NICs {
		writeCounters(tw, "NIC "+n.Name+".", reflect.ValueOf(n))
	}
	writeCounters(tw, "IP.", reflect.ValueOf(st.Stats.IP))
	writeCounters(tw, "ICMP.", reflect.ValueOf(st.Stats.ICMP))
	writeCounters(tw, "TCP.", reflect.ValueOf(st.Stats.TCP))
	writeCounters(tw, "UDP.", reflect.ValueOf(st.Stats.UDP))
	writeCounters(tw, "Endpoints.", reflect.ValueOf(st.Endpoints))
	if st.Device != nil {
		writeCounters(tw, "Device.", reflect.ValueOf(*st.Device))
	}
	writeCounters(tw, "Services.", reflect.ValueOf(st.Services))
	writeCounters(tw, "Runtime.", reflect.ValueOf(st.Runtime))
	tw.Flush()
	fmt.Fprintf(w, "\nOpen connections: %d\n", len(st.Connections))
	if len(st.Connections) == 0 {
		return
	}
	fmt.Fprintln(tw, "SERVICE\tLOCAL\tREMOTE\tAGE\tBYTES IN\tBYTES OUT")
	for _, c := range st.Connections {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", c.Service, c.Local, c.Remote,
			time.Since(c.Since).Round(time.Millisecond), c.BytesIn, c.BytesOut)
	}
	tw.Flush()
}

// writeCounters writes every uint64 field of the struct v, so that a
// counter added to stack.Stats shows up without a change here.
func writeCounters(w io.Writer, prefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Uint64 {
			fmt.Fprintf(w, "%s%s\t%d\n", prefix, t.Field(i).Name, f.Uint())
		}
	}
}
