// Package services serves the small Internet services of RFC 862
// (echo), RFC 863 (discard), RFC 867 (daytime) and RFC 864 (chargen), and
// an HTTP status page of the stack's counters, from a userspace stack.
//
// It knows gVisor endpoints (through gonet) and nothing of devices: the
// caller builds the stack and hands it over. A Server owns every listener,
// connection and goroutine it starts; Close stops them all and waits. It
// does not own the stack: close the Server before the stack.
package services

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// Well-known ports (RFC 862, 863, 867, 864; HTTP).
const (
	PortEcho    = 7
	PortDiscard = 9
	PortDaytime = 13
	PortChargen = 19
	PortHTTP    = 80
)

// Config describes what a Server serves.
type Config struct {
	// Stack is the stack to serve from. Required; the caller owns it.
	Stack *stack.Stack
	// Addrs are the stack addresses every service listens on. At least
	// one is required.
	Addrs []netip.Addr
	// Now is the daytime clock; nil means time.Now.
	Now func() time.Time
	// Version is shown on the status page.
	Version string
	// DeviceStats, if set, gives the counters of the device under the
	// stack (packets its endpoint dropped, which no stack counter
	// shows), for the status page.
	DeviceStats func() tun.Stats
	// MaxConns caps the open connections of echo, discard, daytime and
	// chargen together; a connection past it is reset at once and
	// counted. 0 means DefaultMaxConns. The status page's connections
	// do not count: its time limits bound them (httpTimeouts).
	MaxConns int
}

// DefaultMaxConns is MaxConns when 0: Linux's default somaxconn, and
// ustack run's default --max-flows. Each connection costs a goroutine
// and 12-24 KB idle, a chargen client that never reads about 190 KB
// (gVisor's send buffer), so the cap bounds serve's memory near 1 GB
// where a kernel inetd would stop at its descriptor limit (1,024).
const DefaultMaxConns = 4096

// Server is a running set of services. Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	started time.Time
	conns   connTable
	http    *http.Server

	jobs chan func()  // unbuffered: a send succeeds only to an idle worker
	idle atomic.Int32 // workers waiting on jobs
	// workers counts the worker goroutines ever started (for tests).
	workers atomic.Int64
	// udpLowPortDropped counts datagrams left unanswered (mayLoop).
	udpLowPortDropped atomic.Uint64

	sampleMu sync.Mutex          // guards ep, rt, sampleAt
	ep       stack.EndpointStats // the last endpoint count (sampled)
	rt       RuntimeStats        // the last runtime figures (sampled)
	sampleAt time.Time           // when they were taken; zero before the first

	mu        sync.Mutex // guards listeners, packets
	listeners []*listener
	packets   []*gonet.UDPConn

	wg        sync.WaitGroup // every goroutine the Server starts
	done      chan struct{}  // closed when Close begins
	closeOnce sync.Once
}

// Summary describes what Start serves, for a startup message.
const Summary = "echo 7/tcp+udp, discard 9/tcp+udp, daytime 13/tcp+udp, chargen 19/tcp, http 80/tcp"

// httpTimeouts bound how long a status page client may take. A request is
// a line and a few headers, an answer at most a few MB (a status page
// listing every open connection), so the read and write limits are
// generous; the idle limit is nginx's keepalive_timeout (75 s) rounded
// down. Tests shorten them.
var httpTimeouts = struct{ header, read, write, idle time.Duration }{
	header: 10 * time.Second,
	read:   30 * time.Second,
	write:  30 * time.Second,
	idle:   60 * time.Second,
}

// Start listens on every address in cfg.Addrs and serves until Close. On
// error nothing is left running.
func Start(cfg Config) (*Server, error) {
	if cfg.Stack == nil {
		return nil, errors.New("services: Config.Stack is nil")
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("services: Config.Addrs is empty")
	}
	for _, a := range cfg.Addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("services: Config.Addrs has an invalid address %v", a)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("services: Config.MaxConns %d is negative", cfg.MaxConns)
	case cfg.MaxConns == 0:
		cfg.MaxConns = DefaultMaxConns
	}
	s := &Server{cfg: cfg, started: time.Now(), done: make(chan struct{}), jobs: make(chan func())}
	s.conns.max = cfg.MaxConns
	s.http = &http.Server{
		Handler: s.statusHandler(),
		// No client may hold a connection and its goroutine for ever:
		// not by never finishing its request headers, nor by trickling a
		// body, leaving a kept-alive connection idle, or never reading
		// what it asked for (see httpTimeouts).
		ReadHeaderTimeout: httpTimeouts.header,
		ReadTimeout:       httpTimeouts.read,
		WriteTimeout:      httpTimeouts.write,
		IdleTimeout:       httpTimeouts.idle,
		// Count each connection's goroutine in wg so that Close waits for
		// it: net/http reports StateNew from the Serve goroutine (itself
		// in wg) before it starts the connection's goroutine, and
		// StateClosed or StateHijacked as that goroutine's last act.
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.wg.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.wg.Done()
			}
		},
	}
	if err := s.listenAll(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) listenAll() error {
	tcpServices := []struct {
		port  uint16
		serve func(net.Conn)
	}{
		{PortEcho, serveEcho},
		{PortDiscard, serveDiscard},
		{PortDaytime, s.serveDaytime},
		{PortChargen, serveChargen},
	}
	udpServices := []struct {
		port  uint16
		serve func(*gonet.UDPConn)
	}{
		{PortEcho, s.serveEchoUDP},
		{PortDiscard, s.serveDiscardUDP},
		{PortDaytime, s.serveDaytimeUDP},
	}
	for _, a := range s.cfg.Addrs {
		for _, svc := range tcpServices {
			l, err := s.listenTCP(a, svc.port)
			if err != nil {
				return err
			}
			s.goServe(func() { s.acceptLoop(l, svc.port, svc.serve) })
		}
		for _, svc := range udpServices {
			c, err := s.listenUDP(a, svc.port)
			if err != nil {
				return err
			}
			s.goServe(func() { svc.serve(c) })
		}
		l, err := s.listenTCP(a, PortHTTP)
		if err != nil {
			return err
		}
		s.goServe(func() { s.http.Serve(trackedListener{l, s, PortHTTP}) })
	}
	return nil
}

