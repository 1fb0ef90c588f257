//go:build linux

package sockapi

import (
	"bytes"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Options of the protocol levels: IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6
// and SOL_UDP. options.go dispatches to them and holds SOL_SOCKET.

func (sk *socket) setUDPInt(opt, v int) error {
	if opt != unix.UDP_CORK {
		return unix.ENOPROTOOPT // UDP_SEGMENT, UDP_GRO, UDP_ENCAP: not here
	}
	sk.mu.Lock()
	sk.udpCork = v != 0
	payload, to, flush := sk.corkBuf, sk.corkTo, v == 0 && sk.corked
	if flush {
		sk.corked, sk.corkBuf, sk.corkTo = false, nil, nil
	}
	sk.mu.Unlock()
	if flush {
		// Uncorking pushes the pending datagram (udp_push_pending_frames);
		// setsockopt reports no error from it.
		var rd bytes.Reader
		rd.Reset(payload)
		sk.ep().Write(&rd, tcpip.WriteOptions{To: to})
	}
	return nil
}

// pushCorked sends what TCP_CORK holds on a stream socket and leaves the
// cork set for later writes, as Linux's pushes with TCP_NAGLE_OFF or
// TCP_NAGLE_PUSH do (TCP_NODELAY, tcp_send_fin). gVisor sends corked
// data only when the cork is cleared, or after its 200 ms timer.
func (sk *socket) pushCorked() {
	if !sk.stream() {
		return
	}
	ops := sk.ep().SocketOptions()
	if ops.GetCorkOption() {
		ops.SetCorkOption(false)
		ops.SetCorkOption(true)
	}
}

func (sk *socket) setTCPInt(opt, v int) error {
	ops := sk.ep().SocketOptions()
	switch opt {
	case unix.TCP_NODELAY:
		ops.SetDelayOption(v == 0)
		if v != 0 {
			// Linux pushes what is held whenever TCP_NODELAY is set,
			// cork or not (tcp_push_pending_frames in
			// __tcp_sock_set_nodelay).
			sk.pushCorked()
		}
	case unix.TCP_CORK:
		ops.SetCorkOption(v != 0)
	case unix.TCP_QUICKACK:
		ops.SetQuickAck(v != 0)
	case unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL:
		if v < 1 || v > maxKeepIdle {
			return unix.EINVAL
		}
		d := time.Duration(v) * time.Second
		if opt == unix.TCP_KEEPIDLE {
			o := tcpip.KeepaliveIdleOption(d)
			return errnoOf(sk.ep().SetSockOpt(&o))
		}
		o := tcpip.KeepaliveIntervalOption(d)
		return errnoOf(sk.ep().SetSockOpt(&o))
	case unix.TCP_KEEPCNT:
		if v < 1 || v > maxKeepCnt {
			return unix.EINVAL
		}
		return errnoOf(sk.ep().SetSockOptInt(tcpip.KeepaliveCountOption, v))
	case unix.TCP_SYNCNT:
		if v < 1 || v > maxSynCnt {
			return unix.EINVAL
		}
		return errnoOf(sk.ep().SetSockOptInt(tcpip.TCPSynCountOption, v))
	case unix.TCP_MAXSEG:
		if v == 0 {
			return nil // Linux clears user_mss; gVisor has none set to clear unless one was
		}
		if v < tcpMinMSS || v > maxTCPWindow {
			return unix.EINVAL
		}
		sk.mu.Lock()
		sk.userMSS = v
		sk.mu.Unlock()
		return errnoOf(sk.ep().SetSockOptInt(tcpip.MaxSegOption, v))
	case unix.TCP_USER_TIMEOUT:
		if v < 0 {
			return unix.EINVAL
		}
		o := tcpip.TCPUserTimeoutOption(time.Duration(v) * time.Millisecond)
		return errnoOf(sk.ep().SetSockOpt(&o))
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (sk *socket) setIPInt(opt, v int) error {
	switch opt {
	case unix.IP_TTL:
		// do_ip_setsockopt: -1 restores the default, else 1..255.
		if v == -1 {
			v = 0 // gVisor's "default"
		} else if v < 1 || v > 255 {
			return unix.EINVAL
		}
		return errnoOf(sk.ep().SetSockOptInt(tcpip.IPv4TTLOption, v))
	case unix.IP_TOS:
		return sk.setTOS(false, sk.tos(v))
	case unix.IP_MULTICAST_TTL:
		// do_ip_setsockopt: not on stream sockets; -1 is the default 1.
		if sk.stream() {
			return unix.EINVAL
		}
		if v == -1 {
			v = 1
		}
		if v < 0 || v > 255 {
			return unix.EINVAL
		}
		return sk.setMulticast(unix.AF_INET, func() { sk.mcTTL = v - 1 })
	case unix.IP_MULTICAST_LOOP:
		return sk.setMulticast(unix.AF_INET, func() { sk.noMCLoop4 = v == 0 })
	}
	return unix.ENOPROTOOPT
}

// setMulticast records a multicast option of family fam with set (under
// sk.mu) and, for a datagram socket of that family, passes the family's
// TTL and loop on to the endpoint, which sends with them.
func (sk *socket) setMulticast(fam int, set func()) error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	set()
	if sk.stream() || sk.family != fam {
		return nil
	}
	ttl, noLoop := sk.mcTTL, sk.noMCLoop4
	if fam == unix.AF_INET6 {
		ttl, noLoop = sk.mcHops, sk.noMCLoop6
	}
	sk.ep().SocketOptions().SetMulticastLoop(!noLoop)
	return errnoOf(sk.ep().SetSockOptInt(tcpip.MulticastTTLOption, ttl+1))
}

// multicastInt reads what setMulticast recorded.
func (sk *socket) multicastInt(get func() int) int {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return get()
}

// setTOS sets IP_TOS (v6 false) or IPV6_TCLASS (v6 true). gVisor's TCP
// endpoint keeps one byte for both, where Linux keeps two, each for the
// packets of its family; so for stream sockets sockapi keeps both and
// gives gVisor the one for the family the socket sends with (IP_TOS on
// AF_INET sockets and v4-mapped connections, IPV6_TCLASS otherwise).
func (sk *socket) setTOS(v6 bool, v int) error {
	if !sk.stream() {
		o := tcpip.IPv4TOSOption
		if v6 {
			o = tcpip.IPv6TrafficClassOption
		}
		return errnoOf(sk.ep().SetSockOptInt(o, v))
	}
	sk.mu.Lock()
	if v6 {
		sk.tclass = v
	} else {
		sk.ipTOS = v
	}
	sk.mu.Unlock()
	return sk.applyTOS()
}

func (sk *socket) getTOS(v6 bool) (int, error) {
	if !sk.stream() {
		o := tcpip.IPv4TOSOption
		if v6 {
			o = tcpip.IPv6TrafficClassOption
		}
		return sk.intOpt(o)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if v6 {
		return sk.tclass, nil
	}
	return sk.ipTOS, nil
}

func (sk *socket) tosDiffer() bool {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return sk.ipTOS != sk.tclass
}

// applyTOS gives a stream socket's gVisor endpoint the TOS byte of the
// family it sends with.
func (sk *socket) applyTOS() error {
	v4 := sk.family == unix.AF_INET
	if !v4 {
		if fa, terr := sk.ep().GetRemoteAddress(); terr == nil && fa.Addr.Len() == 4 {
			v4 = true // connected to a v4-mapped address
		}
	}
	return sk.applyTOSFor(v4)
}

// applyTOSFor gives gVisor IP_TOS if v4, else IPV6_TCLASS.
func (sk *socket) applyTOSFor(v4 bool) error {
	sk.mu.Lock()
	v := sk.tclass
	if v4 {
		v = sk.ipTOS
	}
	sk.mu.Unlock()
	return errnoOf(sk.ep().SetSockOptInt(tcpip.IPv4TOSOption, v))
}

// tos is the IP_TOS / IPV6_TCLASS byte Linux stores for v: the low byte,
// with the ECN bits left alone on stream sockets (__ip_sock_set_tos),
// where they belong to TCP.
func (sk *socket) tos(v int) int {
	b := v & 0xff
	if sk.stream() {
		b &^= inetECNMask
	}
	return b
}

func (sk *socket) setIPv6Int(opt, v int) error {
	switch opt {
	case unix.IPV6_V6ONLY:
		// do_ipv6_setsockopt: only before the socket has a port.
		if fa, terr := sk.ep().GetLocalAddress(); terr == nil && fa.Port != 0 {
			return unix.EINVAL
		}
		sk.ep().SocketOptions().SetV6Only(v != 0)
		return nil
	case unix.IPV6_UNICAST_HOPS:
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		return errnoOf(sk.ep().SetSockOptInt(tcpip.IPv6HopLimitOption, v))
	case unix.IPV6_TCLASS:
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		if v == -1 {
			v = 0
		}
		return sk.setTOS(true, sk.tos(v))
	case unix.IPV6_MULTICAST_HOPS:
		// do_ipv6_setsockopt: ENOPROTOOPT on stream sockets; -1 is 1.
		if sk.stream() {
			return unix.ENOPROTOOPT
		}
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		if v == -1 {
			v = 1
		}
		return sk.setMulticast(unix.AF_INET6, func() { sk.mcHops = v - 1 })
	case unix.IPV6_MULTICAST_LOOP:
		if v != 0 && v != 1 {
			return unix.EINVAL
		}
		return sk.setMulticast(unix.AF_INET6, func() { sk.noMCLoop6 = v == 0 })
	}
	return unix.ENOPROTOOPT
}

func (sk *socket) getTCPInt(opt int) (int, error) {
	ops := sk.ep().SocketOptions()
	switch opt {
	case unix.TCP_NODELAY:
		return boolInt(!ops.GetDelayOption()), nil
	case unix.TCP_CORK:
		return boolInt(ops.GetCorkOption()), nil
	case unix.TCP_QUICKACK:
		return boolInt(ops.GetQuickAck()), nil
	case unix.TCP_KEEPIDLE:
		var o tcpip.KeepaliveIdleOption
		if terr := sk.ep().GetSockOpt(&o); terr != nil {
			return -1, errnoOf(terr)
		}
		return int(time.Duration(o) / time.Second), nil
	case unix.TCP_KEEPINTVL:
		var o tcpip.KeepaliveIntervalOption
		if terr := sk.ep().GetSockOpt(&o); terr != nil {
			return -1, errnoOf(terr)
		}
		return int(time.Duration(o) / time.Second), nil
	case unix.TCP_KEEPCNT:
		return sk.intOpt(tcpip.KeepaliveCountOption)
	case unix.TCP_SYNCNT:
		return sk.intOpt(tcpip.TCPSynCountOption)
	case unix.TCP_MAXSEG:
		return sk.maxSeg()
	case unix.TCP_USER_TIMEOUT:
		var o tcpip.TCPUserTimeoutOption
		if terr := sk.ep().GetSockOpt(&o); terr != nil {
			return -1, errnoOf(terr)
		}
		return int(time.Duration(o) / time.Millisecond), nil
	case unix.TCP_INFO:
		// struct tcp_info read into an int: its first four bytes,
		// tcpi_state and three counters this stack does not keep (0).
		return linuxTCPState(tcp.EndpointState(sk.ep().State())), nil
	}
	return -1, unix.ENOPROTOOPT
}

// maxSeg answers TCP_MAXSEG. gVisor reports the 536-byte default or the
// user's value; Linux reports the connection's MSS once connected, which
// here is the route's MTU less the TCP header and the timestamp option
// both stacks send (20 + 12 bytes).
func (sk *socket) maxSeg() (int, error) {
	v, err := sk.intOpt(tcpip.MaxSegOption)
	if err != nil || !hasPeer(tcp.EndpointState(sk.ep().State())) {
		return v, err
	}
	local, terr := sk.ep().GetLocalAddress()
	if terr != nil {
		return v, nil
	}
	remote, terr := sk.ep().GetRemoteAddress()
	if terr != nil {
		return v, nil
	}
	proto := ipv4.ProtocolNumber
	if remote.Addr.Len() == 16 {
		proto = ipv6.ProtocolNumber
	}
	r, terr := sk.st.FindRoute(local.NIC, local.Addr, remote.Addr, proto, false)
	if terr != nil {
		return v, nil
	}
	defer r.Release()
	const tsOptionSize = 12 // timestamps option, padded to 4 bytes
	mss := int(r.MTU()) - header.TCPMinimumSize - tsOptionSize
	sk.mu.Lock()
	u := sk.userMSS
	sk.mu.Unlock()
	if u > 0 && u < mss {
		mss = u
	}
	return mss, nil
}

// linuxTCPState is the TCP_* state number Linux's tcp_info reports for a
// socket gVisor has in state st. A socket the program still holds is in
// TCP_CLOSE where gVisor says TIME-WAIT or error (tcp_time_wait calls
// tcp_done on it).
func linuxTCPState(st tcp.EndpointState) int {
	switch st {
	case tcp.StateEstablished:
		return 1
	case tcp.StateSynSent, tcp.StateConnecting:
		return 2
	case tcp.StateSynRecv:
		return 3
	case tcp.StateFinWait1:
		return 4
	case tcp.StateFinWait2:
		return 5
	case tcp.StateCloseWait:
		return 8
	case tcp.StateLastAck:
		return 9
	case tcp.StateListen:
		return 10
	case tcp.StateClosing:
		return 11
	}
	return 7 // TCP_CLOSE
}

func (s *Sockets) getIPInt(sk *socket, opt int) (int, error) {
	switch opt {
	case unix.IP_TTL:
		v, err := sk.intOpt(tcpip.IPv4TTLOption)
		if err == nil && v <= 0 {
			v = s.defaultTTL()
		}
		return v, err
	case unix.IP_TOS:
		return sk.getTOS(false)
	case unix.IP_MULTICAST_TTL:
		return sk.multicastInt(func() int { return sk.mcTTL + 1 }), nil
	case unix.IP_MULTICAST_LOOP:
		return sk.multicastInt(func() int { return boolInt(!sk.noMCLoop4) }), nil
	}
	return -1, unix.ENOPROTOOPT
}

func (s *Sockets) getIPv6Int(sk *socket, opt int) (int, error) {
	switch opt {
	case unix.IPV6_V6ONLY:
		return boolInt(sk.ep().SocketOptions().GetV6Only()), nil
	case unix.IPV6_UNICAST_HOPS:
		v, err := sk.intOpt(tcpip.IPv6HopLimitOption)
		if err == nil && v < 0 {
			v = s.defaultTTL()
		}
		return v, err
	case unix.IPV6_TCLASS:
		return sk.getTOS(true)
	case unix.IPV6_MULTICAST_HOPS:
		return sk.multicastInt(func() int { return sk.mcHops + 1 }), nil
	case unix.IPV6_MULTICAST_LOOP:
		return sk.multicastInt(func() int { return boolInt(!sk.noMCLoop6) }), nil
	}
	return -1, unix.ENOPROTOOPT
}

// defaultTTL is the stack's default TTL and hop limit, which Linux reports
// for IP_TTL and IPV6_UNICAST_HOPS when the socket has none of its own.
func (s *Sockets) defaultTTL() int {
	var ttl tcpip.DefaultTTLOption
	if terr := s.st.GVisor().NetworkProtocolOption(ipv4.ProtocolNumber, &ttl); terr != nil {
		return 64 // Linux's ip_default_ttl
	}
	return int(ttl)
}
