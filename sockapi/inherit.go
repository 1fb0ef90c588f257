//go:build linux

package sockapi

import (
	"slices"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// inheritFrom gives an accepted socket the options its listener had, as
// Linux's sk_clone_lock copies the listener's struct sock (and
// tcp_create_openreq_child its tcp_sock). gVisor's accepted endpoints
// start from the stack defaults, so every option set on the listener is
// copied, through the same getter and setter a program would use; options
// never set need no copy, which keeps Accept cheap for listeners with
// default options.
func (s *Sockets) inheritFrom(sk, l *socket) {
	l.mu.Lock()
	keys := append([]int(nil), l.setKeys...)
	rcv, snd := l.rcvtimeo, l.sndtimeo
	l.mu.Unlock()
	sk.mu.Lock()
	sk.rcvtimeo, sk.sndtimeo = rcv, snd
	sk.setKeys = keys
	sk.mu.Unlock()
	from, to := l.ep().SocketOptions(), sk.ep().SocketOptions()
	for _, k := range keys {
		level, opt := k>>16, k&0xffff
		switch {
		case level == unix.SOL_SOCKET && opt == unix.SO_LINGER:
			to.SetLinger(from.GetLinger())
		case level == unix.SOL_SOCKET && opt == unix.SO_RCVBUF:
			to.SetReceiveBufferSize(from.GetReceiveBufferSize(), true) // already doubled
		case level == unix.SOL_SOCKET && opt == unix.SO_SNDBUF:
			to.SetSendBufferSize(from.GetSendBufferSize(), true)
		case level == unix.IPPROTO_IPV6 && opt == unix.IPV6_V6ONLY:
			to.SetV6Only(from.GetV6Only()) // the setter refuses bound sockets
		default:
			if v, err := s.getInt(l, level, opt); err == nil {
				sk.setInt(level, opt, v)
			}
		}
	}
}

// noteSet records that a program set an option on sk, for inheritFrom.
func (sk *socket) noteSet(level, opt int) {
	k := level<<16 | opt
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if !slices.Contains(sk.setKeys, k) {
		sk.setKeys = append(sk.setKeys, k)
	}
}

// copyOptions copies the options a program sets from one TCP endpoint to
// another (all of them but the buffer sizes, which auto-tuning moves).
func copyOptions(from, to tcpip.Endpoint) {
	fo, too := from.SocketOptions(), to.SocketOptions()
	too.SetDelayOption(fo.GetDelayOption())
	too.SetKeepAlive(fo.GetKeepAlive())
	too.SetLinger(fo.GetLinger())
	too.SetReuseAddress(fo.GetReuseAddress())
	too.SetReusePort(fo.GetReusePort())
	too.SetBroadcast(fo.GetBroadcast())
	too.SetV6Only(fo.GetV6Only())
	too.SetCorkOption(fo.GetCorkOption())
	var idle tcpip.KeepaliveIdleOption
	if from.GetSockOpt(&idle) == nil {
		to.SetSockOpt(&idle)
	}
	var intvl tcpip.KeepaliveIntervalOption
	if from.GetSockOpt(&intvl) == nil {
		to.SetSockOpt(&intvl)
	}
	var ut tcpip.TCPUserTimeoutOption
	if from.GetSockOpt(&ut) == nil {
		to.SetSockOpt(&ut)
	}
	for _, o := range []tcpip.SockOptInt{
		tcpip.KeepaliveCountOption, tcpip.IPv4TTLOption, tcpip.IPv6HopLimitOption,
		tcpip.TCPSynCountOption,
	} {
		if v, err := from.GetSockOptInt(o); err == nil {
			to.SetSockOptInt(o, v)
		}
	}
}
