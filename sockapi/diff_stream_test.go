//go:build linux

package sockapi

import (
	"bytes"
	"time"

	"golang.org/x/sys/unix"
)

// Scenarios for connect(2) and the TCP byte stream: reads, writes,
// shutdown, close, linger, receive flags.

func connectScenarios() []scenario {
	out := both("connect/refused", func(r *rec, f fam) {
		fd := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(fd, f.lo(r.unusedPort(f, unix.SOCK_STREAM)))
		r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Getpeername(fd)
	})
	out = append(out, both("connect/eisconn", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		r.Connect(c, addr)
		r.Accept(ln)
	})...)
	out = append(out, both("connect/nonblocking-then-so-error", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		r.Connect(c, addr)
		r.waitFor(c, unix.POLLOUT)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Connect(c, addr)
		r.Accept(ln)
	})...)
	out = append(out, both("connect/nonblocking-refused", func(r *rec, f fam) {
		c := r.Socket(f.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		r.Connect(c, f.lo(r.unusedPort(f, unix.SOCK_STREAM)))
		r.waitFor(c, unix.POLLERR)
		r.Poll(0, pq{c, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.Poll(0, pq{c, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
	})...)
	out = append(out,
		sc("connect/nonblocking-ealready", func(r *rec) {
			// A full accept queue drops the SYN, keeping the connect in
			// progress long enough to ask again.
			_, addr := r.fullListener()
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetNonblock(b, true)
			r.Connect(b, addr)
			r.Connect(b, addr)
			r.GetInt(b, unix.SOL_SOCKET, unix.SO_ERROR)
			r.Getpeername(b)
		}),
		sc("connect/sndtimeo-einprogress", func(r *rec) {
			// A blocking connect bounded by SO_SNDTIMEO gives up with
			// EINPROGRESS (connect(2)) while the handshake goes on.
			_, addr := r.fullListener()
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetTimeval(b, unix.SO_SNDTIMEO, 100*time.Millisecond)
			r.Connect(b, addr)
		}),
		sc("connect/port-zero-refused", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(fd, v4.lo(0))
		}),
		sc("connect/on-listener", func(r *rec) {
			ln, addr := r.listener(v4)
			r.Connect(ln, addr)
		}),
		sc("connect/v4-sockaddr-on-v6-socket", func(r *rec) {
			_, addr := r.listener(v4)
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Connect(fd, addr)
		}),
		sc("connect/v6-sockaddr-on-v4-socket", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(fd, v6.lo(1))
		}),
		sc("connect/after-refused-again", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			port := r.unusedPort(v4, unix.SOCK_STREAM)
			r.Connect(fd, v4.lo(port))
			r.Connect(fd, v4.lo(port))
		}),
		sc("connect/self-bound-port-unlistened", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, v4.lo(0))
			other := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(other, r.Getsockname(fd))
		}),
		sc("connect/client-bound-before-connect", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(c, v4.lo(0))
			local := r.Getsockname(c)
			r.Connect(c, addr)
			s := r.Accept(ln)
			r.logf("peer is the bound address: %v", r.sa(r.Getpeername(s)) == r.sa(local))
		}),
	)
	return out
}

