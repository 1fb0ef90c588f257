//go:build linux

package sockapi

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestSetGetsockoptInt sets an option and reads it back, with the errno
// and values Linux 6.x gives (measured with x/sys/unix on this machine).
func TestSetGetsockoptInt(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	const noSet = -1 << 40 // only read the option
	for _, tc := range []struct {
		name             string
		family, typ      int
		level, opt, set  int
		wantSet          error
		wantGet, wantErr any // int and error of GetsockoptInt
	}{
		{"SO_TYPE stream", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_TYPE, noSet, nil, unix.SOCK_STREAM, nil},
		{"SO_TYPE dgram", unix.AF_INET6, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_TYPE, noSet, nil, unix.SOCK_DGRAM, nil},
		{"SO_TYPE read-only", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_TYPE, 1, unix.ENOPROTOOPT, unix.SOCK_STREAM, nil},
		{"SO_DOMAIN", unix.AF_INET6, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_DOMAIN, noSet, nil, unix.AF_INET6, nil},
		{"SO_PROTOCOL tcp", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_PROTOCOL, noSet, nil, unix.IPPROTO_TCP, nil},
		{"SO_PROTOCOL udp", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_PROTOCOL, noSet, nil, unix.IPPROTO_UDP, nil},
		{"SO_ACCEPTCONN", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ACCEPTCONN, noSet, nil, 0, nil},
		{"SO_ACCEPTCONN read-only", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ACCEPTCONN, 1, unix.ENOPROTOOPT, 0, nil},
		{"SO_ERROR", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ERROR, noSet, nil, 0, nil},
		{"SO_ERROR read-only", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ERROR, 1, unix.ENOPROTOOPT, 0, nil},
		{"SO_REUSEADDR", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_REUSEADDR, 7, nil, 1, nil},
		{"SO_REUSEPORT", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, nil, 1, nil},
		{"SO_KEEPALIVE", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, nil, 1, nil},
		{"SO_BROADCAST", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_BROADCAST, 1, nil, 1, nil},
		{"SO_RCVBUF 100000", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVBUF, 100000, nil, 200000, nil},
		{"SO_SNDBUF 100000", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_SNDBUF, 100000, nil, 200000, nil},
		{"SO_SNDBUF 1 udp", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_SNDBUF, 1, nil, 4608, nil},
		{"SO_RCVBUF 100000 udp", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_RCVBUF, 100000, nil, 200000, nil},
		{"SO_RCVLOWAT default", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVLOWAT, noSet, nil, 1, nil},
		{"SO_SNDLOWAT read-only", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_SNDLOWAT, 1, unix.ENOPROTOOPT, 1, nil},
		{"SO_LINGER as int", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_LINGER, 1, unix.EINVAL, 0, nil},
		{"SO_RCVTIMEO as int", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVTIMEO, 1, unix.EINVAL, 0, nil},
		{"SO_DEBUG", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_DEBUG, 5, nil, 1, nil},
		{"SO_OOBINLINE", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1, nil, 1, nil},
		{"SO_PRIORITY", unix.AF_INET6, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_PRIORITY, 5, nil, 5, nil},
		{"TCP_INFO state of a new socket", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_INFO, noSet, nil, 7, nil},
		{"UDP_CORK", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_UDP, unix.UDP_CORK, 1, nil, 1, nil},
		{"SOL_UDP unknown", unix.AF_INET, unix.SOCK_DGRAM, unix.SOL_UDP, 999, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
		{"UDP_CORK on tcp", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_UDP, unix.UDP_CORK, 1, unix.ENOPROTOOPT, -1, unix.EOPNOTSUPP},
		{"SOL_SOCKET unknown", unix.AF_INET, unix.SOCK_STREAM, unix.SOL_SOCKET, 999, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
		{"TCP_NODELAY", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, 5, nil, 1, nil},
		{"TCP_NODELAY default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, noSet, nil, 0, nil},
		{"TCP_NODELAY on udp4", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, unix.ENOPROTOOPT, -1, unix.EOPNOTSUPP},
		{"TCP_NODELAY on udp6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
		{"TCP_KEEPIDLE default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, noSet, nil, 7200, nil},
		{"TCP_KEEPIDLE 0", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 0, unix.EINVAL, 7200, nil},
		{"TCP_KEEPIDLE 32768", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 32768, unix.EINVAL, 7200, nil},
		{"TCP_KEEPIDLE 30", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30, nil, 30, nil},
		{"TCP_KEEPINTVL default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, noSet, nil, 75, nil},
		{"TCP_KEEPINTVL 5", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5, nil, 5, nil},
		{"TCP_KEEPCNT default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, noSet, nil, 9, nil},
		{"TCP_KEEPCNT 128", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 128, unix.EINVAL, 9, nil},
		{"TCP_KEEPCNT 127", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 127, nil, 127, nil},
		{"TCP_MAXSEG default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_MAXSEG, noSet, nil, 536, nil},
		{"TCP_MAXSEG 87", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_MAXSEG, 87, unix.EINVAL, 536, nil},
		{"TCP_MAXSEG 40000", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_MAXSEG, 40000, unix.EINVAL, 536, nil},
		{"TCP_MAXSEG 1000", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1000, nil, 1000, nil},
		{"TCP_USER_TIMEOUT -1", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, -1, unix.EINVAL, 0, nil},
		{"TCP_USER_TIMEOUT 1500", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1500, nil, 1500, nil},
		{"TCP_SYNCNT default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_SYNCNT, noSet, nil, 6, nil},
		{"IPPROTO_TCP unknown", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, 999, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
		{"IP_TTL default", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, noSet, nil, 64, nil},
		{"IP_TTL 5", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_TTL, 5, nil, 5, nil},
		{"IP_TTL 0", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, 0, unix.EINVAL, 64, nil},
		{"IP_TTL 256", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, 256, unix.EINVAL, 64, nil},
		{"IP_TTL -1", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, -1, nil, 64, nil},
		{"IP_TTL -2", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, -2, unix.EINVAL, 64, nil},
		{"IP_TTL on inet6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_TTL, noSet, nil, 64, nil},
		{"IP_TOS tcp 0x1ff", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TOS, 0x1ff, nil, 0xfc, nil},
		{"IP_TOS udp 0x1ff", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_TOS, 0x1ff, nil, 0xff, nil},
		{"IPPROTO_IP unknown", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IP, 999, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
		{"IPV6_V6ONLY on inet", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, unix.ENOPROTOOPT, -1, unix.EOPNOTSUPP},
		{"IPV6_V6ONLY", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, nil, 1, nil},
		{"IPV6_V6ONLY default", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, noSet, nil, 0, nil},
		{"IPV6_UNICAST_HOPS default", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, noSet, nil, 64, nil},
		{"IPV6_UNICAST_HOPS 256", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 256, unix.EINVAL, 64, nil},
		{"IPV6_UNICAST_HOPS -2", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, -2, unix.EINVAL, 64, nil},
		{"IPV6_UNICAST_HOPS 9", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 9, nil, 9, nil},
		{"IPV6_TCLASS default", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, noSet, nil, 0, nil},
		{"unknown level set", unix.AF_INET, unix.SOCK_STREAM, 999, 1, 1, unix.ENOPROTOOPT, -1, unix.EOPNOTSUPP},
		{"unknown level inet6", unix.AF_INET6, unix.SOCK_STREAM, 999, 1, 1, unix.ENOPROTOOPT, -1, unix.ENOPROTOOPT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := mustSocket(t, s, tc.family, tc.typ, 0)
			defer s.Close(fd)
			if tc.set != noSet {
				if err := s.SetsockoptInt(fd, tc.level, tc.opt, tc.set); err != tc.wantSet {
					t.Errorf("SetsockoptInt(%d, %d, %d, %d) = %v, want %v", fd, tc.level, tc.opt, tc.set, err, tc.wantSet)
				}
			}
			v, err := s.GetsockoptInt(fd, tc.level, tc.opt)
			if v != tc.wantGet.(int) || err != tc.wantErr {
				t.Errorf("GetsockoptInt(%d, %d, %d) = %d, %v, want %d, %v", fd, tc.level, tc.opt, v, err, tc.wantGet, tc.wantErr)
			}
		})
	}
}

func TestSockoptStructs(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := s.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 7, Usec: 5}); err != nil {
		t.Fatalf("SetsockoptTimeval(SO_RCVTIMEO) = %v", err)
	}
	if v, err := s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO); v != 7 || err != nil {
		t.Errorf("GetsockoptInt(SO_RCVTIMEO) = %d, %v, want 7 (tv_sec's low half)", v, err)
	}
	if err := s.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 1000000}); err != unix.EDOM {
		t.Errorf("SetsockoptTimeval(tv_usec 1e6) = %v, want EDOM", err)
	}
	if err := s.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 3, Linger: 9}); err != nil {
		t.Fatalf("SetsockoptLinger = %v", err)
	}
	if v, err := s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LINGER); v != 1 || err != nil {
		t.Errorf("GetsockoptInt(SO_LINGER) = %d, %v, want 1 (l_onoff)", v, err)
	}
	if err := s.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, nil); err != unix.EFAULT {
		t.Errorf("SetsockoptLinger(nil) = %v, want EFAULT", err)
	}
	if err := s.SetsockoptInt(99, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != unix.EBADF {
		t.Errorf("SetsockoptInt(bad fd) = %v, want EBADF", err)
	}
}

func TestRcvtimeo(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	if err := s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := s.Read(c, make([]byte, 10))
	if n != -1 || err != unix.EAGAIN {
		t.Errorf("Read(SO_RCVTIMEO 50ms, no data) = %d, %v, want -1, EAGAIN", n, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Read returned after %v, before the 50ms timeout", d)
	}
	l, _ := listener(t, s, unix.AF_INET)
	s.SetsockoptTimeval(l, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 20000})
	if _, _, err := s.Accept(l); err != unix.EAGAIN {
		t.Errorf("Accept(SO_RCVTIMEO 20ms, no peer) = %v, want EAGAIN", err)
	}
	// SO_SNDTIMEO: fill the peer's window, then a write times out with
	// what it managed to send.
	s.SetsockoptInt(srv, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 50000})
	big := make([]byte, 64<<20)
	n, err = s.Write(c, big)
	if err != nil || n <= 0 || n >= len(big) {
		t.Errorf("Write(64 MiB, SO_SNDTIMEO, reader idle) = %d, %v, want a partial count", n, err)
	}
	n, err = s.Write(c, big)
	if n != -1 || err != unix.EAGAIN {
		t.Errorf("Write(full buffer, SO_SNDTIMEO) = %d, %v, want -1, EAGAIN", n, err)
	}
}

func TestLingerZeroSendsRST(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	if err := s.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close(c)
	n, err := s.Read(srv, make([]byte, 10))
	if n != -1 || err != unix.ECONNRESET {
		t.Errorf("Read(peer closed with linger 0) = %d, %v, want -1, ECONNRESET", n, err)
	}
	if n, err := s.Read(srv, make([]byte, 10)); n != 0 || err != nil {
		t.Errorf("Read(after ECONNRESET) = %d, %v, want 0, nil", n, err)
	}
}

func TestFcntl(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	for _, tc := range []struct {
		cmd, arg int
		want     int
		err      error
	}{
		{unix.F_GETFL, 0, unix.O_RDWR, nil},
		{unix.F_GETFD, 0, unix.FD_CLOEXEC, nil},
		{unix.F_SETFD, 0, 0, nil},
		{unix.F_GETFD, 0, 0, nil},
		{unix.F_SETFL, unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC, 0, nil},
		{unix.F_GETFL, 0, unix.O_RDWR | unix.O_APPEND | unix.O_NONBLOCK, nil},
		{unix.F_SETFL, unix.O_DIRECT, -1, unix.EINVAL},
		{9999, 0, -1, unix.EINVAL},
	} {
		if v, err := s.Fcntl(fd, tc.cmd, tc.arg); v != tc.want || err != tc.err {
			t.Errorf("Fcntl(%d, %d, %#x) = %#x, %v, want %#x, %v", fd, tc.cmd, tc.arg, v, err, tc.want, tc.err)
		}
	}
	if _, err := s.Read(fd, make([]byte, 1)); err != unix.ENOTCONN {
		t.Errorf("Read = %v, want ENOTCONN", err)
	}
	l, _ := listener(t, s, unix.AF_INET)
	s.SetNonblock(l, true)
	if _, _, err := s.Accept(l); err != unix.EAGAIN {
		t.Errorf("Accept(O_NONBLOCK via SetNonblock) = %v, want EAGAIN", err)
	}
	if v, _ := s.Fcntl(l, unix.F_GETFL, 0); v != unix.O_RDWR|unix.O_NONBLOCK {
		t.Errorf("Fcntl(F_GETFL) after SetNonblock(true) = %#x, want O_RDWR|O_NONBLOCK", v)
	}
	if _, err := s.Fcntl(77, unix.F_GETFL, 0); err != unix.EBADF {
		t.Errorf("Fcntl(bad fd) = %v, want EBADF", err)
	}
}

// TestRcvlowat: with SO_RCVLOWAT 5 and 3 bytes queued, the socket is not
// readable, a non-blocking read takes the 3, and a blocking read waits
// for 5 (values measured on Linux 6.x).
func TestRcvlowat(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	for _, tc := range []struct{ set, want int }{{0, 1}, {-1, 16777216}, {5, 5}} {
		if err := s.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, tc.set); err != nil {
			t.Fatalf("SetsockoptInt(SO_RCVLOWAT, %d) = %v", tc.set, err)
		}
		if v, err := s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT); v != tc.want || err != nil {
			t.Errorf("GetsockoptInt(SO_RCVLOWAT) after %d = %d, %v, want %d", tc.set, v, err, tc.want)
		}
	}
	s.Write(srv, []byte("abc"))
	time.Sleep(20 * time.Millisecond)
	_, sk, _ := s.sock(c)
	if r := sk.Readiness(allEvents); readyString(r) != "OUT" {
		t.Errorf("Readiness with 3 of SO_RCVLOWAT 5 bytes = %q, want OUT", readyString(r))
	}
	buf := make([]byte, 10)
	if n, err := s.Recv(c, buf, unix.MSG_DONTWAIT); n != 3 || err != nil {
		t.Errorf("Recv(MSG_DONTWAIT) below SO_RCVLOWAT = %d, %v, want 3", n, err)
	}
	s.Write(srv, []byte("abc"))
	go func() { time.Sleep(30 * time.Millisecond); s.Write(srv, []byte("defg")) }()
	start := time.Now()
	if n, err := s.Read(c, buf); n != 7 || err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("Read with SO_RCVLOWAT 5 = %d, %v after %v, want 7 after the second write", n, err, time.Since(start))
	}
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	s.SetsockoptInt(u, unix.SOL_SOCKET, unix.SO_RCVLOWAT, -1)
	if v, _ := s.GetsockoptInt(u, unix.SOL_SOCKET, unix.SO_RCVLOWAT); v != 0x7fffffff {
		t.Errorf("GetsockoptInt(udp SO_RCVLOWAT) after -1 = %d, want INT_MAX", v)
	}
}

