package services

import (
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// copyBufSize is the size of echo's and discard's buffers: large enough
// that one Read takes a whole 64 KiB TSO segment's worth of data.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// serveDiscard reads and drops everything until the peer closes (RFC 863).
func serveDiscard(c net.Conn) {
	defer c.Close()
	discardAll(c)
}

// discardAll reads and drops everything until EOF or an error. It takes
// the buffer only for a read that will not block (waitReadable), so that
// an idle connection holds none.
func discardAll(c net.Conn) {
	for {
		waitReadable(c)
		buf := copyBufs.Get().(*[copyBufSize]byte)
		_, err := c.Read(buf[:])
		copyBufs.Put(buf)
		if err != nil {
			return
		}
	}
}

// daytimeLayout is the format RFC 867 gives as one of its examples:
// "Weekday, Month Day, Year Time-Zone".
const daytimeLayout = "Monday, January 2, 2006 15:04:05-MST"

func (s *Server) daytime() []byte {
	return []byte(s.cfg.Now().Format(daytimeLayout) + "\r\n")
}

// serveDaytime sends the date and time and closes (RFC 867).
//
// No write deadline: the line (under 50 bytes) is the first write on the
// connection, and gVisor takes a write whole into the send buffer (at
// least 4 KiB) without waiting for the peer, so it cannot block. A
// deadline cost a Go runtime timer per connection that stayed pending
// for its 10 s and then started a goroutine to fire (gonet's
// deadlineTimer): at 15k connections/s, 150k pending timers.
func (s *Server) serveDaytime(c net.Conn) {
	defer c.Close()
	c.Write(s.daytime())
}

// chargenCycle holds RFC 864's "rotating" pattern once round: 95 lines of
// 72 printable ASCII characters (0x20-0x7e), each starting one character
// further on than the last, each ended by CRLF.
var chargenCycle = func() []byte {
	const printable, lineLen = 95, 72
	b := make([]byte, 0, printable*(lineLen+2))
	for line := 0; line < printable; line++ {
		for i := 0; i < lineLen; i++ {
			b = append(b, byte(' '+(line+i)%printable))
		}
		b = append(b, '\r', '\n')
	}
	return b
}()

// chargenChunk is whole cycles of the pattern, about 1 MiB, so every
// Write continues the pattern exactly where the last one stopped. Large
// writes matter to gVisor, which runs its sender once per Write: 1 MiB
// writes moved about 15-25% more to a kernel reader over the vnet TUN than
// 64 KiB ones (tests/bench-tun.sh, recv).
var chargenChunk = func() []byte {
	n := (1 << 20) / len(chargenCycle)
	b := make([]byte, 0, n*len(chargenCycle))
	for i := 0; i < n; i++ {
		b = append(b, chargenCycle...)
	}
	return b
}()

// serveChargen sends the pattern until the peer goes away (RFC 864), and
// throws away whatever the peer sends meanwhile.
func serveChargen(c net.Conn) {
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		discardAll(c)
	}()
	for {
		if _, err := c.Write(chargenChunk); err != nil {
			break
		}
	}
	c.Close() // wakes the reader if the peer still keeps its side open
	<-done
}

// maxDatagram is the largest UDP payload over IPv4 or IPv6 without
// jumbograms.
const maxDatagram = 65535

// servePackets calls reply for every datagram c receives and sends back
// what reply returns, if anything, until Close. gonet flattens endpoint
// errors to strings, so the loop ends on the Server's own signal rather
// than on a particular error; the other errors (an ICMP error reported on
// the socket) concern one datagram and are skipped, as a UDP server does.
func (s *Server) servePackets(c *gonet.UDPConn, reply func(in []byte) []byte) {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
				continue
			}
		}
		if out := reply(buf[:n]); out != nil {
			if mayLoop(from) {
				s.udpLowPortDropped.Add(1)
				continue
			}
			c.WriteTo(out, from)
		}
	}
}

// mayLoop reports whether a datagram from from must go unanswered because
// its source port is below 1024: where echo, daytime, chargen and the
// other small services live, and where no client's ephemeral port is. An
// answer to another host's echo port (a forged source) would start a
// loop between the two services that never ends (CVE-1999-0103); xinetd
// and FreeBSD's inetd refuse such datagrams in their built-in services
// the same way.
func mayLoop(from net.Addr) bool {
	a, ok := from.(*net.UDPAddr)
	return !ok || a.Port < 1024
}

// serveEchoUDP sends every datagram back to its sender (RFC 862).
func (s *Server) serveEchoUDP(c *gonet.UDPConn) {
	s.servePackets(c, func(in []byte) []byte { return in })
}

// serveDiscardUDP drops every datagram (RFC 863).
func (s *Server) serveDiscardUDP(c *gonet.UDPConn) {
	s.servePackets(c, func([]byte) []byte { return nil })
}

// serveDaytimeUDP answers every datagram with the date and time (RFC 867).
func (s *Server) serveDaytimeUDP(c *gonet.UDPConn) {
	s.servePackets(c, func([]byte) []byte { return s.daytime() })
}
