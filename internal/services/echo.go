package services

import "net"

// echoChunk is how much echo reads before writing it back.
const echoChunk = 64 << 10

// serveEcho sends back whatever the peer sends (RFC 862), and half-closes
// once the peer has and everything is sent back, so that a client can send
// everything, shut down its side and read the echo to EOF.
//
// It is the plain loop: each read waits for the previous write. That
// stalled for good over gVisor before package stack's zero-window ACK
// rewrite (docs/stall.md), which is why echo once read on past its writes.
func serveEcho(c net.Conn) {
	defer c.Close()
	buf := make([]byte, echoChunk)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
	}
}