// TestTimevalEdges: a negative tv_sec gives up at once (sock_set_timeout
// stores a zero timeout), and tv_usec rounds up to the jiffy, so
// {3, 999999} reads back as 4 seconds (measured, HZ=1000).
func TestTimevalEdges(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, _ := tcpPair(t, s, unix.AF_INET)
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: -1})
	if v, _ := s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO); v != 0 {
		t.Errorf("GetsockoptInt(SO_RCVTIMEO) after {-1, 0} = %d, want 0", v)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Read(c, make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		if err != unix.EAGAIN {
			t.Errorf("Read with SO_RCVTIMEO {-1, 0} = %v, want EAGAIN", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read with SO_RCVTIMEO {-1, 0} blocked")
	}
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3, Usec: 999999})
	if v, _ := s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO); v != 4 {
		t.Errorf("GetsockoptInt(SO_RCVTIMEO) after {3, 999999} = %d, want 4", v)
	}
}

// TestTOSAndTClassApart: IP_TOS and IPV6_TCLASS are two values on Linux,
// one byte in gVisor's TCP endpoint.
func TestTOSAndTClassApart(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	fd := mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0)
	s.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x47)
	s.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, 0x10)
	if v, _ := s.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS); v != 0x44 {
		t.Errorf("GetsockoptInt(IPV6_TCLASS) = %#x, want 0x44 (ECN bits dropped on TCP)", v)
	}
	if v, _ := s.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS); v != 0x10 {
		t.Errorf("GetsockoptInt(IP_TOS) = %#x, want 0x10", v)
	}
}
