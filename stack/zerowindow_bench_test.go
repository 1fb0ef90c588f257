package stack

import (
	"context"
	"io"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// BenchmarkBulkPipe measures one-way TCP throughput between two stacks on
// a pipe link with the zero-window ACK rewrite on (as shipped) and off,
// to show what the rewrite costs per packet:
//
//	go test ./stack -run X -bench BulkPipe -benchtime 2s
func BenchmarkBulkPipe(b *testing.B) {
	for _, bc := range []struct {
		name string
		tcp  TCPConfig
	}{{"rewrite", TCPConfig{}}, {"gvisor-alone", TCPConfig{DisableZeroWindowACKFix: true}}} {
		for _, mtu := range []uint32{1500, 65000} {
			b.Run(bc.name+"/mtu"+itoa(int(mtu)), func(b *testing.B) { benchBulk(b, bc.tcp, mtu) })
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func benchBulk(b *testing.B, tcp TCPConfig, mtu uint32) {
	a, c := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", mtu)
	s1, err := New(Config{TCP: tcp, NICs: []NICConfig{{Endpoint: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s1.Close()
	s2, err := New(Config{TCP: tcp, NICs: []NICConfig{{Endpoint: c, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s2.Close()
	fa, proto := fullAddr(netip.MustParseAddrPort("10.0.0.1:9"))
	l, err := gonet.ListenTCP(s1.GVisor(), fa, proto)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan int64, 1)
	go func() {
		sc, err := l.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, sc)
		sc.Close()
		done <- n
	}()
	cc, err := gonet.DialContextTCP(context.Background(), s2.GVisor(), fa, proto)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cc.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	cc.CloseWrite()
	if n := <-done; n != int64(b.N)*int64(len(buf)) {
		b.Errorf("received %d bytes, want %d", n, int64(b.N)*int64(len(buf)))
	}
	b.StopTimer()
	cc.Close()
}

// BenchmarkZeroWindowOutbound measures what the rewrite adds to each
// outbound TCP segment when no connection is at a zero window, the
// common case: go test ./stack -run X -bench ZeroWindowOutbound
func BenchmarkZeroWindowOutbound(b *testing.B) {
	z := newZeroWindowACKs(channel.New(1, 1500, ""))
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{ReserveHeaderBytes: 60})
	defer pkt.DecRef()
	tcp := header.TCP(pkt.TransportHeader().Push(header.TCPMinimumSize))
	tcp.Encode(&header.TCPFields{SrcPort: 7, DstPort: 40000, SeqNum: 1, AckNum: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 1000})
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: 40, TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2})})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	for i := 0; i < b.N; i++ {
		z.noteOutbound(pkt)
	}
}
