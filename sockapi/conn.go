//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// somaxconn is Linux's default net.core.somaxconn (4096 since 5.4): listen
// clamps larger and negative backlogs to it.
const somaxconn = 4096

// Bind assigns sa to fd's socket.
func (s *Sockets) Bind(fd int, sa unix.Sockaddr) error {
	sa, err := checkSockaddr(sa)
	if err != nil {
		return err
	}
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	fa, err := sk.fullAddr(sa, forBind)
	if err != nil {
		return err
	}
	if sk.stream() && sk.finished() {
		// A connection that has ended leaves the socket in TCP_CLOSE
		// with its port released, unless bind chose it
		// (SOCK_BINDPORT_LOCK): Linux lets it bind again. gVisor's
		// endpoint stays bound, so the socket gets a fresh one.
		sk.mu.Lock()
		portLocked := sk.hasBound && sk.bound.Port != 0
		sk.mu.Unlock()
		if portLocked {
			return unix.EINVAL
		}
		if err := sk.renew(false); err != nil {
			return err
		}
	}
	if err := errnoOf(sk.ep().Bind(fa)); err != nil {
		return err
	}
	if a, ok := sa.(*unix.SockaddrInet6); ok && a.Addr != ([16]byte{}) && !isV4Mapped(a.Addr) &&
		(sk.proto == unix.IPPROTO_TCP || sk.proto == unix.IPPROTO_UDP) {
		// inet6_bind: bound to an IPv6 address other than :: or a
		// v4-mapped one, the socket can only speak IPv6, and Linux
		// sets IPV6_V6ONLY (read back by getsockopt).
		sk.ep().SocketOptions().SetV6Only(true)
	}
	sk.mu.Lock()
	sk.bound, sk.hasBound = fa, true
	sk.mu.Unlock()
	return nil
}

// Listen marks fd's stream socket as accepting connections, binding it to
// an ephemeral port first if it is unbound, as Linux does.
func (s *Sockets) Listen(fd int, backlog int) error {
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	if !sk.stream() {
		return unix.EOPNOTSUPP
	}
	// __sys_listen compares as unsigned, so a negative backlog is clamped.
	if backlog < 0 || backlog > somaxconn {
		backlog = somaxconn
	}
	// Linux queues backlog+1 connections (sk_acceptq_is_full compares
	// with >), gVisor backlog: listen(fd, 0) must still take one.
	terr := sk.ep().Listen(backlog + 1)
	if _, ok := terr.(*tcpip.ErrInvalidEndpointState); ok && sk.ep().SocketOptions().GetAcceptConn() {
		// Listening again with a backlog below the connections already
		// queued: Linux keeps them and takes no more until the queue
		// drains below the new limit; gVisor refuses to shrink. Use the
		// smallest doubling of the new limit that holds the queue.
		for b := 2 * (backlog + 1); b <= 2*(somaxconn+1); b *= 2 {
			if terr = sk.ep().Listen(b); terr == nil {
				break
			}
		}
	}
	if terr == nil {
		// A shutdown recorded while unconnected (ENOTCONN, but Linux
		// keeps it in sk_shutdown) means nothing to a listener: tcp_poll
		// and SO_ACCEPTCONN go by the LISTEN state alone. Kept, it read
		// here as a listener shut down for reading, never readable.
		sk.shut.Store(0)
	}
	return errnoOf(terr)
}

// Accept is Accept4 with no flags.
func (s *Sockets) Accept(fd int) (int, unix.Sockaddr, error) {
	return s.accept(fd, 0, waitOpts{})
}

// Accept4 takes a connection from fd's listen queue, blocking unless fd
// is non-blocking (EAGAIN). flags may hold SOCK_NONBLOCK and SOCK_CLOEXEC
// for the new descriptor; anything else is EINVAL.
func (s *Sockets) Accept4(fd int, flags int) (int, unix.Sockaddr, error) {
	return s.accept(fd, flags, waitOpts{})
}

func (s *Sockets) accept(fd int, flags int, wo waitOpts) (int, unix.Sockaddr, error) {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return -1, nil, unix.EINVAL
	}
	fe, sk, err := s.sock(fd)
	if err != nil {
		return -1, nil, err
	}
	if !sk.stream() {
		return -1, nil, unix.EOPNOTSUPP
	}
	var (
		nep  tcpip.Endpoint
		nwq  *waiter.Queue
		peer tcpip.FullAddress
	)
	try := func() error {
		var terr tcpip.Error
		nep, nwq, terr = sk.ep().Accept(&peer)
		return errnoOf(terr)
	}
	if fe.nonblocking() {
		err = attempt(fe, try)
	} else {
		rcv, _ := sk.timeouts()
		err = block(fe, sk.wq, waiter.ReadableEvents, rcv, wo, try)
	}
	if err != nil {
		return -1, nil, err
	}
	nsk := newSocket(sk.family, sk.typ, sk.proto, nep, nwq, sk.st, sk.netProto)
	s.inheritFrom(nsk, sk)
	nsk.ss = ssConnected
	return s.fds.installFlags(nsk, flags), sk.sockaddr(peer), nil
}

