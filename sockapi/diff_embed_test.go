//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Scenarios from the sixth pass (branch qa6): epoll as an event loop
// that nests instances, re-arms one-shot entries and reuses descriptor
// numbers uses it, where no earlier scenario looked.

// nestedUDP makes an outer epoll instance watching an inner one for
// outerEv, the inner watching UDP socket b for innerEv, and a UDP socket
// a to send to b from (b's address is ba), in the order every nested
// scenario below starts with.
func nestedUDP(r *rec, innerEv, outerEv uint32) (outer, inner, a, b int, ba unix.Sockaddr) {
	outer = r.EpollCreate1(0)
	inner = r.EpollCreate1(0)
	a, _ = r.udp(v4)
	b, ba = r.udp(v4)
	r.EpollCtl(inner, unix.EPOLL_CTL_ADD, b, innerEv)
	r.EpollCtl(outer, unix.EPOLL_CTL_ADD, inner, outerEv)
	return outer, inner, a, b, ba
}

func embedScenarios() []scenario {
	in := uint32(unix.EPOLLIN)
	return []scenario{
		sc("epoll/nested-inner-edge-consumed", func(r *rec) {
			// The outer instance sees the inner one readable while the
			// inner has an event; once epoll_wait on the inner takes an
			// edge-triggered event, the inner is no longer readable.
			outer, inner, a, b, ba := nestedUDP(r, in|unix.EPOLLET, in)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(outer, 4, 5000)
			r.EpollWait(outer, 4, 0)
			r.EpollWait(inner, 4, 0)
			r.EpollWait(outer, 4, 0)
			r.Poll(0, pq{inner, unix.POLLIN | unix.POLLOUT})
			r.Recv(b, 4, 0)
			r.Sendto(a, []byte("y"), 0, ba)
			r.EpollWait(outer, 4, 5000)
		}),
		sc("epoll/nested-inner-oneshot-disarmed", func(r *rec) {
			outer, inner, a, b, ba := nestedUDP(r, in|unix.EPOLLONESHOT, in|unix.EPOLLET)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(outer, 4, 5000)
			r.EpollWait(outer, 4, 0)
			r.EpollWait(inner, 4, 0)
			r.Sendto(a, []byte("y"), 0, ba)
			settle()
			r.EpollWait(outer, 4, 0)
			r.Poll(0, pq{inner, unix.POLLIN})
			r.EpollCtl(inner, unix.EPOLL_CTL_MOD, b, in)
			r.EpollWait(outer, 4, 5000)
			r.EpollWait(inner, 4, 0)
		}),
		sc("epoll/nested-inner-closed", func(r *rec) {
			// Closing an inner instance takes it out of the outer set;
			// its number, reused by a socket, is not reported.
			outer, inner, a, _, ba := nestedUDP(r, in, in)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(outer, 4, 5000)
			r.Close(inner)
			r.EpollWait(outer, 4, 0)
			n := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0) // inner's number
			r.EpollWait(outer, 4, 0)
			r.EpollCtl(outer, unix.EPOLL_CTL_MOD, n, unix.EPOLLOUT)
			r.EpollCtl(outer, unix.EPOLL_CTL_DEL, n, 0)
		}),
		sc("epoll/nested-socket-closed-in-inner", func(r *rec) {
			outer, inner, a, b, ba := nestedUDP(r, in, in)
			r.EpollCtl(outer, unix.EPOLL_CTL_ADD, b, in)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(outer, 4, 5000)
			r.Close(b)
			r.EpollWait(outer, 4, 0)
			r.EpollWait(inner, 4, 0)
		}),
		sc("epoll/nested-pollout-never", func(r *rec) {
			// An epoll instance is never writable, and watching it for
			// EPOLLOUT reports nothing, even with events ready.
			outer := r.EpollCreate1(0)
			inner := r.EpollCreate1(0)
			b, _ := r.udp(v4)
			r.EpollCtl(inner, unix.EPOLL_CTL_ADD, b, unix.EPOLLOUT)
			r.EpollCtl(outer, unix.EPOLL_CTL_ADD, inner, unix.EPOLLOUT)
			r.EpollWait(outer, 4, 0)
			r.EpollCtl(outer, unix.EPOLL_CTL_MOD, inner, unix.EPOLLOUT|unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLPRI)
			r.EpollWait(outer, 4, 0)
			r.Select([]int{inner}, []int{inner}, []int{inner}, &unix.Timeval{})
		}),
		sc("epoll/oneshot-disarmed-del-readd", func(r *rec) {
			// A disarmed one-shot entry is still registered: ADD is
			// EEXIST, DEL works, and ADD after DEL reports at once.
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLONESHOT)
			r.Sendto(a, []byte("1"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, b, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, b, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLONESHOT|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/oneshot-mod-to-out-and-et", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLOUT|unix.EPOLLONESHOT)
			r.EpollWait(ep, 4, 0)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, in|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
			r.Sendto(a, []byte("1"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, 0)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, unix.EPOLLONESHOT)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/exclusive-reports-as-usual", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLEXCLUSIVE)
			r.EpollWait(ep, 4, 0)
			r.Sendto(a, []byte("1"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, b, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLEXCLUSIVE|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/reused-number-new-registration", func(r *rec) {
			// Close removes the registration; a new socket that takes the
			// number is reported only under its own registration, with
			// its own data.
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLET)
			r.Close(b)
			n := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(n, ba)
			r.Sendto(a, []byte("x"), 0, ba)
			r.waitFor(n, unix.POLLIN)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, n, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, n, in)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/listener-oneshot-rearm", func(r *rec) {
			// A one-shot listener stays quiet once reported, even with a
			// connection pending, until EPOLL_CTL_MOD re-arms it. (The
			// second connect waits for the listener to be readable: on
			// ustack the handshake ends a moment after connect returns.)
			ep := r.EpollCreate1(0)
			ln, addr := r.listener(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, in|unix.EPOLLONESHOT)
			c1 := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c1, addr)
			r.EpollWait(ep, 4, 5000)
			r.Accept(ln)
			r.EpollWait(ep, 4, 0)
			c2 := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c2, addr)
			r.waitFor(ln, unix.POLLIN)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, ln, in|unix.EPOLLONESHOT)
			r.EpollWait(ep, 4, 0)
			r.Accept(ln)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, ln, in|unix.EPOLLONESHOT)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/et-udp-second-datagram-unread", func(r *rec) {
			// Linux wakes an edge-triggered waiter for every datagram
			// queued (sock_def_readable), also when earlier ones are
			// still unread; an event loop that reads one datagram per
			// event relies on it. (Known failure: gVisor notifies only
			// when the queue was empty.)
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLET)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.Sendto(a, []byte("y"), 0, ba)
			r.EpollWait(ep, 4, 200)
		}),
		sc("epoll/et-tcp-second-segment-unread", func(r *rec) {
			// The same on a stream: each segment is a new edge.
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, in|unix.EPOLLET)
			r.Write(c, []byte("x"))
			r.EpollWait(ep, 4, 5000)
			r.Write(c, []byte("y"))
			r.EpollWait(ep, 4, 1000)
		}),
	}
}
