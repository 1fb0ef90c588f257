//go:build linux

package sockapi

import (
	"time"

	"golang.org/x/sys/unix"
)

// Readiness and data-path scenarios a program ported from Linux leans
// on: edge-triggered re-arming on a stream, RDHUP through epoll, a
// listener with several pending connections, recv flags across
// several segments, corking, and names after connecting from a
// wildcard-bound socket.

func dataReadinessScenarios() []scenario {
	out := both("epoll/edge-triggered-stream-rearm", func(r *rec, f fam) {
		// After a partial read an edge-triggered waiter hears nothing
		// more until new data arrives, then hears it once.
		_, c, s := r.pair(f)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLET)
		r.Write(c, []byte("0123456789"))
		r.EpollWait(ep, 4, 5000)
		r.Recv(s, 4, 0)
		r.EpollWait(ep, 4, 0)
		r.Write(c, []byte("ab"))
		r.EpollWait(ep, 4, 5000)
		r.EpollWait(ep, 4, 0)
		r.Recv(s, 16, 0)
		r.Shutdown(c, unix.SHUT_WR)
		r.EpollWait(ep, 4, 5000)
		r.EpollWait(ep, 4, 0)
		r.Recv(s, 16, 0)
	})
	out = append(out, both("epoll/rdhup-after-peer-shut-wr", func(r *rec, f fam) {
		// Level-triggered: IN|RDHUP with data pending, still IN|RDHUP
		// once drained (EOF is readable), OUT throughout; HUP only
		// after this side shuts down too.
		_, c, s := r.pair(f)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP)
		r.Write(c, []byte("last words"))
		r.Shutdown(c, unix.SHUT_WR)
		r.waitFor(s, unix.POLLRDHUP)
		r.EpollWait(ep, 4, 0)
		r.Read(s, 64)
		r.EpollWait(ep, 4, 0)
		r.Read(s, 64)
		r.Write(s, []byte("reply"))
		r.Shutdown(s, unix.SHUT_WR)
		r.waitFor(s, unix.POLLHUP)
		r.EpollWait(ep, 4, 0)
		r.Read(c, 64)
		r.Read(c, 64)
	})...)
	out = append(out, both("epoll/oneshot-stream-rearm-with-data", func(r *rec, f fam) {
		// EPOLL_CTL_MOD re-arms a fired one-shot registration; data
		// already waiting is reported at once.
		_, c, s := r.pair(f)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, unix.EPOLLIN|unix.EPOLLONESHOT)
		r.Write(c, []byte("one"))
		r.EpollWait(ep, 4, 5000)
		r.Write(c, []byte("two"))
		settle()
		r.EpollWait(ep, 4, 0)
		r.EpollCtl(ep, unix.EPOLL_CTL_MOD, s, unix.EPOLLIN|unix.EPOLLONESHOT|unix.EPOLLET)
		r.EpollWait(ep, 4, 0)
		r.EpollWait(ep, 4, 0)
		r.Read(s, 16)
		r.EpollCtl(ep, unix.EPOLL_CTL_MOD, s, unix.EPOLLOUT)
		r.EpollWait(ep, 4, 0)
	})...)
	out = append(out, both("poll/listener-several-pending", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, unix.EPOLLIN|unix.EPOLLET)
		for i := 0; i < 3; i++ {
			c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
		}
		settle()
		r.Poll(0, pq{ln, pollAll})
		r.EpollWait(ep, 4, 0)
		r.SetNonblock(ln, true)
		r.Accept(ln)
		r.Poll(0, pq{ln, pollAll})
		r.EpollWait(ep, 4, 0)
		r.Accept(ln)
		r.Accept(ln)
		r.Poll(0, pq{ln, pollAll})
		r.Accept(ln)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		r.EpollWait(ep, 4, 5000)
	})...)
	out = append(out, both("poll/refused-nonblocking-connect-err", func(r *rec, f fam) {
		// POLLERR|POLLHUP (and POLLOUT) after a refused non-blocking
		// connect, through poll, select and epoll; SO_ERROR reports
		// and clears it, the HUP stays.
		port := r.unusedPort(f, unix.SOCK_STREAM)
		c := r.Socket(f.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP)
		r.Connect(c, f.lo(port))
		r.waitFor(c, unix.POLLERR)
		r.Poll(0, pq{c, pollAll})
		r.EpollWait(ep, 4, 0)
		r.Select([]int{c}, []int{c}, []int{c}, &unix.Timeval{})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Poll(0, pq{c, pollAll})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Recv(c, 4, 0)
		r.Send(c, []byte("x"), 0)
	})...)
	out = append(out, both("stream/peek-spans-segments", func(r *rec, f fam) {
		// A peek returns what has arrived across separate sends
		// without consuming it; WAITALL|PEEK waits for the whole.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		r.Write(c, []byte("abc"))
		r.Write(c, []byte("def"))
		r.Write(c, []byte("ghi"))
		for i := 0; i < 50; i++ {
			if b, err := r.api.Recv(s, make([]byte, 16), unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && b == 9 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		r.Recv(s, 16, unix.MSG_PEEK)
		r.Recv(s, 5, unix.MSG_PEEK|unix.MSG_WAITALL)
		r.Recv(s, 5, 0)
		r.Recv(s, 16, unix.MSG_PEEK)
		r.Read(s, 16)
		r.Recv(s, 16, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})...)
	out = append(out, both("stream/waitall-many-small-sends", func(r *rec, f fam) {
		// MSG_WAITALL gathers across many sends, then a later read
		// gets only what is beyond the requested length.
		_, c, s := r.pair(f)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 8; i++ {
				r.api.Write(c, []byte{'a' + byte(i), 'a' + byte(i)})
				time.Sleep(5 * time.Millisecond)
			}
		}()
		r.Recv(s, 13, unix.MSG_WAITALL)
		<-done
		r.waitFor(s, unix.POLLIN)
		r.Recv(s, 16, unix.MSG_DONTWAIT)
	})...)
	out = append(out, both("udp/msg-trunc-real-length", func(r *rec, f fam) {
		// recv(MSG_TRUNC) returns the datagram's real length, with and
		// without MSG_PEEK, and with a zero-length buffer.
		a, _ := r.udp(f)
		b, ba := r.udp(f)
		r.Sendto(a, []byte("0123456789abcdef"), 0, ba)
		r.Sendto(a, []byte("xyz"), 0, ba)
		r.waitFor(b, unix.POLLIN)
		r.Recv(b, 0, unix.MSG_TRUNC|unix.MSG_PEEK)
		r.Recv(b, 4, unix.MSG_TRUNC|unix.MSG_PEEK)
		r.Recv(b, 4, unix.MSG_TRUNC)
		r.Recv(b, 1, unix.MSG_TRUNC)
		r.Recv(b, 4, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	})...)
	out = append(out, both("stream/dontwait-on-blocking-socket", func(r *rec, f fam) {
		// MSG_DONTWAIT makes one call non-blocking without changing
		// the socket: EAGAIN on an empty receive queue and on a full
		// send buffer, O_NONBLOCK still clear.
		_, c, s := r.pair(f)
		r.Recv(s, 16, unix.MSG_DONTWAIT)
		r.Fcntl(s, unix.F_GETFL, 0)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
		r.SetInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		chunk := make([]byte, 65536)
		total := 0
		for i := 0; i < 1000; i++ {
			n, err := r.api.Send(c, chunk, unix.MSG_DONTWAIT)
			if err != nil {
				r.logf("fill: %v after some bytes", errs(err))
				break
			}
			total += n
		}
		r.logf("filled: %v", total > 0)
		r.Fcntl(c, unix.F_GETFL, 0)
	})...)
	out = append(out, both("stream/shut-both-pollhup-with-data", func(r *rec, f fam) {
		// Both directions shut with data unread: POLLIN|POLLRDHUP|POLLHUP
		// and the data still readable, then EOF.
		_, c, s := r.pair(f)
		r.Write(c, []byte("pending"))
		r.waitFor(s, unix.POLLIN)
		r.Shutdown(c, unix.SHUT_WR)
		r.waitFor(s, unix.POLLRDHUP)
		r.Shutdown(s, unix.SHUT_WR)
		r.waitFor(s, unix.POLLHUP)
		r.Poll(0, pq{s, pollAll})
		r.Read(s, 4)
		r.Poll(0, pq{s, pollAll})
		r.Read(s, 16)
		r.Read(s, 16)
		r.Write(s, []byte("x"))
	})...)
	out = append(out, both("stream/cork-holds-until-uncork", func(r *rec, f fam) {
		// TCP_CORK holds a partial segment; clearing it sends at once.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("held"))
		time.Sleep(20 * time.Millisecond)
		r.Poll(0, pq{s, unix.POLLIN})
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
		r.waitFor(s, unix.POLLIN)
		r.Read(s, 16)
		r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK)
	})...)
	out = append(out, both("stream/cork-released-after-200ms", func(r *rec, f fam) {
		// A corked partial segment still leaves after 200 ms.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("late"))
		r.Poll(1000, pq{s, unix.POLLIN})
		r.Read(s, 16)
	})...)
	out = append(out, both("connect/wildcard-bound-gets-local-name", func(r *rec, f fam) {
		// A socket bound to the wildcard (port chosen) keeps its port
		// and takes the route's source address on connect, TCP and UDP.
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(c, f.any(0))
		before := r.Getsockname(c)
		r.Connect(c, addr)
		after := r.Getsockname(c)
		r.logf("tcp port kept: %v", r.port(saPort(before)) == r.port(saPort(after)))
		s := r.Accept(ln)
		r.logf("tcp peer sees it: %v", r.sa(r.Getpeername(s)) == r.sa(after))
		u := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Bind(u, f.any(0))
		_, ua := r.udp(f)
		ubefore := r.Getsockname(u)
		r.Connect(u, ua)
		uafter := r.Getsockname(u)
		r.logf("udp port kept: %v", r.port(saPort(ubefore)) == r.port(saPort(uafter)))
	})...)
	return out
}

func lowatScenarios() []scenario {
	out := both("stream/rcvlowat-epoll-select", func(r *rec, f fam) {
		// Below SO_RCVLOWAT neither epoll nor select reports readable;
		// at it both do; at EOF the rest is readable however short.
		// (No blocking recv here: Linux's tcp_data_ready does not wake
		// a reader that has already copied part of the low-water mark,
		// so such a recv can sleep with the mark reached.)
		_, c, s := r.pair(f)
		r.SetInt(s, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 6)
		ep := r.EpollCreate1(0)
		r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, unix.EPOLLIN)
		r.Write(c, []byte("abc"))
		settle()
		r.EpollWait(ep, 4, 0)
		r.Select([]int{s}, nil, nil, &unix.Timeval{})
		r.Write(c, []byte("def"))
		r.EpollWait(ep, 4, 5000)
		r.Select([]int{s}, nil, nil, &unix.Timeval{})
		r.Recv(s, 16, 0)
		r.Write(c, []byte("gh"))
		settle()
		r.EpollWait(ep, 4, 0)
		r.Shutdown(c, unix.SHUT_WR)
		r.EpollWait(ep, 4, 5000)
		r.Recv(s, 16, 0)
	})
	out = append(out, both("stream/nodelay-pushes-corked-data", func(r *rec, f fam) {
		// Setting TCP_NODELAY on a corked socket sends what is held
		// (tcp_push_pending_frames); the cork itself stays set.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("held"))
		time.Sleep(20 * time.Millisecond)
		r.Poll(0, pq{s, unix.POLLIN})
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		r.Poll(100, pq{s, unix.POLLIN})
		r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK)
		r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		r.Read(s, 16)
	})...)
	out = append(out, both("opt/sndlowat", func(r *rec, f fam) {
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_SNDLOWAT)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_SNDLOWAT, 100)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_SNDLOWAT)
	})...)
	return out
}