// Connect connects fd's socket to sa. A blocking TCP connect waits for the
// handshake (bounded by SO_SNDTIMEO, after which it returns EINPROGRESS as
// Linux does); a non-blocking one returns EINPROGRESS and reports its
// outcome through writability and SO_ERROR, or through a later Connect.
func (s *Sockets) Connect(fd int, sa unix.Sockaddr) error {
	return s.connect(fd, sa, waitOpts{})
}

func (s *Sockets) connect(fd int, sa unix.Sockaddr, wo waitOpts) error {
	sa, err := checkSockaddr(sa)
	if err != nil {
		return err
	}
	fe, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	fa, err := sk.fullAddr(sa, forConnect)
	if err != nil {
		return err
	}
	if !sk.stream() {
		if sk.proto != unix.IPPROTO_UDP {
			if cur, terr := sk.ep().GetRemoteAddress(); terr == nil && cur.Addr == fa.Addr {
				// Connecting a ping socket again to the same host:
				// gVisor's ICMP endpoint registers the same identity
				// twice and says EADDRINUSE; only the port changes.
				sk.mu.Lock()
				sk.pingPeerPort = fa.Port
				sk.mu.Unlock()
				return nil
			}
		}
		err := sk.connectErrno(sk.ep().Connect(fa))
		if err == nil && sk.proto != unix.IPPROTO_UDP {
			// A ping socket reports the port it was connected with
			// (inet_dport), which gVisor's ICMP endpoint forgets.
			sk.mu.Lock()
			sk.pingPeerPort = fa.Port
			sk.mu.Unlock()
		}
		return err
	}
	return s.connectStream(fe, sk, fa, wo)
}

// connectErrno is errnoOf with connect's own answer: when no ephemeral
// port is left Linux's connect says EADDRNOTAVAIL (inet_hash_connect),
// where bind and sendto say EAGAIN.
func (sk *socket) connectErrno(terr tcpip.Error) error {
	if _, ok := terr.(*tcpip.ErrNoPortAvailable); ok {
		return unix.EADDRNOTAVAIL
	}
	return sk.asyncErrno(terr)
}

// Shutdown closes one or both directions of fd's connection (SHUT_RD,
// SHUT_WR, SHUT_RDWR).
func (s *Sockets) Shutdown(fd int, how int) error {
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	var flags tcpip.ShutdownFlags
	switch how {
	case unix.SHUT_RD:
		flags = tcpip.ShutdownRead
	case unix.SHUT_WR:
		flags = tcpip.ShutdownWrite
	case unix.SHUT_RDWR:
		flags = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return unix.EINVAL
	}
	if sk.stream() && flags&tcpip.ShutdownRead != 0 && sk.ep().SocketOptions().GetAcceptConn() {
		// inet_shutdown on a listener: tcp_disconnect stops it (the
		// queued connections are reset) and returns it to a closed,
		// unconnected socket, which releases its port unless bind chose
		// it; it may listen again. gVisor keeps the endpoint listening
		// but refusing, so the socket gets a fresh endpoint.
		terr := sk.ep().Shutdown(tcpip.ShutdownRead)
		if err := sk.renew(true); err != nil {
			return err
		}
		return errnoOf(terr)
	}
	if sk.stream() && connecting(sk) {
		// inet_shutdown on SYN_SENT: tcp_disconnect aborts the attempt
		// (ECONNRESET pending), clears the shutdown state and leaves the
		// socket unconnected, free to connect again.
		terr := sk.ep().Shutdown(flags)
		sk.disconnected.Store(true)
		sk.setConnState(ssUnconnected)
		return errnoOf(terr)
	}
	sk.noteShutdown(how)
	if st := tcp.EndpointState(sk.ep().State()); sk.stream() && (st == tcp.StateInitial || st == tcp.StateBound) {
		// Never connected: ENOTCONN, the shutdown recorded above. Not
		// passed to gVisor, which would refuse it too but keep the
		// flags, so that once the socket listened even a SHUT_WR
		// stopped the listener (a ShutdownRead from before).
		sk.wq.Notify(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventRdHUp)
		return unix.ENOTCONN
	}
	if !sk.stream() && !sk.connectedForShutdown() {
		// An unconnected datagram socket is in TCP_CLOSE: ENOTCONN
		// (with the shutdown still recorded), even when bound, where
		// gVisor's ICMP endpoint accepts it. inet_shutdown still wakes
		// every waiter ("Hack to wake up other listeners"): a blocked
		// recvfrom then returns end of file, and pollers see POLLHUP.
		sk.wq.Notify(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventRdHUp)
		return unix.ENOTCONN
	}
	if flags&tcpip.ShutdownWrite != 0 {
		// tcp_send_fin pushes what a cork holds along with the FIN.
		sk.pushCorked()
	}
	if flags&tcpip.ShutdownRead != 0 && sk.connectedForShutdown() {
		// Linux's SHUT_RD on a connection only makes reads return end
		// of file once the queue is empty: data the peer still sends
		// is queued and readable, and SHUT_RDWR with unread data is no
		// reset. gVisor drops such data and resets, so the read side is
		// kept here (reader.stream, streamReadiness) and only the write
		// side goes to gVisor. Connected UDP is the same: datagrams
		// still arrive after SHUT_RD on Linux, gVisor drops them.
		var terr tcpip.Error
		if flags&tcpip.ShutdownWrite != 0 {
			terr = sk.ep().Shutdown(tcpip.ShutdownWrite)
		}
		sk.wq.Notify(waiter.ReadableEvents | waiter.EventRdHUp)
		return errnoOf(terr)
	}
	return errnoOf(sk.ep().Shutdown(flags))
}

