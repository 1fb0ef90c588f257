//go:build linux

package sockapi

import (
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// More differential scenarios, written while fixing the userspace core
// (sockcore): each one found a difference from Linux that is now fixed.
// They run like TestDiff's, through the same recorder, against the kernel
// and the userspace stack.

func TestDiffSockcore(t *testing.T) {
	leakcheck.Check(t)
	pingOK, pingWhy := pingAllowed(t)
	for _, sc := range sockcoreScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if sc.ping && !pingOK {
				t.Skip(pingWhy)
			}
			want := runOn(t, kernelImpl, sc)
			if userspaceImpl == nil {
				return
			}
			if got := runOn(t, *userspaceImpl, sc); !equal(want, got) {
				t.Errorf("transcripts differ:\n%s", sideBySide(want, got))
			}
		})
	}
}

func sockcoreScenarios() []scenario {
	var out []scenario
	out = append(out, both("sockcore/udp-reconnect", func(r *rec, f fam) {
		a, aaddr := r.udp(f)
		_, baddr := r.udp(f)
		c, caddr := r.udp(f)
		r.Connect(a, baddr)
		r.Connect(a, caddr)
		r.Getpeername(a)
		r.Sendto(c, []byte("from c"), 0, aaddr)
		r.waitFor(a, unix.POLLIN)
		r.Recvfrom(a, 10, unix.MSG_DONTWAIT)
	})...)
	out = append(out, both("sockcore/shutdown-connecting", func(r *rec, f fam) {
		// A full accept queue keeps b's connect in progress.
		ln := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(ln, f.lo(0))
		r.Listen(ln, 0)
		addr := r.Getsockname(ln)
		a := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(a, addr)
		r.waitFor(ln, unix.POLLIN)
		b := r.Socket(f.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		r.Connect(b, addr)
		r.Shutdown(b, unix.SHUT_WR)
		r.Poll(50, pq{b, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
		r.GetInt(b, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Connect(b, addr)
	})...)
	out = append(out, both("sockcore/opts-misc", func(r *rec, f fam) {
		t := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		u := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.SetInt(u, unix.SOL_UDP, unix.UDP_CORK, 1)
		r.GetInt(u, unix.SOL_UDP, unix.UDP_CORK)
		r.SetInt(t, unix.SOL_SOCKET, unix.SO_DEBUG, 0)
		r.SetInt(t, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
		r.GetInt(t, unix.SOL_SOCKET, unix.SO_OOBINLINE)
		r.GetInt(t, unix.SOL_SOCKET, unix.SO_PRIORITY)
		r.GetInt(t, unix.IPPROTO_TCP, unix.TCP_INFO)
		r.SetInt(t, unix.IPPROTO_TCP, unix.TCP_SYNCNT, 0)
		r.SetInt(t, unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3)
		r.GetInt(t, unix.IPPROTO_TCP, unix.TCP_SYNCNT)
	})...)
	out = append(out, both("sockcore/write-after-shutdown-rd", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Shutdown(s, unix.SHUT_RD)
		r.Write(c, []byte("late"))
		settle()
		r.Read(s, 10)
		r.Read(s, 10)
	})...)
	out = append(out, both("sockcore/udp-shutdown-rd", func(r *rec, f fam) {
		a, aaddr := r.udp(f)
		b, baddr := r.udp(f)
		r.Connect(a, baddr)
		r.Shutdown(a, unix.SHUT_RD)
		r.Recvfrom(a, 10, 0)
		r.Recvfrom(a, 10, unix.MSG_DONTWAIT)
		r.Sendto(b, []byte("after"), 0, aaddr)
		settle()
		r.Recvfrom(a, 10, 0)
	})...)
	out = append(out, both("sockcore/udp-msg-more", func(r *rec, f fam) {
		a, aaddr := r.udp(f)
		u := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Send(u, []byte("ab"), unix.MSG_MORE)
		r.Sendto(u, []byte("ab"), unix.MSG_MORE, aaddr)
		r.Sendto(u, []byte("cd"), 0, aaddr)
		r.waitFor(a, unix.POLLIN)
		r.Recvfrom(a, 10, 0)
	})...)
	out = append(out, both("sockcore/negative-and-rounded-timeouts", func(r *rec, f fam) {
		_, c, _ := r.pair(f)
		r.SetTimevalRaw(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: -1})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
		r.Read(c, 4)
		r.SetTimevalRaw(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: 3, Usec: 999999})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	})...)
	out = append(out, scenario{name: "sockcore/ping-connected-port", ping: true, run: func(r *rec) {
		p := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		r.Connect(p, sa4(127, 0, 0, 1, 77))
		r.Getpeername(p)
		r.Connect(p, sa4(127, 0, 0, 1, 0))
		r.Getpeername(p)
	}})
	out = append(out, sc("sockcore/v6-scopes", func(r *rec) {
		a := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
		r.Bind(a, &unix.SockaddrInet6{Addr: [16]byte{0: 0xfe, 1: 0x80, 15: 1}})
		b := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
		r.Bind(b, &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff}})
		r.Getsockname(b)
		c := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
		r.Connect(c, &unix.SockaddrInet6{Addr: [16]byte{0: 0xfe, 1: 0x80, 15: 1}, Port: 9})
		d := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
		r.Bind(d, &unix.SockaddrInet6{Addr: [16]byte{15: 1}, ZoneId: 99})
	}))
	out = append(out, both("sockcore/bind-after-connection-ended", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Close(s)
		r.waitFor(c, unix.POLLRDHUP)
		r.Shutdown(c, unix.SHUT_WR)
		r.waitFor(c, unix.POLLHUP)
		settle()
		r.Bind(c, f.lo(0))
		r.Bind(c, f.lo(0))
	})...)
	out = append(out, both("sockcore/relisten-smaller", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		for i := 0; i < 3; i++ {
			c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
		}
		r.Listen(ln, 1)
		r.Accept(ln)
	})...)
	out = append(out, both("sockcore/rcvlowat", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 5)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		r.Write(s, []byte("abc"))
		settle()
		r.Poll(0, pq{c, unix.POLLIN})
		r.Recv(c, 10, unix.MSG_DONTWAIT)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, -1)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	})...)
	out = append(out, both("sockcore/relisten-after-shut-rd", func(r *rec, f fam) {
		// SHUT_RD stops a listener and releases its (ephemeral) port;
		// listening again takes a new one.
		ln, addr := r.listener(f)
		r.Shutdown(ln, unix.SHUT_RD)
		r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		r.Listen(ln, 4)
		r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		r.Getsockname(ln)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		r.SetNonblock(ln, true)
		r.Accept(ln)
	})...)
	out = append(out, scenario{name: "sockcore/ping-shutdown-unconnected", ping: true, run: func(r *rec) {
		p := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		r.Bind(p, sa4(127, 0, 0, 1, 0))
		r.Shutdown(p, unix.SHUT_RD)
		r.Recvfrom(p, 10, unix.MSG_DONTWAIT)
	}})
	out = append(out, both("sockcore/struct-option-mixups", func(r *rec, f fam) {
		// A timeval given for SO_LINGER is read as a struct linger, and
		// for an int option as its first four bytes.
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.SetTimevalRaw(c, unix.SOL_SOCKET, unix.SO_LINGER, unix.Timeval{Sec: 1 | 7<<32})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_LINGER)
		r.SetTimevalRaw(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, unix.Timeval{Sec: 1})
		r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	})...)
	return out
}
