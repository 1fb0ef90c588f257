package services

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// BenchmarkDaytimeConn measures one daytime connection over the stack's
// loopback: connect, read the line to EOF, close (what tests/bench-tun.sh
// does over the TUN). Client and server share the stack, so ns/op and
// allocs/op include the client's; differences between two versions of the
// server are the server's.
//
//	go test ./internal/services -run '^$' -bench DaytimeConn -benchmem
func BenchmarkDaytimeConn(b *testing.B) {
	st, err := stack.New(stack.Config{})
	if err != nil {
		b.Fatalf("stack.New = %v", err)
	}
	defer st.Close()
	srv, err := Start(Config{Stack: st, Addrs: []netip.Addr{lo4}, Now: func() time.Time { return fixedNow }})
	if err != nil {
		b.Fatalf("Start = %v", err)
	}
	defer srv.Close()
	fa, proto := fullAddress(lo4, PortDaytime)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := gonet.DialContextTCP(ctx, st.GVisor(), fa, proto)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		if line, err := io.ReadAll(c); err != nil || len(line) == 0 {
			b.Fatalf("daytime = %q, %v", line, err)
		}
		c.Close()
	}
}