// Getsockname returns fd's local address (0.0.0.0:0 or [::]:0 when
// unbound).
func (s *Sockets) Getsockname(fd int) (unix.Sockaddr, error) {
	_, sk, err := s.sock(fd)
	if err != nil {
		return nil, err
	}
	fa, terr := sk.ep().GetLocalAddress()
	if terr != nil {
		return nil, errnoOf(terr)
	}
	if fa.Addr.Len() == 0 && sk.family == unix.AF_INET6 {
		// Bound to ::ffff:0.0.0.0, which Linux reports as given;
		// gVisor keeps it as the IPv4 wildcard.
		sk.mu.Lock()
		b, bound := sk.bound.Addr, sk.hasBound
		sk.mu.Unlock()
		if bound && b.Len() == 16 && isV4Mapped(b.As16()) {
			fa.Addr = b
		}
	}
	return sk.sockaddr(fa), nil
}

// Getpeername returns the address fd is connected to, or ENOTCONN.
func (s *Sockets) Getpeername(fd int) (unix.Sockaddr, error) {
	_, sk, err := s.sock(fd)
	if err != nil {
		return nil, err
	}
	if sk.stream() && !hasPeer(tcp.EndpointState(sk.ep().State())) {
		return nil, unix.ENOTCONN
	}
	fa, terr := sk.ep().GetRemoteAddress()
	if terr != nil {
		return nil, errnoOf(terr)
	}
	if !sk.stream() && sk.proto != unix.IPPROTO_UDP {
		sk.mu.Lock()
		fa.Port = sk.pingPeerPort
		sk.mu.Unlock()
		if fa.Port == 0 {
			// inet_getname: no destination port is no peer, and a
			// ping socket connected with port 0 has none.
			return nil, unix.ENOTCONN
		}
	}
	return sk.sockaddr(fa), nil
}

// connectedForShutdown reports whether sk has a peer, for Shutdown.
func (sk *socket) connectedForShutdown() bool {
	if sk.stream() {
		return hasPeer(tcp.EndpointState(sk.ep().State()))
	}
	_, terr := sk.ep().GetRemoteAddress()
	return terr == nil
}

// finished reports whether sk's TCP connection has ended (Linux's
// TCP_CLOSE after a connection).
func (sk *socket) finished() bool {
	switch tcp.EndpointState(sk.ep().State()) {
	case tcp.StateClose, tcp.StateTimeWait, tcp.StateError:
		return true
	}
	return false
}

// connecting reports whether a TCP handshake sk started is under way.
func connecting(sk *socket) bool {
	switch tcp.EndpointState(sk.ep().State()) {
	case tcp.StateConnecting, tcp.StateSynSent:
		return true
	}
	return false
}

// hasPeer reports whether Linux's inet_getname would name a peer for a
// TCP socket in state st: not in TCP_CLOSE (which a user's socket is in
// once both sides have closed, where gVisor says TIME-WAIT) nor SYN_SENT.
// gVisor keeps the remote address in those states.
func hasPeer(st tcp.EndpointState) bool {
	switch st {
	case tcp.StateEstablished, tcp.StateSynRecv, tcp.StateFinWait1, tcp.StateFinWait2,
		tcp.StateCloseWait, tcp.StateLastAck, tcp.StateClosing:
		return true
	}
	return false
}