func streamScenarios() []scenario {
	out := both("stream/echo", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Write(c, []byte("hello"))
		r.Read(s, 16)
		r.Send(s, []byte("world!"), 0)
		r.Recv(c, 16, 0)
	})
	out = append(out, both("stream/bulk-1MiB", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		done := make(chan [2]any)
		go func() {
			total, off := 0, 0
			var err error
			for off < len(payload) {
				var n int
				n, err = r.api.Write(c, payload[off:])
				if err != nil {
					break
				}
				off += n
				total += n
			}
			r.api.Shutdown(c, unix.SHUT_WR)
			done <- [2]any{total, err}
		}()
		got := r.readAll(s)
		res := <-done
		r.logf("writer: %d bytes %s", res[0], errs(errOf(res[1])))
		r.logf("intact: %v", bytes.Equal(got, payload))
	})...)
	out = append(out, both("stream/peer-close-eof", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Write(c, []byte("bye"))
		r.Close(c)
		r.Read(s, 16)
		r.Read(s, 16)
		r.Read(s, 16)
	})...)
	out = append(out, both("stream/linger-zero-resets-peer", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.SetLinger(c, 1, 0)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_LINGER)
		r.Close(c)
		r.waitFor(s, unix.POLLHUP)
		r.Poll(0, pq{s, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
		r.Read(s, 16)
		r.Read(s, 16)
		r.Write(s, []byte("x"))
	})...)
	out = append(out, both("stream/half-close-client-writes-done", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Write(c, []byte("request"))
		r.Shutdown(c, unix.SHUT_WR)
		r.Read(s, 32)
		r.Read(s, 32)
		r.Write(s, []byte("response"))
		r.Close(s)
		r.Read(c, 32)
		r.Read(c, 32)
		r.Write(c, []byte("more"))
	})...)
	out = append(out,
		sc("stream/half-close-server-side", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Shutdown(s, unix.SHUT_WR)
			r.Read(c, 8)
			r.Write(c, []byte("still open"))
			r.Read(s, 32)
			r.Write(s, []byte("x"))
		}),
		sc("stream/shut-rd", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("queued"))
			r.waitFor(s, unix.POLLIN)
			r.Shutdown(s, unix.SHUT_RD)
			r.Poll(0, pq{s, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
			r.Read(s, 32)
			r.Read(s, 32)
			r.Write(s, []byte("can write"))
			r.Read(c, 32)
		}),
		sc("stream/shut-rdwr", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Shutdown(c, unix.SHUT_RDWR)
			r.Read(c, 8)
			r.Write(c, []byte("x"))
			r.Read(s, 8)
			r.Poll(0, pq{c, unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
		}),
		sc("stream/shut-wr-twice", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Shutdown(c, unix.SHUT_WR)
			r.Shutdown(c, unix.SHUT_WR)
			r.Send(c, []byte("x"), 0)
		}),
		sc("stream/shutdown-bad-how", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Shutdown(c, 3)
			r.Shutdown(c, -1)
		}),
		sc("stream/shutdown-unconnected", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Shutdown(fd, unix.SHUT_RDWR)
		}),
		sc("stream/write-unconnected", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Write(fd, []byte("x"))
			r.Send(fd, []byte("x"), 0)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		}),
		sc("stream/read-unconnected", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Read(fd, 4)
			r.Recv(fd, 4, 0)
		}),
		sc("stream/read-listener", func(r *rec) {
			ln, _ := r.listener(v4)
			r.Read(ln, 4)
			r.Write(ln, []byte("x"))
		}),
		sc("stream/sendto-with-address-on-connected", func(r *rec) {
			ln, c, s := r.pair(v4)
			r.Sendto(c, []byte("addr ignored?"), 0, r.Getsockname(ln))
			r.Read(s, 32)
		}),
		sc("stream/epipe-after-peer-reset", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Close(s)
			r.waitFor(c, unix.POLLRDHUP)
			r.Write(c, []byte("first")) // accepted; the peer answers RST
			r.waitFor(c, unix.POLLHUP)
			r.Write(c, []byte("second"))
			r.Write(c, []byte("third"))
			r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		}),
		sc("stream/so-error-after-reset", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
			r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
			r.Read(c, 4)
		}),
		sc("stream/zero-length", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, nil)
			r.Send(c, []byte{}, 0)
			r.Write(c, []byte("z"))
			r.waitFor(s, unix.POLLIN)
			r.Read(s, 0)
			r.Read(s, 4)
		}),
		sc("stream/nonblocking-read-eagain", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.SetNonblock(c, true)
			r.Read(c, 4)
			r.Recv(c, 4, 0)
			r.SetNonblock(c, false)
			r.Recv(c, 4, unix.MSG_DONTWAIT)
		}),
		sc("stream/rcvtimeo", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.SetTimeval(c, unix.SO_RCVTIMEO, 50*time.Millisecond)
			r.Read(c, 4)
			r.Recv(c, 4, 0)
		}),
		sc("stream/sndtimeo-full-buffer", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.SetTimeval(c, unix.SO_SNDTIMEO, 50*time.Millisecond)
			buf := make([]byte, 1<<20)
			var err error
			var n int
			for i := 0; i < 64 && err == nil; i++ {
				n, err = r.api.Write(c, buf)
				_ = n
			}
			r.logf("writes until the send timeout: %s", errs(err))
		}),
		sc("stream/fill-nonblocking-then-drain", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetNonblock(c, true)
			buf := make([]byte, 64<<10)
			total := 0
			var err error
			// Fill until a write fails, then again after a pause until
			// one fails at once: gVisor's TCP can still be moving data
			// queued before the first EAGAIN into the peer's receive
			// buffer (freeing send space), where Linux's loopback has
			// done so inside write(2). Poll must see the settled state.
			for i, settled := 0, false; i < 1000 && !settled; i++ {
				var n int
				n, err = r.api.Write(c, buf)
				if err == nil {
					total += n
					continue
				}
				if err != unix.EAGAIN {
					break
				}
				time.Sleep(20 * time.Millisecond)
				if n, err = r.api.Write(c, buf); err != nil {
					settled = true
				} else {
					total += n
				}
			}
			r.logf("filled: %s, some bytes sent: %v", errs(err), total > 0)
			r.Poll(0, pq{c, unix.POLLOUT})
			got := 0
			for got < total {
				n, err := r.api.Read(s, buf)
				if err != nil || n == 0 {
					break
				}
				got += n
			}
			r.logf("drained all: %v", got == total)
			r.waitFor(c, unix.POLLOUT)
		}),
		sc("stream/msg-peek", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("peekaboo"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 4, unix.MSG_PEEK)
			r.Recv(s, 16, unix.MSG_PEEK)
			r.Read(s, 16)
			r.Recv(s, 4, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		}),
		sc("stream/msg-waitall", func(r *rec) {
			_, c, s := r.pair(v4)
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.api.Write(c, []byte("abc"))
				time.Sleep(30 * time.Millisecond)
				r.api.Write(c, []byte("def"))
				time.Sleep(30 * time.Millisecond)
				r.api.Write(c, []byte("ghij"))
			}()
			r.Recv(s, 10, unix.MSG_WAITALL)
			<-done
		}),
		sc("stream/msg-waitall-eof-short", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("short"))
			r.Shutdown(c, unix.SHUT_WR)
			r.Recv(s, 10, unix.MSG_WAITALL)
			r.Recv(s, 10, unix.MSG_WAITALL)
		}),
		sc("stream/msg-trunc-discards", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("0123456789"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 4, unix.MSG_TRUNC)
			r.Read(s, 16)
		}),
		sc("stream/msg-oob-none", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("inband"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 4, unix.MSG_OOB)
			r.Read(s, 16)
		}),
		sc("stream/msg-dontwait-with-data", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("ready"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 16, unix.MSG_DONTWAIT)
			r.Recv(s, 16, unix.MSG_DONTWAIT)
			r.Send(s, []byte("back"), unix.MSG_DONTWAIT)
			r.Read(c, 16)
		}),
		sc("stream/close-unread-data-sends-reset", func(r *rec) {
			// Closing with unread received data sends RST instead of FIN
			// (RFC 2525 2.17; Linux tcp_close).
			_, c, s := r.pair(v4)
			r.Write(c, []byte("never read"))
			r.waitFor(s, unix.POLLIN)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.Read(c, 16)
		}),
		sc("stream/messages-coalesce", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(c, []byte("one,"))
			r.Write(c, []byte("two,"))
			r.Write(c, []byte("three"))
			r.Shutdown(c, unix.SHUT_WR)
			r.readAll(s)
		}),
		sc("stream/getpeername-after-peer-close", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Close(s)
			r.waitFor(c, unix.POLLRDHUP)
			r.Getpeername(c)
			r.Shutdown(c, unix.SHUT_RDWR)
			settle() // for the peer's ACK of our FIN: LAST_ACK -> CLOSED
			r.Getpeername(c)
		}),
		sc("stream/user-timeout-set-connected", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1000)
			r.Write(c, []byte("ok"))
			r.Read(s, 4)
			r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		}),
	)
	return out
}

func errOf(v any) error {
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}