func dataPathScenarios() []scenario {
	out := both("stream/reset-after-data-reads-data-first", func(r *rec, f fam) {
		// A reset arriving behind data: the data is still read, then
		// ECONNRESET, then EOF.
		_, c, s := r.pair(f)
		r.Write(s, []byte("before the reset"))
		r.waitFor(c, unix.POLLIN)
		r.SetLinger(s, 1, 0)
		r.Close(s)
		r.waitFor(c, unix.POLLERR)
		r.Poll(0, pq{c, pollAll})
		r.Read(c, 6)
		r.Read(c, 64)
		r.Read(c, 64)
		r.Read(c, 64)
	})
	out = append(out, both("stream/peek-trunc", func(r *rec, f fam) {
		// MSG_TRUNC on a stream discards instead of copying; with
		// MSG_PEEK it counts without consuming.
		_, c, s := r.pair(f)
		r.Write(c, []byte("0123456789"))
		r.waitFor(s, unix.POLLIN)
		r.Recv(s, 4, unix.MSG_PEEK|unix.MSG_TRUNC)
		r.Recv(s, 16, unix.MSG_PEEK)
		r.Recv(s, 3, unix.MSG_TRUNC)
		r.Recv(s, 16, 0)
	})...)
	out = append(out, both("udp/rcvlowat-ignored", func(r *rec, f fam) {
		// Datagram sockets are readable with any datagram queued,
		// whatever SO_RCVLOWAT says.
		a, _ := r.udp(f)
		b, ba := r.udp(f)
		r.SetInt(b, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 100)
		r.GetInt(b, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		r.Sendto(a, []byte("abc"), 0, ba)
		settle()
		r.Poll(0, pq{b, unix.POLLIN})
		r.Recv(b, 16, unix.MSG_DONTWAIT)
	})...)
	out = append(out, both("opt/rcvlowat-capped", func(r *rec, f fam) {
		_, c, _ := r.pair(f)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_RCVBUF, 8192)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1<<30)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		r.SetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 0)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	})...)
	out = append(out, both("udp/connect-port-zero", func(r *rec, f fam) {
		a, _ := r.udp(f)
		r.Connect(a, f.lo(0))
		r.Getpeername(a)
		r.Send(a, []byte("x"), 0)
	})...)
	out = append(out, both("stream/cork-flushed-by-shutdown", func(r *rec, f fam) {
		// shutdown(SHUT_WR) sends what a cork holds, with the FIN.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("held"))
		r.Shutdown(c, unix.SHUT_WR)
		r.Poll(100, pq{s, unix.POLLIN})
		r.Read(s, 16)
		r.Read(s, 16)
	})...)
	out = append(out, both("stream/cork-flushed-by-close", func(r *rec, f fam) {
		// close() sends what a cork holds, with the FIN.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("held"))
		r.Close(c)
		r.Poll(100, pq{s, unix.POLLIN})
		r.Read(s, 16)
		r.Read(s, 16)
	})...)
	out = append(out, both("stream/cork-full-segments-leave", func(r *rec, f fam) {
		// A cork holds only the partial tail: full segments leave.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, make([]byte, 200000))
		r.Poll(100, pq{s, unix.POLLIN})
	})...)
	return out
}

