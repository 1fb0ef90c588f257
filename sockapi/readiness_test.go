//go:build linux

package sockapi

import (
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

func readyString(e waiter.EventMask) string {
	var s []string
	for _, b := range []struct {
		v waiter.EventMask
		n string
	}{{waiter.EventIn, "IN"}, {waiter.EventOut, "OUT"}, {waiter.EventErr, "ERR"}, {waiter.EventHUp, "HUP"}, {waiter.EventRdHUp, "RDHUP"}} {
		if e&b.v != 0 {
			s = append(s, b.n)
		}
	}
	return strings.Join(s, " ")
}

// TestReadiness compares the events each socket state reports with what
// poll(2) returned for the same state on Linux 6.x (POLLIN|POLLOUT|
// POLLRDHUP requested; POLLERR and POLLHUP always reported).
func TestReadiness(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	settle := func() { time.Sleep(20 * time.Millisecond) }
	ev := func(fd int) string {
		_, sk, err := s.sock(fd)
		if err != nil {
			t.Fatal(err)
		}
		return readyString(sk.Readiness(allEvents))
	}
	type step struct {
		name string
		fd   func() int
		want string
	}
	var c, srv int
	steps := []step{
		{"fresh tcp", func() int { return mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0) }, "OUT HUP"},
		{"listen empty", func() int { l, _ := listener(t, s, unix.AF_INET); return l }, ""},
		{"listen pending", func() int {
			l, addr := listener(t, s, unix.AF_INET)
			s.Connect(mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0), addr)
			settle()
			return l
		}, "IN"},
		{"listen after SHUT_RD", func() int {
			l, _ := listener(t, s, unix.AF_INET)
			if err := s.Shutdown(l, unix.SHUT_RD); err != nil {
				t.Errorf("Shutdown(listener, SHUT_RD) = %v, want nil", err)
			}
			if _, _, err := s.Accept(l); err != unix.EINVAL {
				t.Errorf("Accept(after SHUT_RD) = %v, want EINVAL", err)
			}
			return l
		}, "OUT HUP"},
		{"connected idle", func() int { c, srv = tcpPair(t, s, unix.AF_INET); return c }, "OUT"},
		{"connected data", func() int { s.Write(srv, []byte("x")); settle(); return c }, "IN OUT"},
		{"peer SHUT_WR", func() int { s.Shutdown(srv, unix.SHUT_WR); settle(); return c }, "IN OUT RDHUP"},
		{"peer SHUT_WR drained", func() int { s.Read(c, make([]byte, 10)); return c }, "IN OUT RDHUP"},
		{"both FINs", func() int { s.Shutdown(c, unix.SHUT_WR); settle(); return c }, "IN OUT HUP RDHUP"},
		{"both FINs, other side", func() int { return srv }, "IN OUT HUP RDHUP"},
		{"own SHUT_WR", func() int { c, srv = tcpPair(t, s, unix.AF_INET); s.Shutdown(c, unix.SHUT_WR); settle(); return c }, "OUT"},
		{"own SHUT_RD", func() int { c, srv = tcpPair(t, s, unix.AF_INET); s.Shutdown(c, unix.SHUT_RD); settle(); return c }, "IN OUT RDHUP"},
		{"own SHUT_RDWR", func() int { s.Shutdown(c, unix.SHUT_RDWR); settle(); return c }, "IN OUT HUP RDHUP"},
		{"peer RST", func() int {
			c, srv = tcpPair(t, s, unix.AF_INET)
			s.SetsockoptLinger(srv, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			s.Close(srv)
			settle()
			return c
		}, "IN OUT ERR HUP RDHUP"},
		{"peer RST, reported", func() int { s.Read(c, make([]byte, 1)); return c }, "IN OUT HUP RDHUP"},
		{"peer close", func() int { c, srv = tcpPair(t, s, unix.AF_INET); s.Close(srv); settle(); return c }, "IN OUT RDHUP"},
		{"refused", func() int {
			r := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			s.Connect(r, loop4(1))
			settle()
			c = r
			return r
		}, "IN OUT ERR HUP RDHUP"},
		{"refused, SO_ERROR read", func() int { s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR); return c }, "IN OUT HUP RDHUP"},
		{"fresh udp", func() int { return mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0) }, "OUT"},
		{"udp data", func() int {
			u, addr := boundUDP(t, s, unix.AF_INET)
			s.Sendto(u, []byte("x"), 0, addr)
			settle()
			return u
		}, "IN OUT"},
		{"udp refused", func() int {
			u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
			s.Connect(u, loop4(1))
			s.Write(u, []byte("x"))
			settle()
			c = u
			return u
		}, "OUT ERR"},
		{"udp refused, SO_ERROR read", func() int { s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR); return c }, "OUT"},
		{"udp SHUT_RD", func() int { s.Shutdown(c, unix.SHUT_RD); return c }, "IN OUT RDHUP"},
		{"udp SHUT_RDWR", func() int { s.Shutdown(c, unix.SHUT_WR); return c }, "IN OUT HUP RDHUP"},
		{"udp unconnected SHUT_RDWR", func() int {
			u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
			s.Shutdown(u, unix.SHUT_RDWR)
			return u
		}, "IN OUT HUP RDHUP"},
	}
	for _, st := range steps {
		fd := st.fd()
		if got := ev(fd); got != st.want {
			t.Errorf("%s: Readiness = %q, want %q", st.name, got, st.want)
		}
	}
}