func (s *Server) goServe(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Workers: a connection is served on a goroutine that has served one
// before when one is idle. gVisor's send path runs on the writer's
// goroutine and is deep, so a fresh goroutine grows its stack (copying it)
// on its first write; with short connections (daytime, a request and a
// reply) that growth was about a tenth of ustack serve's CPU per
// connection.
const (
	// maxIdleWorkers bounds the goroutines kept waiting for work, and
	// with them the memory a burst of connections leaves behind.
	maxIdleWorkers = 64
	// workerIdle is how long an idle worker waits for a connection
	// before it exits.
	workerIdle = 10 * time.Second
)

// goConn runs f on an idle worker if one is waiting, else on a new
// worker goroutine, which the Server's WaitGroup tracks like every other.
func (s *Server) goConn(f func()) {
	select {
	case s.jobs <- f:
		return
	default:
	}
	s.wg.Add(1)
	s.workers.Add(1)
	go s.worker(f)
}

// worker runs f, then waits for more work until workerIdle passes, the
// Server closes, or maxIdleWorkers others are already waiting.
func (s *Server) worker(f func()) {
	defer s.wg.Done()
	var t *time.Timer
	for {
		f()
		if s.idle.Add(1) > maxIdleWorkers {
			s.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
			defer t.Stop()
		} else {
			t.Reset(workerIdle)
		}
		select {
		case f = <-s.jobs:
			s.idle.Add(-1)
		case <-t.C:
			s.idle.Add(-1)
			return
		case <-s.done:
			s.idle.Add(-1)
			return
		}
	}
}

func fullAddress(a netip.Addr, port uint16) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	a = a.Unmap()
	proto := ipv6.ProtocolNumber
	if a.Is4() {
		proto = ipv4.ProtocolNumber
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}, proto
}

func (s *Server) listenTCP(a netip.Addr, port uint16) (*listener, error) {
	l, err := newListener(s, a, port)
	if err != nil {
		return nil, fmt.Errorf("services: listen on %v: %w", netip.AddrPortFrom(a, port), err)
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	return l, nil
}

func (s *Server) listenUDP(a netip.Addr, port uint16) (*gonet.UDPConn, error) {
	fa, proto := fullAddress(a, port)
	c, err := gonet.DialUDP(s.cfg.Stack.GVisor(), &fa, nil, proto)
	if err != nil {
		return nil, fmt.Errorf("services: bind udp %v: %w", netip.AddrPortFrom(a, port), err)
	}
	s.mu.Lock()
	s.packets = append(s.packets, c)
	s.mu.Unlock()
	return c, nil
}

// acceptLoop serves each connection l accepts on its own goroutine, until
// l is closed.
func (s *Server) acceptLoop(l *listener, port uint16, serve func(net.Conn)) {
	for {
		a, err := l.accept()
		if err != nil {
			// Close was called, or the endpoint failed for good (gVisor
			// has no transient accept errors): either way this port is done.
			return
		}
		tc, ok := s.conns.add(a, serviceName(port), true)
		if !ok {
			continue // past MaxConns, or Close is under way; add closed it
		}
		s.goConn(func() {
			defer s.conns.remove(tc)
			serve(tc)
		})
	}
}

func serviceName(port uint16) string {
	switch port {
	case PortEcho:
		return "echo"
	case PortDiscard:
		return "discard"
	case PortDaytime:
		return "daytime"
	case PortChargen:
		return "chargen"
	case PortHTTP:
		return "http"
	}
	return fmt.Sprint(port)
}

// Close stops accepting, closes every connection and waits for every
// goroutine the Server started. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		for _, l := range s.listeners {
			l.Close()
		}
		for _, c := range s.packets {
			c.SetDeadline(time.Unix(1, 0)) // wakes a blocked ReadFrom
			c.Close()
		}
		s.mu.Unlock()
		s.http.Close()
		s.conns.closeAll()
		s.wg.Wait()
	})
	return nil
}