func moreDataPathScenarios() []scenario {
	out := both("accept/data-and-fin-before-accept", func(r *rec, f fam) {
		// A connection that sent data and its FIN before accept is
		// readable with RDHUP at once; the data, then EOF.
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		r.Write(c, []byte("early"))
		r.Shutdown(c, unix.SHUT_WR)
		settle()
		s := r.Accept(ln)
		r.waitFor(s, unix.POLLRDHUP)
		r.Poll(0, pq{s, pollAll})
		r.Read(s, 16)
		r.Read(s, 16)
		r.Write(s, []byte("late reply"))
		r.Read(c, 16)
	})
	out = append(out, both("stream/waitall-without-waiting", func(r *rec, f fam) {
		// MSG_WAITALL returns what is there when the call may not
		// wait: on a non-blocking socket, or with MSG_DONTWAIT.
		_, c, s := r.pair(f)
		r.Write(c, []byte("abc"))
		r.waitFor(s, unix.POLLIN)
		r.Recv(s, 10, unix.MSG_WAITALL|unix.MSG_DONTWAIT)
		r.Recv(s, 10, unix.MSG_WAITALL|unix.MSG_DONTWAIT)
		r.SetNonblock(s, true)
		r.Write(c, []byte("de"))
		r.waitFor(s, unix.POLLIN)
		r.Recv(s, 10, unix.MSG_WAITALL)
		r.Recv(s, 10, unix.MSG_WAITALL)
	})...)
	out = append(out,
		sc("connect/v6-wildcard-bound-to-mapped-gets-mapped-name", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(c, v6.any(0))
			r.Connect(c, &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}, Port: saPort(addr)})
			r.Getsockname(c)
			r.Getpeername(c)
			s := r.Accept(ln)
			r.Getpeername(s)
		}),
		sc("stream/names-after-reset", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.Getpeername(c)
			r.Getsockname(c)
			r.Read(c, 4)
			r.Getpeername(c)
		}),
	)
	return out
}

