package services

import (
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ConnInfo describes one open TCP connection.
type ConnInfo struct {
	Service       string
	Local, Remote netip.AddrPort
	Since         time.Time
	BytesIn       uint64 // read from the peer
	BytesOut      uint64 // written to the peer
}

// Conns returns the open TCP connections, oldest first.
func (s *Server) Conns() []ConnInfo { return s.conns.list() }

// trackedConn is an accepted connection in the Server's table. It counts
// bytes both ways, and its Close removes it from the table.
type trackedConn struct {
	net.Conn
	ep            tcpip.Endpoint // under Conn, for waitReadable
	wq            *waiter.Queue  // ep's
	t             *connTable
	service       string
	local, remote netip.AddrPort
	since         time.Time
	in, out       atomic.Uint64
	closed        chan struct{} // closed by Close
	closeOnce     sync.Once
}

// readableEvents are the events after which a Read returns at once: data,
// the peer's FIN, or an error (a reset).
const readableEvents = waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr

// waitReadable blocks until a Read would not block, or c is closed. The
// services call it before they take a read buffer, so that a connection
// waiting for its peer holds none: an idle socket costs a kernel server a
// few KB whatever it carried before, and so it should here (a 256 KiB
// buffer per idle discard connection was 128 MB of RSS for 1,000).
func (c *trackedConn) waitReadable() {
	if c.ep.Readiness(readableEvents) != 0 {
		return
	}
	entry, notify := waiter.NewChannelEntry(readableEvents)
	c.wq.EventRegister(&entry)
	defer c.wq.EventUnregister(&entry)
	if c.ep.Readiness(readableEvents) != 0 {
		return
	}
	select {
	case <-notify:
	case <-c.closed:
	}
}

// waitReadable calls c's waitReadable if it has one; other connections
// (tests' pipes) are read at once.
func waitReadable(c net.Conn) {
	if w, ok := c.(interface{ waitReadable() }); ok {
		w.waitReadable()
	}
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(uint64(n))
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(uint64(n))
	return n, err
}

// CloseWrite sends FIN, so that echo can answer a client that half-closes.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
		c.t.remove(c)
	})
	return err
}

// connTable is the set of open connections. It also enforces
// Config.MaxConns: the connections added as capped (the small services,
// not the status page) never number more than max.
type connTable struct {
	mu     sync.Mutex            // guards conns, capped, closed
	conns  map[*trackedConn]bool // guarded by mu; true if it counts toward max
	capped int                   // guarded by mu; entries of conns that are true
	closed bool                  // guarded by mu; set by closeAll
	max    int                   // set before the first add

	// limitReset counts the connections add reset because max were open.
	limitReset atomic.Uint64
}

// add wraps a and enters it in the table. A capped connection past max
// is reset at once and counted, and add reports false; so it does after
// closeAll, having closed the connection.
func (t *connTable) add(a accepted, service string, capped bool) (*trackedConn, bool) {
	c := a.conn
	tc := &trackedConn{
		Conn: c, ep: a.ep, wq: a.wq, t: t, service: service, since: time.Now(),
		local: a.local, remote: a.remote, closed: make(chan struct{}),
	}
	t.mu.Lock()
	full := capped && t.capped >= t.max
	closed := t.closed
	if !full && !closed {
		if t.conns == nil {
			t.conns = map[*trackedConn]bool{}
		}
		t.conns[tc] = capped
		if capped {
			t.capped++
		}
	}
	t.mu.Unlock()
	switch {
	case full:
		t.limitReset.Add(1)
		a.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true}) // close sends RST
		c.Close()
		return nil, false
	case closed:
		c.Close()
		return nil, false
	}
	return tc, true
}

func (t *connTable) remove(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if capped, ok := t.conns[c]; ok {
		delete(t.conns, c)
		if capped {
			t.capped--
		}
	}
}

// closeAll closes every connection, waking its reads and writes, and
// makes later adds close theirs at once.
func (t *connTable) closeAll() {
	t.mu.Lock()
	t.closed = true
	cs := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		// A past deadline wakes a Read or Write blocked in gonet at once;
		// Close alone would leave a writer blocked on a full window.
		c.SetDeadline(time.Unix(1, 0))
		c.Close()
	}
}

func (t *connTable) list() []ConnInfo {
	t.mu.Lock()
	out := make([]ConnInfo, 0, len(t.conns))
	for c := range t.conns {
		out = append(out, ConnInfo{
			Service: c.service, Local: c.local, Remote: c.remote, Since: c.since,
			BytesIn: c.in.Load(), BytesOut: c.out.Load(),
		})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Remote.String() < out[j].Remote.String()
	})
	return out
}
