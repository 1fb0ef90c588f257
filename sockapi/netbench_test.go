//go:build linux

package sockapi

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// The adapters' cost, measured side by side with gVisor's own gonet on
// the same kind of loopback stack and with the kernel's net package on
// the host's loopback:
//
//	go test ./sockapi -run '^$' -bench 'BenchmarkNet' -benchtime 2s

// netBenchPair returns both ends of a loopback TCP connection made by
// impl: "adapters", "gonet" or "kernel".
func netBenchPair(b *testing.B, impl string) (client, server net.Conn) {
	b.Helper()
	var l net.Listener
	var dial func(addr string) (net.Conn, error)
	switch impl {
	case "kernel":
		kl, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		l, dial = kl, func(a string) (net.Conn, error) { return net.Dial("tcp4", a) }
	case "adapters":
		s := netLoopback(b)
		al, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		d := &Dialer{Sockets: s}
		l, dial = al, func(a string) (net.Conn, error) { return d.Dial("tcp4", a) }
	case "gonet":
		st, err := stack.New(stack.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(st.Close)
		fa := tcpip.FullAddress{Addr: tcpip.AddrFrom4([4]byte{127, 0, 0, 1})}
		gl, err := gonet.ListenTCP(st.GVisor(), fa, ipv4.ProtocolNumber)
		if err != nil {
			b.Fatal(err)
		}
		l = gl
		dial = func(string) (net.Conn, error) {
			fa.Port = uint16(gl.Addr().(*net.TCPAddr).Port)
			return gonet.DialContextTCP(context.Background(), st.GVisor(), fa, ipv4.ProtocolNumber)
		}
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err := dial(l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var netBenchImpls = []string{"adapters", "gonet", "kernel"}

func BenchmarkNetThroughput(b *testing.B) {
	for _, impl := range netBenchImpls {
		b.Run(impl, func(b *testing.B) {
			client, server := netBenchPair(b, impl)
			buf := make([]byte, 64<<10)
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyBuffer(io.Discard, server, make([]byte, 64<<10))
				done <- err
			}()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			client.(interface{ CloseWrite() error }).CloseWrite()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkNetPingPong(b *testing.B) {
	for _, impl := range netBenchImpls {
		b.Run(impl, func(b *testing.B) {
			client, server := netBenchPair(b, impl)
			go func() {
				p := make([]byte, 1)
				for {
					if _, err := server.Read(p); err != nil {
						return
					}
					if _, err := server.Write(p); err != nil {
						return
					}
				}
			}()
			p := make([]byte, 1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(p); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