func corkAndSpaceScenarios() []scenario {
	out := both("stream/cork-after-nodelay", func(r *rec, f fam) {
		// TCP_CORK set after TCP_NODELAY still holds partial segments
		// (the cork wins), until it is cleared.
		_, c, s := r.pair(f)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.Write(c, []byte("x"))
		time.Sleep(30 * time.Millisecond)
		r.Poll(0, pq{s, unix.POLLIN})
		r.Write(c, []byte("y"))
		time.Sleep(30 * time.Millisecond)
		r.Poll(0, pq{s, unix.POLLIN})
		r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
		r.waitFor(s, unix.POLLIN)
		r.Read(s, 16)
	})
	out = append(out, both("accept/inherits-lowat-cork-buffers", func(r *rec, f fam) {
		// An accepted socket starts with the listener's SO_RCVLOWAT,
		// TCP_CORK and SO_RCVBUF (sk_clone_lock copies the socket), and
		// the SO_RCVBUF lock goes with it: SO_RCVLOWAT capped at half.
		ln, addr := r.listener(f)
		r.SetInt(ln, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 7)
		r.SetInt(ln, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		r.SetInt(ln, unix.SOL_SOCKET, unix.SO_RCVBUF, 8192)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		s := r.Accept(ln)
		r.GetInt(s, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		r.GetInt(s, unix.IPPROTO_TCP, unix.TCP_CORK)
		r.GetInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF)
		r.SetInt(s, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1<<20)
		r.GetInt(s, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	})...)
	out = append(out, both("stream/send-first-after-reset", func(r *rec, f fam) {
		// The first call after a reset reports it, whichever call it
		// is; a send then gets EPIPE, a recv end of file.
		_, c, s := r.pair(f)
		r.SetLinger(s, 1, 0)
		r.Close(s)
		r.waitFor(c, unix.POLLERR)
		r.Send(c, []byte("x"), unix.MSG_NOSIGNAL)
		r.Send(c, []byte("x"), unix.MSG_NOSIGNAL)
		r.Recv(c, 4, 0)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
	})...)
	return out
}
