//go:build linux

package sockapi

import (
	"math"
	"slices"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Socket option limits and defaults, as Linux has them (values measured on
// a 6.x kernel with default sysctls; see docs/sockcore.md).
const (
	rmemMax       = 4194304  // net.core.rmem_max
	tcpRmemMax    = 33554432 // net.ipv4.tcp_rmem's maximum
	wmemMax       = 4194304  // net.core.wmem_max
	sockMinRcvbuf = 2304     // SOCK_MIN_RCVBUF: 2048 + struct sk_buff overhead
	sockMinSndbuf = 4608     // SOCK_MIN_SNDBUF: twice that
	tcpMinMSS     = 88       // TCP_MIN_MSS
	maxTCPWindow  = 32767    // MAX_TCP_WINDOW, TCP_MAXSEG's upper bound
	maxKeepIdle   = 32767    // MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL (seconds)
	maxKeepCnt    = 127      // MAX_TCP_KEEPCNT
	maxSynCnt     = 127      // MAX_TCP_SYNCNT
	inetECNMask   = 3        // INET_ECN_MASK: the ECN bits of IP_TOS/IPV6_TCLASS
)

// SetsockoptInt sets an integer option. Options the stack does not
// implement return the errno Linux gives for an unknown option
// (ENOPROTOOPT), never a silent success; docs/sockcore.md lists them.
func (s *Sockets) SetsockoptInt(fd, level, opt, value int) error {
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	if err := sk.setInt(level, opt, value); err != nil {
		return err
	}
	sk.noteSet(level, opt)
	return nil
}

func (sk *socket) setInt(level, opt, value int) error {
	switch level {
	case unix.SOL_SOCKET:
		return sk.setSocketInt(opt, value)
	case unix.IPPROTO_TCP:
		if !sk.stream() {
			return unix.ENOPROTOOPT // udp_setsockopt hands it to ip_setsockopt
		}
		return sk.setTCPInt(opt, value)
	case unix.IPPROTO_IP:
		return sk.setIPInt(opt, value)
	case unix.IPPROTO_IPV6:
		if sk.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT // ip_setsockopt knows only SOL_IP
		}
		return sk.setIPv6Int(opt, value)
	case unix.SOL_UDP:
		if sk.proto == unix.IPPROTO_UDP {
			return sk.setUDPInt(opt, value)
		}
	}
	return unix.ENOPROTOOPT
}

func (sk *socket) setSocketInt(opt, v int) error {
	ops := sk.ep().SocketOptions()
	switch opt {
	case unix.SO_REUSEADDR:
		ops.SetReuseAddress(v != 0)
	case unix.SO_REUSEPORT:
		ops.SetReusePort(v != 0)
	case unix.SO_KEEPALIVE:
		ops.SetKeepAlive(v != 0)
	case unix.SO_BROADCAST:
		ops.SetBroadcast(v != 0)
	case unix.SO_RCVBUF:
		// sock_setsockopt: min(value as u32, rmem_max), doubled for
		// bookkeeping overhead, at least SOCK_MIN_RCVBUF. gVisor then
		// clamps to the stack's own limits.
		ops.SetReceiveBufferSize(int64(linuxBufSize(v, rmemMax, sockMinRcvbuf)), true)
	case unix.SO_SNDBUF:
		ops.SetSendBufferSize(int64(linuxBufSize(v, wmemMax, sockMinSndbuf)), true)
	case unix.SO_RCVLOWAT:
		// sock_setsockopt: negative means INT_MAX, 0 means 1;
		// tcp_set_rcvlowat caps it at half the receive buffer once a
		// program has set SO_RCVBUF (SOCK_RCVBUF_LOCK, inherited by
		// accepted sockets), else at half of tcp_rmem's maximum.
		// gVisor stores but ignores it, so sockapi applies it itself
		// (reader.stream, streamReadiness).
		if v < 0 {
			v = 0x7fffffff
		}
		sk.mu.Lock()
		if sk.stream() {
			if slices.Contains(sk.setKeys, unix.SOL_SOCKET<<16|unix.SO_RCVBUF) {
				v = min(v, int(ops.GetReceiveBufferSize()>>1))
			} else {
				v = min(v, tcpRmemMax/2)
			}
		}
		sk.rcvlowat = max(v, 1)
		sk.mu.Unlock()
	case unix.SO_DEBUG, unix.SO_OOBINLINE, unix.SO_PRIORITY:
		// Kept and reported, with no effect on a userspace stack as on
		// Linux: SO_DEBUG traces nothing in TCP, no urgent data is kept
		// (so nothing to inline), and there are no queueing disciplines
		// to read the priority. Linux needs CAP_NET_ADMIN for SO_DEBUG
		// on and for priorities above 6; a userspace stack has no
		// capabilities to check, so it answers as for root.
		if opt != unix.SO_PRIORITY {
			v = boolInt(v != 0)
		}
		sk.mu.Lock()
		if sk.stored == nil {
			sk.stored = map[int]int{}
		}
		sk.stored[opt] = v
		sk.mu.Unlock()
	case unix.SO_LINGER, unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
		// An int is shorter than struct linger / struct timeval.
		return unix.EINVAL
	default:
		// Read-only options (SO_TYPE, SO_ERROR, SO_ACCEPTCONN,
		// SO_DOMAIN, SO_PROTOCOL, SO_SNDLOWAT) and unknown ones.
		return unix.ENOPROTOOPT
	}
	return nil
}

// linuxBufSize is the buffer size Linux's SO_RCVBUF/SO_SNDBUF store for v.
// rcvLowat is SO_RCVLOWAT, at least 1.
func (sk *socket) rcvLowat() int {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return max(sk.rcvlowat, 1)
}

func linuxBufSize(v, max, min int) int {
	u := int64(uint32(v))
	if u > int64(max) {
		u = int64(max)
	}
	if u*2 < int64(min) {
		return min
	}
	return int(u * 2)
}

// GetsockoptInt reads an integer option. As on Linux, an option wider than
// an int (SO_LINGER, SO_RCVTIMEO, SO_SNDTIMEO) yields its first four
// bytes: l_onoff, or the low half of tv_sec.
func (s *Sockets) GetsockoptInt(fd, level, opt int) (int, error) {
	_, sk, err := s.sock(fd)
	if err != nil {
		return -1, err
	}
	return s.getInt(sk, level, opt)
}

func (s *Sockets) getInt(sk *socket, level, opt int) (int, error) {
	switch level {
	case unix.SOL_SOCKET:
		return sk.getSocketInt(opt)
	case unix.IPPROTO_TCP:
		if sk.stream() {
			return sk.getTCPInt(opt)
		}
	case unix.IPPROTO_IP:
		return s.getIPInt(sk, opt)
	case unix.IPPROTO_IPV6:
		if sk.family == unix.AF_INET6 {
			return s.getIPv6Int(sk, opt)
		}
	case unix.SOL_UDP:
		if sk.proto == unix.IPPROTO_UDP {
			if opt != unix.UDP_CORK {
				return -1, unix.ENOPROTOOPT
			}
			sk.mu.Lock()
			defer sk.mu.Unlock()
			return boolInt(sk.udpCork), nil
		}
	}
	// An unknown level reaches ip_getsockopt, which says EOPNOTSUPP, or
	// ipv6_getsockopt, which says ENOPROTOOPT.
	if sk.family == unix.AF_INET6 {
		return -1, unix.ENOPROTOOPT
	}
	return -1, unix.EOPNOTSUPP
}

func (sk *socket) getSocketInt(opt int) (int, error) {
	ops := sk.ep().SocketOptions()
	switch opt {
	case unix.SO_TYPE:
		return sk.typ, nil
	case unix.SO_DOMAIN:
		return sk.family, nil
	case unix.SO_PROTOCOL:
		return sk.proto, nil
	case unix.SO_ACCEPTCONN:
		// A listener shut down for reading is no longer listening on
		// Linux (inet_shutdown disconnects it); gVisor keeps the flag.
		return boolInt(ops.GetAcceptConn() && sk.shut.Load()&shutRD == 0), nil
	case unix.SO_ERROR:
		// LastError clears the pending error, so it is reported once;
		// asyncErrno clears the second copy gVisor's TCP keeps.
		if e, ok := sk.asyncErrno(sk.takeError()).(unix.Errno); ok {
			return int(e), nil
		}
		return 0, nil
	case unix.SO_REUSEADDR:
		return boolInt(ops.GetReuseAddress()), nil
	case unix.SO_REUSEPORT:
		return boolInt(ops.GetReusePort()), nil
	case unix.SO_KEEPALIVE:
		return boolInt(ops.GetKeepAlive()), nil
	case unix.SO_BROADCAST:
		return boolInt(ops.GetBroadcast()), nil
	case unix.SO_RCVBUF:
		return int(min(ops.GetReceiveBufferSize(), 0x7fffffff)), nil
	case unix.SO_SNDBUF:
		return int(min(ops.GetSendBufferSize(), 0x7fffffff)), nil
	case unix.SO_RCVLOWAT:
		return sk.rcvLowat(), nil
	case unix.SO_SNDLOWAT:
		return 1, nil // fixed at 1 on Linux
	case unix.SO_DEBUG, unix.SO_OOBINLINE, unix.SO_PRIORITY:
		sk.mu.Lock()
		defer sk.mu.Unlock()
		return sk.stored[opt], nil
	case unix.SO_LINGER:
		return boolInt(ops.GetLinger().Enabled), nil
	case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
		rcv, snd := sk.timeouts()
		if opt == unix.SO_SNDTIMEO {
			rcv = snd
		}
		return int(int32(rcv / time.Second)), nil
	}
	return -1, unix.ENOPROTOOPT
}

func (sk *socket) intOpt(o tcpip.SockOptInt) (int, error) {
	v, terr := sk.ep().GetSockOptInt(o)
	if terr != nil {
		return -1, errnoOf(terr)
	}
	return v, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetsockoptLinger sets SO_LINGER. With l.Onoff set and l.Linger 0, Close
// resets the connection (RST) instead of closing it gracefully; with a
// positive l.Linger, Close waits up to that many seconds for the close to
// finish.
func (s *Sockets) SetsockoptLinger(fd, level, opt int, l *unix.Linger) error {
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	if level != unix.SOL_SOCKET || opt != unix.SO_LINGER {
		// A struct linger is a valid length for an int option: let the
		// option code answer (e.g. SO_REUSEADDR takes l_onoff).
		if l == nil {
			return unix.EFAULT
		}
		return s.SetsockoptInt(fd, level, opt, int(l.Onoff))
	}
	if l == nil {
		return unix.EFAULT
	}
	lo := tcpip.LingerOption{Enabled: l.Onoff != 0}
	if l.Linger > 0 {
		lo.Timeout = time.Duration(l.Linger) * time.Second
	}
	sk.ep().SocketOptions().SetLinger(lo)
	sk.noteSet(level, opt)
	return nil
}

// SetsockoptTimeval sets SO_RCVTIMEO or SO_SNDTIMEO, which bound blocking
// receives (and Accept) and sends (and Connect); {0, 0} blocks forever.
// tv_usec outside [0, 1000000) is EDOM, as sock_set_timeout says.
func (s *Sockets) SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error {
	_, sk, err := s.sock(fd)
	if err != nil {
		return err
	}
	if tv == nil {
		return unix.EFAULT
	}
	if level == unix.SOL_SOCKET && opt == unix.SO_LINGER {
		// A timeval is long enough for a struct linger, which Linux
		// reads from its first eight bytes: tv_sec's two halves.
		return s.SetsockoptLinger(fd, level, opt, &unix.Linger{Onoff: int32(tv.Sec), Linger: int32(tv.Sec >> 32)})
	}
	if level != unix.SOL_SOCKET || (opt != unix.SO_RCVTIMEO && opt != unix.SO_SNDTIMEO) {
		// A timeval is long enough for an int option; Linux reads its
		// first four bytes, the low half of tv_sec.
		return s.SetsockoptInt(fd, level, opt, int(int32(tv.Sec)))
	}
	if tv.Usec < 0 || tv.Usec >= 1000000 {
		return unix.EDOM
	}
	d := time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
	// Linux keeps timeouts in jiffies, rounding tv_usec up
	// (DIV_ROUND_UP in sock_set_timeout); with HZ=1000, to the
	// millisecond, so {3, 999999} reads back as 4 seconds.
	d = (d + time.Millisecond - 1).Truncate(time.Millisecond)
	if tv.Sec >= math.MaxInt64/int64(time.Second)-1 {
		// Beyond what a Duration holds (292 years), where the sum
		// above wraps around (18446744074 s to 0.29 s): no timeout,
		// as sock_set_timeout makes of any timeout too long for it.
		d = 0
	}
	if tv.Sec < 0 {
		// sock_set_timeout stores a zero timeout for a negative
		// tv_sec: the call gives up at once (EAGAIN) without being
		// non-blocking. block treats any positive timeout as a bound,
		// so the shortest one stands for it.
		d = time.Nanosecond
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if opt == unix.SO_RCVTIMEO {
		sk.rcvtimeo = d
	} else {
		sk.sndtimeo = d
	}
	return nil
}
