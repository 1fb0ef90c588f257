package services

import (
	"net"
	"sync"
	"time"
)

// Echo's reading and writing run on two goroutines joined by a queue, and
// the reader does not wait on the writer indefinitely. The reason is a
// gVisor TCP bug: gVisor rounds its advertised receive window down to the
// window-scale unit, judges incoming segments against the rounded value,
// and so, when the window rounds to zero, rejects a segment the peer sent
// inside the window it had been given. The peer's later ACKs then carry a
// sequence number past RCV.NXT, and gVisor drops them all as out of window
// (gVisor issues 1610 and 10312; Linux accepts a segment that starts at
// RCV.NXT into a zero window and processes its ACK). Only the application
// reading, which reopens the window, gets the connection going again. An
// echo whose read waits for its write, which waits for those ACKs, stalls
// for good; it did with 64 MiB from a kernel client over the TUN.
//
// So the reader queues up to echoSoftLimit bytes, and past that waits for
// the writer to make progress; if the writer makes none for echoStallBreak,
// it reads anyway, up to echoHardLimit. A client that reads what it sends
// never comes near that limit; one that only sends is flow-controlled from
// there on, as by the kernel.
const (
	echoChunk      = 64 << 10
	echoSoftLimit  = 1 << 20
	echoHardLimit  = 16 << 20
	echoStallBreak = 100 * time.Millisecond
)

var echoBufs = sync.Pool{New: func() any { return new([echoChunk]byte) }}

// echoQueue holds the bytes read and not yet written back.
type echoQueue struct {
	mu     sync.Mutex // guards chunks, queued, eof
	chunks [][]byte   // each slices a pooled *[echoChunk]byte from its start
	queued int
	eof    bool // the reader is done; the writer drains and stops

	avail    chan struct{} // signalled (never blocking) when chunks or eof change
	progress chan struct{} // signalled (never blocking) after each write
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *echoQueue) push(b []byte) {
	q.mu.Lock()
	q.chunks = append(q.chunks, b)
	q.queued += len(b)
	q.mu.Unlock()
	signal(q.avail)
}

func (q *echoQueue) finish() {
	q.mu.Lock()
	q.eof = true
	q.mu.Unlock()
	signal(q.avail)
}

// pop returns the oldest chunk, or nil and whether the reader is done.
func (q *echoQueue) pop() (b []byte, eof bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.chunks) == 0 {
		return nil, q.eof
	}
	b = q.chunks[0]
	q.chunks[0] = nil
	q.chunks = q.chunks[1:]
	q.queued -= len(b)
	return b, false
}

func (q *echoQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

// serveEcho sends back whatever the peer sends (RFC 862), and half-closes
// once the peer has and everything is sent back, so that a client can send
// everything, shut down its side and read the echo to EOF.
func serveEcho(c net.Conn) {
	defer c.Close()
	q := &echoQueue{avail: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if echoWrite(c, q) {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}
	}()
	echoRead(c, q)
	<-done
}

// echoRead reads into q until EOF or an error.
func echoRead(c net.Conn, q *echoQueue) {
	defer q.finish()
	for {
		if !echoMayRead(q) {
			return
		}
		buf := echoBufs.Get().(*[echoChunk]byte)
		n, err := c.Read(buf[:])
		if n > 0 {
			q.push(buf[:n])
		} else {
			echoBufs.Put(buf)
		}
		if err != nil {
			return
		}
	}
}

// echoMayRead waits while q is past its soft limit and the writer is
// making progress, as described above. It reports false if the writer has
// given up.
func echoMayRead(q *echoQueue) bool {
	for q.size() >= echoSoftLimit {
		stall := time.NewTimer(echoStallBreak)
		select {
		case _, ok := <-q.progress:
			stall.Stop()
			if !ok {
				return false
			}
			continue
		case <-stall.C:
		}
		if q.size() < echoHardLimit {
			return true
		}
	}
	return true
}

// echoWrite writes back what q holds until the reader is done and q is
// empty (true), or a write fails (false). On failure it closes c, which
// ends the reader's Read, and closes q.progress, which ends its wait.
func echoWrite(c net.Conn, q *echoQueue) bool {
	for {
		b, eof := q.pop()
		if b == nil {
			if eof {
				return true
			}
			<-q.avail
			continue
		}
		_, err := c.Write(b)
		echoBufs.Put((*[echoChunk]byte)(b[:echoChunk]))
		if err != nil {
			c.Close()
			close(q.progress)
			return false
		}
		signal(q.progress)
	}
}
