package services

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is Linux's default somaxconn (4096 since 5.4), so that a
// burst of connections is queued rather than dropped as it would not be
// against the kernel.
const listenBacklog = 4096

// keepAlive is what every accepted connection gets: Go's net package's
// defaults for accepted connections (net/tcpsockopt.go: 15 s idle, 15 s
// between probes, 9 probes), so that a peer that vanished without a FIN
// or a reset is found within about 2.5 minutes. Echo and discard wait for
// their peer and send nothing that could fail; without probes such a
// connection, its goroutine and endpoint stayed until serve stopped.
// Tests shorten it.
var keepAlive = struct {
	idle, interval time.Duration
	count          int
}{15 * time.Second, 15 * time.Second, 9}

// errListenerClosed is what Accept returns once Close has been called.
var errListenerClosed = errors.New("services: listener closed")

// listener accepts TCP connections on a gVisor endpoint. It exists, rather
// than gonet.TCPListener, to reach each accepted endpoint before gonet wraps
// it: see accept.
type listener struct {
	ep        tcpip.Endpoint
	wq        waiter.Queue
	addr      netip.AddrPort
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

var _ net.Listener = (*listener)(nil)

func newListener(s *Server, a netip.Addr, port uint16) (*listener, error) {
	fa, proto := fullAddress(a, port)
	l := &listener{addr: netip.AddrPortFrom(a, port), closed: make(chan struct{})}
	ep, terr := s.cfg.Stack.GVisor().NewEndpoint(tcp.ProtocolNumber, proto, &l.wq)
	if terr != nil {
		return nil, &net.OpError{Op: "socket", Net: "tcp", Addr: net.TCPAddrFromAddrPort(l.addr), Err: errors.New(terr.String())}
	}
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "bind", Net: "tcp", Addr: net.TCPAddrFromAddrPort(l.addr), Err: errors.New(terr.String())}
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(l.addr), Err: errors.New(terr.String())}
	}
	l.ep = ep
	return l, nil
}

// accepted is a connection accept returns, with its addresses.
type accepted struct {
	conn          *gonet.TCPConn
	ep            tcpip.Endpoint // conn's, for waitReadable
	wq            *waiter.Queue  // conn's
	local, remote netip.AddrPort
}

// Accept implements net.Listener.
func (l *listener) Accept() (net.Conn, error) {
	a, err := l.accept()
	if err != nil {
		return nil, err
	}
	return a.conn, nil
}

// accept waits for a connection, the way gonet and sockapi block: try the
// non-blocking Accept, and only when none is queued register on the wait
// queue, retry, then wait for a notification or Close (with several
// clients connecting, one is often queued already). Each accepted
// connection gets TCP_NODELAY, as Go's net package gives every TCP
// connection (net/tcpsock_posix.go): echo answers a small request at once
// instead of waiting out Nagle. The addresses are read from the endpoint
// here, without the allocations of gonet's LocalAddr and RemoteAddr.
func (l *listener) accept() (accepted, error) {
	ep, wq, terr := l.ep.Accept(nil)
	if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
		entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
		l.wq.EventRegister(&entry)
		defer l.wq.EventUnregister(&entry)
		for {
			ep, wq, terr = l.ep.Accept(nil)
			if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
				break
			}
			select {
			case <-l.closed:
				return accepted{}, errListenerClosed
			case <-notify:
			}
		}
	}
	if terr != nil {
		return accepted{}, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: errors.New(terr.String())}
	}
	ep.SocketOptions().SetDelayOption(false)
	setKeepAlive(ep)
	a := accepted{conn: gonet.NewTCPConn(wq, ep), ep: ep, wq: wq}
	if fa, err := ep.GetLocalAddress(); err == nil {
		a.local = fullAddrPort(fa)
	}
	if fa, err := ep.GetRemoteAddress(); err == nil {
		a.remote = fullAddrPort(fa)
	}
	return a, nil
}

// setKeepAlive turns keep-alive probes on for ep (see keepAlive).
func setKeepAlive(ep tcpip.Endpoint) {
	idle := tcpip.KeepaliveIdleOption(keepAlive.idle)
	interval := tcpip.KeepaliveIntervalOption(keepAlive.interval)
	ep.SetSockOpt(&idle)
	ep.SetSockOpt(&interval)
	ep.SetSockOptInt(tcpip.KeepaliveCountOption, keepAlive.count)
	ep.SocketOptions().SetKeepAlive(true)
}

// fullAddrPort converts a gVisor address and port to a netip.AddrPort.
func fullAddrPort(fa tcpip.FullAddress) netip.AddrPort {
	var a netip.Addr
	switch fa.Addr.Len() {
	case 4:
		a = netip.AddrFrom4(fa.Addr.As4())
	case 16:
		a = netip.AddrFrom16(fa.Addr.As16())
	}
	return netip.AddrPortFrom(a, fa.Port)
}

// Close stops listening and wakes a blocked Accept.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.ep.Close()
	})
	return nil
}

// Addr returns the listening address.
func (l *listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }
