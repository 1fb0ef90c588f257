//go:build linux

package sockapi

import (
	"bytes"
	"io"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Events a blocked reader or writer waits for: besides data or space, an
// error or hang-up must wake it so that it can return them.
const (
	readEvents  = waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr
	writeEvents = waiter.WritableEvents | waiter.EventHUp | waiter.EventErr
)

// Read is Recv with no flags, except that reading zero bytes returns 0
// at once, as read(2) on a Linux socket does (sock_read_iter).
func (s *Sockets) Read(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		if _, _, err := s.sock(fd); err != nil {
			return -1, notSockEINVAL(err)
		}
		return 0, nil
	}
	n, _, err := s.recvfrom(fd, p, 0, waitOpts{})
	return n, notSockEINVAL(err)
}

// notSockEINVAL turns ENOTSOCK into EINVAL: read(2) and write(2) on a
// descriptor without those operations (an epoll instance) say EINVAL,
// where recv(2) and send(2) say ENOTSOCK.
func notSockEINVAL(err error) error {
	if err == unix.ENOTSOCK {
		return unix.EINVAL
	}
	return err
}

// Recv is Recvfrom without the source address.
func (s *Sockets) Recv(fd int, p []byte, flags int) (int, error) {
	n, _, err := s.recvfrom(fd, p, flags, waitOpts{})
	return n, err
}

// Recvfrom reads from fd's socket. flags may hold MSG_PEEK, MSG_DONTWAIT,
// MSG_WAITALL (stream sockets: wait for len(p) bytes, end of stream or an
// error) and MSG_TRUNC (datagram sockets: return the datagram's real
// length; stream sockets: discard the bytes instead of copying them).
// from is the sender of a datagram, and nil for stream sockets as Linux
// leaves it empty.
func (s *Sockets) Recvfrom(fd int, p []byte, flags int) (int, unix.Sockaddr, error) {
	return s.recvfrom(fd, p, flags, waitOpts{})
}

func (s *Sockets) recvfrom(fd int, p []byte, flags int, wo waitOpts) (int, unix.Sockaddr, error) {
	fe, sk, err := s.sock(fd)
	if err != nil {
		return -1, nil, err
	}
	if flags&unix.MSG_ERRQUEUE != 0 {
		// Nothing is ever queued on the error queue (no IP_RECVERR).
		return -1, nil, unix.EAGAIN
	}
	if flags&unix.MSG_OOB != 0 && sk.stream() {
		// No urgent data is ever kept: tcp_recv_urg says EINVAL.
		// Datagram protocols ignore the flag.
		return -1, nil, unix.EINVAL
	}
	r := reader{sk: sk, p: p, flags: flags, nonblock: fe.nonblocking() || flags&unix.MSG_DONTWAIT != 0}
	try := r.stream
	if !sk.stream() {
		try = r.datagram
	}
	if r.nonblock {
		err = attempt(fe, try)
	} else {
		rcv, _ := sk.timeouts()
		err = block(fe, sk.wq, readEvents, rcv, wo, try)
	}
	if err != nil && !(r.n > 0 && sk.stream()) {
		return -1, nil, err
	}
	return r.n, r.from, nil
}

// reader is one recvfrom call in progress; its methods are block's try.
type reader struct {
	sk       *socket
	p        []byte
	flags    int
	nonblock bool // O_NONBLOCK or MSG_DONTWAIT

	n    int           // bytes read (or, with MSG_TRUNC, the real length)
	from unix.Sockaddr // datagram source
}

// stream reads from a TCP socket into r.p[r.n:]. It returns nil with
// r.n == 0 at end of stream, and EAGAIN when it needs to wait: before any
// data, or short of len(p) with MSG_WAITALL.
func (r *reader) stream() error {
	peek := r.flags&unix.MSG_PEEK != 0
	// sock_rcvlowat: wait for len(p) bytes with MSG_WAITALL, else for
	// SO_RCVLOWAT of them (1 unless set), never more than len(p).
	target := len(r.p)
	if r.flags&unix.MSG_WAITALL == 0 {
		target = min(r.sk.rcvLowat(), len(r.p))
	}
	if peek {
		// Peeking starts again at the head of the queue each time.
		r.n = 0
	}
	for {
		var w io.Writer
		if r.flags&unix.MSG_TRUNC != 0 {
			w = &tcpip.LimitedWriter{W: io.Discard, N: int64(len(r.p) - r.n)}
		} else {
			sw := tcpip.SliceWriter(r.p[r.n:])
			w = &sw
		}
		res, terr := r.sk.ep().Read(w, tcpip.ReadOptions{Peek: peek})
		r.n += res.Count
		switch terr.(type) {
		case nil:
		case *tcpip.ErrClosedForReceive:
			return nil // end of stream: what has been read, or 0
		case *tcpip.ErrBadBuffer:
			if len(r.p) == 0 {
				return nil // a zero-length read with data waiting: 0
			}
			return unix.EFAULT
		case *tcpip.ErrWouldBlock:
			if r.n > 0 && r.n >= target || r.sk.shut.Load()&shutRD != 0 {
				return nil // enough, or shut down for reading: end of file
			}
			return unix.EAGAIN // a non-blocking caller returns r.n if > 0
		default:
			if r.n > 0 {
				return nil // Linux returns the bytes; the error comes next
			}
			err := r.sk.asyncErrno(terr)
			if err == unix.ENOTCONN && r.sk.shut.Load()&shutRD != 0 {
				// Never connected but shut down for reading (which
				// Linux records though it says ENOTCONN): tcp_recvmsg
				// looks at RCV_SHUTDOWN before TCP_CLOSE, so this
				// is end of file.
				return nil
			}
			return err
		}
		if r.n >= target {
			return nil
		}
		if peek || res.Count == 0 {
			return unix.EAGAIN
		}
	}
}

// datagram reads one datagram (UDP or ICMP) into r.p, truncating it to
// len(p).
func (r *reader) datagram() error {
	sw := tcpip.SliceWriter(r.p)
	res, terr := r.sk.ep().Read(&sw, tcpip.ReadOptions{
		Peek:           r.flags&unix.MSG_PEEK != 0,
		NeedRemoteAddr: true,
	})
	switch terr.(type) {
	case nil:
	case *tcpip.ErrBadBuffer:
		// len(p) == 0 and the datagram is not empty: gVisor has
		// consumed it (unless peeking) and copied nothing, as Linux.
		res.Count = 0
	case *tcpip.ErrClosedForReceive:
		if r.sk.shut.Load()&shutRD == 0 {
			// Not shut down by the program: the endpoint was closed
			// under the socket, which only Stack.Close does. Linux
			// has no such state; an error ends a receive loop where
			// 0 (an empty datagram from nowhere) would spin it.
			return unix.ENETDOWN
		}
		r.n = 0 // shut down for reading: end of file
		return nil
	case *tcpip.ErrWouldBlock:
		if r.sk.shut.Load()&shutRD != 0 && !r.nonblock {
			// __skb_wait_for_more_packets: a blocking read of an
			// empty queue shut for reading is end of file; a
			// non-blocking one never gets that far (EAGAIN).
			r.n = 0
			return nil
		}
		return unix.EAGAIN
	default:
		return errnoOf(terr)
	}
	r.n = res.Count
	if r.flags&unix.MSG_TRUNC != 0 && r.sk.proto == unix.IPPROTO_UDP {
		r.n = res.Total // ping_recvmsg ignores MSG_TRUNC; UDP honours it
	}
	if r.sk.proto != unix.IPPROTO_UDP {
		res.RemoteAddr.Port = 0 // ping sockets report no port (ping_recvmsg)
	}
	r.from = r.sk.sockaddr(res.RemoteAddr)
	return nil
}

// Write is Send with no flags.
func (s *Sockets) Write(fd int, p []byte) (int, error) {
	n, err := s.sendto(fd, p, 0, nil, waitOpts{})
	return n, notSockEINVAL(err)
}

// Send is Sendto to the connected peer, returning the byte count.
func (s *Sockets) Send(fd int, p []byte, flags int) (int, error) {
	return s.sendto(fd, p, flags, nil, waitOpts{})
}

// Sendto writes p to fd's socket, to "to" if it is not nil (datagram
// sockets; stream sockets ignore it as Linux does). flags may hold
// MSG_DONTWAIT, MSG_NOSIGNAL (always in effect: writes never raise
// SIGPIPE, they return EPIPE), MSG_MORE, MSG_EOR and, on UDP, MSG_PROBE
// (check and bind, send nothing).
func (s *Sockets) Sendto(fd int, p []byte, flags int, to unix.Sockaddr) error {
	_, err := s.sendto(fd, p, flags, to, waitOpts{})
	return err
}

