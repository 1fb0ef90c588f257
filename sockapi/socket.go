//go:build linux

package sockapi

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// socket is a file backed by one gVisor transport endpoint.
type socket struct {
	family int // AF_INET or AF_INET6 (SO_DOMAIN)
	typ    int // SOCK_STREAM or SOCK_DGRAM (SO_TYPE)
	proto  int // IPPROTO_TCP, _UDP, _ICMP or _ICMPV6 (SO_PROTOCOL)
	// epp holds the endpoint. Connect replaces it when a socket whose
	// connection attempt failed connects again (see renew).
	epp      atomic.Pointer[tcpip.Endpoint]
	wq       *waiter.Queue // shared by every endpoint the socket has
	st       *gstack.Stack // the stack the endpoint lives on
	netProto tcpip.NetworkProtocolNumber

	shut        atomic.Uint32 // shutRD|shutWR from Shutdown, for Readiness
	errReported atomic.Bool   // a TCP asynchronous error has been returned (Readiness drops POLLERR)
	// disconnected: shutdown(2) aborted a connect in progress, which
	// Linux turns into an unconnected, closed socket (tcp_disconnect).
	disconnected atomic.Bool

	errMu   sync.Mutex
	pending tcpip.Error // guarded by errMu: an error taken from ep early, for SO_ERROR

	mu       sync.Mutex    // guards the fields below
	rcvtimeo time.Duration // SO_RCVTIMEO; 0 blocks forever
	sndtimeo time.Duration // SO_SNDTIMEO; 0 blocks forever
	userMSS  int           // TCP_MAXSEG as set; 0 if never
	rcvlowat int           // SO_RCVLOWAT as set; 0 means 1
	ipTOS    int           // IP_TOS of a stream socket (see setTOS)
	tclass   int           // IPV6_TCLASS of a stream socket
	// Multicast TTL, hop limit and loop, which Linux keeps per family
	// (inet->mc_ttl, mc_loop; ipv6 mcast_hops, mc_loop) and gVisor once
	// per endpoint: sockapi keeps both and hands gVisor the one for the
	// socket's family (see setMulticast). The TTLs are stored minus one
	// and the loops inverted, so the zero values are Linux's defaults.
	mcTTL, mcHops        int
	noMCLoop4, noMCLoop6 bool
	// pingPeerPort is the port a ping socket was connected with.
	pingPeerPort uint16
	// A UDP datagram being gathered from sends with MSG_MORE (cork).
	corked  bool
	corkBuf []byte
	corkTo  *tcpip.FullAddress
	udpCork bool // UDP_CORK: every send is corked until it is cleared
	// stored holds options kept for programs to read back, with no
	// effect here: SO_DEBUG, SO_OOBINLINE, SO_PRIORITY.
	stored map[int]int
	// setKeys lists the options (level<<16 | opt) a program has set, in
	// order, for accepted sockets to inherit.
	setKeys  []int
	ss       int // ssUnconnected, ssConnecting or ssConnected (stream sockets)
	bound    tcpip.FullAddress
	hasBound bool // Bind succeeded with bound; renew binds again

	epMu     sync.Mutex // serializes renew and release
	released bool       // guarded by epMu: release has run
}

var _ file = (*socket)(nil)

// Limits of socket(2)'s arguments, from include/linux/net.h and in.h.
const (
	sockTypeMask = 0xf // SOCK_TYPE_MASK
	sockMax      = 11  // SOCK_MAX: type values at or above it are EINVAL
	ipprotoMax   = 263 // IPPROTO_MAX: protocols at or above it are EINVAL
)

// Socket creates an endpoint for TCP (SOCK_STREAM), UDP (SOCK_DGRAM) or
// ICMP echo (SOCK_DGRAM with IPPROTO_ICMP/IPPROTO_ICMPV6, Linux's "ping"
// sockets) and returns its descriptor. The checks follow the order of
// Linux's __sys_socket, __sock_create and inet_create/inet6_create, so a
// call with several bad arguments gets the errno Linux gives.
func (s *Sockets) Socket(domain, typ, proto int) (int, error) {
	flags := typ &^ sockTypeMask
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return -1, unix.EINVAL
	}
	typ &= sockTypeMask
	var netProto tcpip.NetworkProtocolNumber
	switch domain {
	case unix.AF_INET:
		netProto = ipv4.ProtocolNumber
	case unix.AF_INET6:
		netProto = ipv6.ProtocolNumber
	default:
		return -1, unix.EAFNOSUPPORT
	}
	if typ >= sockMax {
		return -1, unix.EINVAL
	}
	if proto < 0 || proto >= ipprotoMax {
		return -1, unix.EINVAL
	}
	transProto, proto, err := transportFor(domain, typ, proto)
	if err != nil {
		return -1, err
	}
	wq := new(waiter.Queue)
	ep, terr := s.st.GVisor().NewEndpoint(transProto, netProto, wq)
	if terr != nil {
		return -1, errnoOf(terr)
	}
	if typ == unix.SOCK_DGRAM {
		noDontFragment(ep)
	}
	sk := newSocket(domain, typ, proto, ep, wq, s.st.GVisor(), netProto)
	return s.fds.installFlags(sk, flags), nil
}

