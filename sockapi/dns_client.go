//go:build linux

package sockapi

import (
	"context"
	"encoding/binary"
	"errors"
	"github.com/ustack/ustack/stack"
	"io"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// dnsClient sends queries to the configured nameservers over a userspace
// stack, through gonet's UDP and TCP endpoints: no host socket is used.
// Each exchange opens its own endpoint and closes it before returning, so
// the client owns nothing between calls and starts no goroutines.
type dnsClient struct {
	s   *gstack.Stack
	cfg ResolverConfig
}

// Defaults of resolv(5).
const (
	defaultNdots    = 1
	defaultTimeout  = 5 * time.Second
	defaultAttempts = 2
)

// hErrno is the outcome of a DNS lookup, as glibc's resolver reports it
// in h_errno; the search logic and the EAI_* mapping depend on it.
type hErrno int

const (
	hOK         hErrno = iota
	hNotFound          // NXDOMAIN: HOST_NOT_FOUND
	hNoData            // the name exists without records of the type
	hTryAgain          // SERVFAIL/REFUSED/NOTIMP from every server, or no answer at all
	hNoRecovery        // FORMERR or another rcode, or a name that cannot be queried
)

// queryResult is the outcome of one query across the nameservers.
type queryResult struct {
	reply    dnsReply
	status   hErrno
	servfail bool // hTryAgain, and the last answer received was SERVFAIL
}

// rotation is where "options rotate" starts the next query; glibc keeps
// it per process too.
var rotation atomic.Uint32

// errNoServers marks a lookup that needs DNS without nameservers.
var errNoServers = errors.New("dns: no nameservers configured")

// query asks the nameservers for name and type. Each of Attempts rounds
// tries every server in turn (from a rotating start with Rotate), as
// glibc's __res_context_send does; a server that times out, refuses the
// connection, or answers SERVFAIL, NOTIMP or REFUSED passes the query to
// the next one.
func (c *dnsClient) query(ctx context.Context, name string, qtype dnsmessage.Type) queryResult {
	qn, err := dnsmessage.NewName(name)
	if err != nil {
		return queryResult{status: hNoRecovery}
	}
	q := dnsmessage.Question{Name: qn, Type: qtype, Class: dnsmessage.ClassINET}
	if _, err := newQuery(0, q); err != nil {
		return queryResult{status: hNoRecovery} // e.g. a label over 63 bytes
	}
	servers := c.serverOrder()
	res := queryResult{status: hTryAgain}
	for try := 0; try < orDefault(c.cfg.Attempts, defaultAttempts); try++ {
		for _, ns := range servers {
			if ctx.Err() != nil {
				return res // cancelled: EAI_AGAIN, as a lookup that ran out of time
			}
			r, err := c.exchange(ctx, ns, q)
			if err != nil {
				continue
			}
			switch r.rcode {
			case dnsmessage.RCodeServerFailure, dnsmessage.RCodeNotImplemented, dnsmessage.RCodeRefused:
				// glibc's res_search goes on to the next search domain
				// only when the last answer received was SERVFAIL.
				res.servfail = r.rcode == dnsmessage.RCodeServerFailure
				continue
			}
			return resultOf(r)
		}
	}
	return res
}

// resultOf classifies a reply the way glibc's res_query sets h_errno.
func resultOf(r dnsReply) queryResult {
	res := queryResult{reply: r}
	switch {
	case r.rcode == dnsmessage.RCodeNameError:
		res.status = hNotFound
	case r.rcode != dnsmessage.RCodeSuccess:
		res.status = hNoRecovery
	case len(r.addrs) == 0 && r.ptr == "":
		res.status = hNoData
	}
	return res
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// serverOrder is the nameservers in the order to try them.
func (c *dnsClient) serverOrder() []netip.AddrPort {
	ns := c.cfg.Nameservers
	if !c.cfg.Rotate || len(ns) < 2 {
		return ns
	}
	start := int(rotation.Add(1)-1) % len(ns)
	return append(append([]netip.AddrPort{}, ns[start:]...), ns[:start]...)
}

// exchange sends q to ns over UDP, and again over TCP if the UDP answer
// was truncated.
func (c *dnsClient) exchange(ctx context.Context, ns netip.AddrPort, q dnsmessage.Question) (dnsReply, error) {
	id := uint16(rand.Uint32())
	msg, err := newQuery(id, q)
	if err != nil {
		return dnsReply{}, err
	}
	deadline := time.Now().Add(orDefault(c.cfg.Timeout, defaultTimeout))
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r, err := c.exchangeUDP(ctx, ns, msg, id, q, deadline)
	if err == nil && r.truncated {
		r, err = c.exchangeTCP(ctx, ns, msg, id, q, deadline)
	}
	return r, err
}

// fullAddr converts a nameserver address for gVisor.
func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	return tcpip.FullAddress{Addr: stack.Address(ap.Addr()), Port: ap.Port()}, stack.Protocol(ap.Addr())
}

// remote is the gVisor address of nameserver ns; an IPv6 zone (a NIC
// name or number, as in "fe80::1%eth2") picks the NIC to send from.
func (c *dnsClient) remote(ns netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	fa, proto := fullAddr(ns)
	if z := ns.Addr().Zone(); z != "" {
		b := userBackend{s: c.s}
		if id, ok := b.interfaceIndex(z); ok {
			fa.NIC = tcpip.NICID(id)
		} else if n, err := strconv.ParseUint(z, 10, 31); err == nil {
			fa.NIC = tcpip.NICID(n)
		}
	}
	return fa, proto
}

// udpBufs holds receive buffers big enough for any datagram, so that an
// answer longer than 512 bytes from a server that ignores the limit is
// still read whole.
var udpBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// exchangeUDP sends msg from a connected UDP endpoint (so only ns can
// answer) and waits until deadline for a datagram that answers it,
// ignoring any that do not.
func (c *dnsClient) exchangeUDP(ctx context.Context, ns netip.AddrPort, msg []byte, id uint16, q dnsmessage.Question, deadline time.Time) (dnsReply, error) {
	fa, proto := c.remote(ns)
	conn, err := gonet.DialUDP(c.s, nil, &fa, proto)
	if err != nil {
		return dnsReply{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return dnsReply{}, err
	}
	// gonet's deadline timers outlive Close; clearing the deadline stops
	// them, else each exchange's stay (with their channels) until the
	// query timeout passes, answer or not.
	defer conn.SetDeadline(time.Time{})
	// Cancelling ctx (a Dialer's DialContext) ends the wait at once, as
	// the deadline would.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(msg); err != nil {
		return dnsReply{}, err
	}
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	buf := *bp
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return dnsReply{}, err // timeout, or ICMP port unreachable
		}
		if r, err := parseReply(buf[:n], id, q); err == nil {
			return r, nil
		}
	}
}

// exchangeTCP sends msg over TCP with its two-byte length prefix (RFC
// 1035 section 4.2.2) and reads one answer, which must match.
func (c *dnsClient) exchangeTCP(ctx context.Context, ns netip.AddrPort, msg []byte, id uint16, q dnsmessage.Question, deadline time.Time) (dnsReply, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	fa, proto := c.remote(ns)
	conn, err := gonet.DialContextTCP(ctx, c.s, fa, proto)
	if err != nil {
		return dnsReply{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return dnsReply{}, err
	}
	defer conn.SetDeadline(time.Time{}) // as in exchangeUDP
	// As in exchangeUDP: cancelling ctx ends the exchange at once, not
	// only the connect.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	if _, err := conn.Write(append(out, msg...)); err != nil {
		return dnsReply{}, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return dnsReply{}, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return dnsReply{}, err
	}
	r, err := parseReply(buf, id, q)
	if err == nil && r.truncated {
		return dnsReply{}, errBadReply // TC over TCP: nothing more to try
	}
	return r, err
}