func (s *Sockets) sendto(fd int, p []byte, flags int, to unix.Sockaddr, wo waitOpts) (int, error) {
	to, err := checkSockaddr(to)
	if err != nil {
		return -1, err
	}
	fe, sk, err := s.sock(fd)
	if err != nil {
		return -1, err
	}
	if flags&unix.MSG_OOB != 0 {
		// gVisor keeps no urgent data; udp_sendmsg and ping_v4_sendmsg
		// refuse MSG_OOB with EOPNOTSUPP too.
		return -1, unix.EOPNOTSUPP
	}
	w := writer{sk: sk, p: p, opts: tcpip.WriteOptions{More: flags&unix.MSG_MORE != 0}}
	try := w.stream
	if !sk.stream() {
		try = w.datagram
		if to != nil {
			fa, err := sk.fullAddr(to, forSend)
			if err != nil {
				return -1, err
			}
			if sk.proto != unix.IPPROTO_UDP {
				fa.Port = 0 // ping sockets ignore the port (ping_v4_sendmsg)
			}
			w.opts.To = &fa
		}
		if flags&msgProbe != 0 && sk.proto == unix.IPPROTO_UDP {
			return sk.probe(p, w.opts)
		}
		if sk.shut.Load()&shutWR != 0 && len(p) <= sk.maxDatagram() {
			// shutdown(SHUT_WR) answers ENOTCONN on an unconnected
			// datagram socket but still sets SEND_SHUTDOWN, and
			// sock_alloc_send_pskb then fails every send with EPIPE
			// (udp_sendmsg and ping_v4_sendmsg alike). gVisor keeps no
			// shutdown for an unconnected endpoint and would send.
			return -1, unix.EPIPE
		}
		// gVisor's datagram endpoints refuse MSG_MORE (EINVAL); UDP
		// corks in sockapi instead, ping sockets send at once.
		w.opts.More = false
		if sk.proto == unix.IPPROTO_UDP {
			var held bool
			w.p, w.opts.To, held, err = sk.cork(p, w.opts.To, flags&unix.MSG_MORE != 0)
			if err != nil {
				return -1, err
			}
			if held {
				return len(p), nil
			}
		}
	}
	nonblock := fe.nonblocking() || flags&unix.MSG_DONTWAIT != 0
	if nonblock {
		err = attempt(fe, try)
	} else {
		_, snd := sk.timeouts()
		err = block(fe, sk.wq, writeEvents, snd, wo, try)
	}
	if err != nil && !(w.n > 0 && sk.stream()) {
		return -1, err
	}
	if !sk.stream() {
		return len(p), nil // a flushed cork counts only this call's bytes
	}
	return w.n, nil
}

// msgProbe is MSG_PROBE, which x/sys/unix does not name.
const msgProbe = 0x10

// probe is a UDP send with MSG_PROBE, "do not send, only probe the path":
// udp_sendmsg checks the length and the destination, inet_send_prepare
// binds an unbound socket, the route is looked up (ENETUNREACH, EACCES
// for broadcast), and ip_make_skb returns before building a packet; the
// call reports the whole length. gVisor's Preflight is that, up to the
// packet. (A UDP cork in progress is left as it is; Linux would push it
// out when the probe has no MSG_MORE.)
func (sk *socket) probe(p []byte, opts tcpip.WriteOptions) (int, error) {
	if len(p) > 0xffff {
		return -1, unix.EMSGSIZE
	}
	pf, ok := sk.ep().(tcpip.EndpointWithPreflight)
	if !ok {
		return -1, unix.EOPNOTSUPP
	}
	if terr := pf.Preflight(opts); terr != nil {
		return -1, errnoOf(terr)
	}
	return len(p), nil
}

// cork gathers the data of UDP sends made with MSG_MORE into one
// datagram, sent by the first send without it, as udp_sendmsg does: the
// first corked send fixes the destination (later ones' are ignored), and
// a datagram grown past the maximum is dropped whole with EMSGSIZE. It
// returns what to send now and where, or held when the data was kept.
func (sk *socket) cork(p []byte, to *tcpip.FullAddress, more bool) (payload []byte, dst *tcpip.FullAddress, held bool, err error) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	more = more || sk.udpCork
	if !sk.corked {
		if !more {
			return p, to, false, nil
		}
		if to == nil {
			if _, terr := sk.ep().GetRemoteAddress(); terr != nil {
				return nil, nil, false, unix.EDESTADDRREQ
			}
		}
		sk.corked, sk.corkTo = true, to
	}
	if len(sk.corkBuf)+len(p) > sk.maxDatagram() {
		sk.corked, sk.corkBuf, sk.corkTo = false, nil, nil
		return nil, nil, false, unix.EMSGSIZE
	}
	sk.corkBuf = append(sk.corkBuf, p...)
	if more {
		return nil, nil, true, nil
	}
	payload, dst = sk.corkBuf, sk.corkTo
	sk.corked, sk.corkBuf, sk.corkTo = false, nil, nil
	return payload, dst, false, nil
}

// maxDatagram is the largest UDP payload: 65535 less the UDP header and,
// over IPv4, the IP header.
func (sk *socket) maxDatagram() int {
	if sk.family == unix.AF_INET {
		return 65507
	}
	return 65527
}

// writer is one sendto call in progress; its methods are block's try.
type writer struct {
	sk   *socket
	p    []byte
	opts tcpip.WriteOptions
	n    int // bytes accepted so far
}

// stream writes r.p[w.n:] to a TCP socket until all of it is accepted. It
// returns EAGAIN when the send buffer is full, even after partial
// progress; the caller returns w.n > 0 instead of an error.
func (w *writer) stream() error {
	for {
		var rd bytes.Reader
		rd.Reset(w.p[w.n:])
		m, terr := w.sk.ep().Write(&rd, w.opts)
		w.n += int(m)
		if terr != nil {
			return w.sk.asyncErrno(terr)
		}
		if w.n >= len(w.p) {
			return nil
		}
	}
}

// datagram sends w.p as one datagram.
func (w *writer) datagram() error {
	var rd bytes.Reader
	rd.Reset(w.p)
	m, terr := w.sk.ep().Write(&rd, w.opts)
	if terr != nil {
		return errnoOf(terr)
	}
	w.n = int(m)
	return nil
}