// noDontFragment leaves DF off a datagram endpoint's IPv4 packets.
// gVisor's default (PMTUDiscoveryWant) sets DF on every datagram and on
// the fragments of big ones, but it has no path MTU feedback for datagram
// endpoints (transport/internal/network, gvisor.dev/issue/5919): a router
// whose next hop is smaller drops them all, for good. Linux sends a
// datagram bigger than the path MTU without DF (ip_sk_ignore_df) and
// learns the path MTU from the router's ICMP for smaller ones; without
// that feedback, leaving DF off is what lets routers fragment them.
func noDontFragment(ep tcpip.Endpoint) {
	_ = ep.SetSockOptInt(tcpip.MTUDiscoverOption, int(tcpip.PMTUDiscoveryDont))
}

// transportFor picks the gVisor transport for a socket type and protocol
// and returns the protocol SO_PROTOCOL reports, as inet_create matches its
// protocol switch: a type with entries (stream, datagram, raw) but no
// matching protocol is EPROTONOSUPPORT, any other type ESOCKTNOSUPPORT.
func transportFor(domain, typ, proto int) (tcpip.TransportProtocolNumber, int, error) {
	switch typ {
	case unix.SOCK_STREAM:
		if proto == 0 || proto == unix.IPPROTO_TCP {
			return tcp.ProtocolNumber, unix.IPPROTO_TCP, nil
		}
	case unix.SOCK_DGRAM:
		switch {
		case proto == 0 || proto == unix.IPPROTO_UDP:
			return udp.ProtocolNumber, unix.IPPROTO_UDP, nil
		case proto == unix.IPPROTO_ICMP && domain == unix.AF_INET:
			return icmp.ProtocolNumber4, proto, nil
		case proto == unix.IPPROTO_ICMPV6 && domain == unix.AF_INET6:
			return icmp.ProtocolNumber6, proto, nil
		}
	case unix.SOCK_RAW:
		// The stack has no raw endpoints; answer as Linux answers a
		// process without CAP_NET_RAW.
		return 0, 0, unix.EPERM
	default:
		return 0, 0, unix.ESOCKTNOSUPPORT
	}
	return 0, 0, unix.EPROTONOSUPPORT
}

func newSocket(family, typ, proto int, ep tcpip.Endpoint, wq *waiter.Queue, st *gstack.Stack, netProto tcpip.NetworkProtocolNumber) *socket {
	sk := &socket{family: family, typ: typ, proto: proto, wq: wq, st: st, netProto: netProto}
	sk.epp.Store(&ep)
	return sk
}

// ep returns the socket's current endpoint.
func (sk *socket) ep() tcpip.Endpoint { return *sk.epp.Load() }

// sock returns fd's entry and socket: EBADF for a closed descriptor,
// ENOTSOCK for a descriptor that is not a socket (an epoll instance).
func (s *Sockets) sock(fd int) (*fdEntry, *socket, error) {
	fe, err := s.fds.get(fd)
	if err != nil {
		return nil, nil, err
	}
	sk, ok := fe.f.(*socket)
	if !ok {
		return nil, nil, unix.ENOTSOCK
	}
	return fe, sk, nil
}

func (sk *socket) stream() bool { return sk.typ == unix.SOCK_STREAM }

func (sk *socket) timeouts() (rcv, snd time.Duration) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return sk.rcvtimeo, sk.sndtimeo
}

// EventRegister implements file.
func (sk *socket) EventRegister(e *waiter.Entry) error {
	sk.wq.EventRegister(e)
	return nil
}

// EventUnregister implements file.
func (sk *socket) EventUnregister(e *waiter.Entry) { sk.wq.EventUnregister(e) }

// release implements file: it closes the endpoint. With SO_LINGER on and
// a positive timeout it waits, as Linux's close(2) does, until the
// connection has finished closing or the timeout passes, except when
// exiting (CloseAll): Linux does not linger for a process that exits
// (inet_release, PF_EXITING), and the connection finishes in the
// background. With a zero timeout gVisor's Close resets the connection
// (RST), as Linux does, exiting or not.
func (sk *socket) release(exiting bool) error {
	sk.epMu.Lock()
	sk.released = true
	ep := sk.ep()
	sk.epMu.Unlock()
	l := ep.SocketOptions().GetLinger()
	if sk.stream() && !(l.Enabled && l.Timeout <= 0) {
		// tcp_close's FIN pushes what a cork holds. Not when the close
		// resets instead: SO_LINGER {1, 0}, or unread data (RFC 2525
		// 2.17), where Linux drops the unsent queue.
		if unread, terr := ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption); terr == nil && unread == 0 {
			sk.pushCorked()
		}
	}
	if !sk.stream() || !l.Enabled || l.Timeout <= 0 || exiting {
		ep.Close()
		return nil
	}
	e, hup := waiter.NewChannelEntry(waiter.EventHUp)
	sk.wq.EventRegister(&e)
	defer sk.wq.EventUnregister(&e)
	ep.Close()
	t := time.NewTimer(l.Timeout)
	defer t.Stop()
	for ep.Readiness(waiter.EventHUp) == 0 {
		select {
		case <-hup:
		case <-t.C:
			return nil
		}
	}
	return nil
}

// Close closes fd. Calls blocked on fd in other goroutines return EBADF.
func (s *Sockets) Close(fd int) error {
	fe, err := s.fds.remove(fd)
	if err != nil {
		return err
	}
	return fe.f.release(false)
}

// CloseAll closes every descriptor of s, as if Close were called on each,
// and wakes every blocked call, name lookups included (they fail with
// EAI_AGAIN). It does not close the stack, which belongs
// to the caller of New. (It cannot be named Close: API's Close takes a
// descriptor.)
func (s *Sockets) CloseAll() error {
	s.endLookups()
	var first error
	for _, fe := range s.fds.removeAll() {
		if err := fe.f.release(true); err != nil && first == nil {
			first = err
		}
	}
	return first
}
