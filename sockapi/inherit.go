package sockapi

import (
	"gvisor.dev/gvisor/pkg/tcpip"
)

// inheritFrom gives an accepted socket the options its listener had, as
// Linux's sk_clone_lock copies the listener's struct sock (and
// tcp_create_openreq_child its tcp_sock): TCP_NODELAY, the keepalive
// settings, TCP_USER_TIMEOUT, TCP_MAXSEG, SO_LINGER, SO_REUSEADDR/PORT,
// SO_BROADCAST, IPV6_V6ONLY, IP_TOS/IPV6_TCLASS, IP_TTL/IPV6_UNICAST_HOPS
// and the timeouts. gVisor's accepted endpoints start from the stack
// defaults.
func (sk *socket) inheritFrom(l *socket) {
	copyOptions(l.ep(), sk.ep())
	l.mu.Lock()
	rcv, snd, mss := l.rcvtimeo, l.sndtimeo, l.userMSS
	l.mu.Unlock()
	sk.mu.Lock()
	sk.rcvtimeo, sk.sndtimeo, sk.userMSS = rcv, snd, mss
	sk.mu.Unlock()
	if mss > 0 {
		sk.ep().SetSockOptInt(tcpip.MaxSegOption, mss)
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
		tcpip.KeepaliveCountOption, tcpip.IPv4TOSOption, tcpip.IPv4TTLOption, tcpip.IPv6HopLimitOption,
		tcpip.TCPSynCountOption,
	} {
		if v, err := from.GetSockOptInt(o); err == nil {
			to.SetSockOptInt(o, v)
		}
	}
}
