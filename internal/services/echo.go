package services

import (
	"net"
	"sync"
)

// echoChunk is how much echo reads before writing it back.
const echoChunk = 64 << 10

var echoBufs = sync.Pool{New: func() any { return new([echoChunk]byte) }}

// serveEcho sends back whatever the peer sends (RFC 862), and half-closes
// once the peer has and everything is sent back, so that a client can send
// everything, shut down its side and read the echo to EOF.
//
// It is the plain loop: each read waits for the previous write. That
// stalled for good over gVisor before package stack's zero-window ACK
// rewrite (docs/stall.md), which is why echo once read on past its writes.
//
// The buffer is taken only once there is something to read (waitReadable)
// and given back after the write, so that an idle connection holds none.
// A peer that sends and never reads keeps one, with gVisor's send and
// receive buffers, as a kernel echo server keeps its socket buffers full.
func serveEcho(c net.Conn) {
	defer c.Close()
	for {
		waitReadable(c)
		buf := echoBufs.Get().(*[echoChunk]byte)
		n, err := c.Read(buf[:])
		var werr error
		if n > 0 {
			_, werr = c.Write(buf[:n])
		}
		echoBufs.Put(buf)
		if werr != nil {
			return
		}
		if err != nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
	}
}
