package stack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, proto
}

// echoOnce accepts one connection on l's stack at addr, echoes it, and
// checks that dialling from client's stack round-trips data.
func echoRoundTrip(t *testing.T, server, client *Stack, addr string) {
	t.Helper()
	fa, proto := fullAddr(netip.MustParseAddrPort(addr))
	l, err := gonet.ListenTCP(server.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("ListenTCP(%s) = %v", addr, err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := gonet.DialContextTCP(context.Background(), client.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("DialTCP(%s) = %v", addr, err)
	}
	want := bytes.Repeat([]byte("ustack"), 10000)
	go func() { c.Write(want); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("echo via %s: got %d bytes, err %v; want %d bytes", addr, len(got), err, len(want))
	}
	<-done
}

func TestLoopbackOnly(t *testing.T) {
	leakcheck.Check(t)
	s, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}) = %v", err)
	}
	defer s.Close()
	for _, addr := range []string{"127.0.0.1:7", "127.9.8.7:7", "[::1]:7"} {
		t.Run(addr, func(t *testing.T) { echoRoundTrip(t, s, s, addr) })
	}
}

func TestTwoStacksOverPipe(t *testing.T) {
	leakcheck.Check(t)
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	s1, err := New(Config{NICs: []NICConfig{{Endpoint: a, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := New(Config{NICs: []NICConfig{{Endpoint: b, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	echoRoundTrip(t, s1, s2, "10.0.0.1:7")
	echoRoundTrip(t, s2, s1, "[fd00::2]:9")
	st := s1.Stats()
	if st.TCP.PassiveOpens != 1 || st.TCP.ActiveOpens != 1 {
		t.Errorf("s1 TCP opens = passive %d active %d, want 1 and 1", st.TCP.PassiveOpens, st.TCP.ActiveOpens)
	}
	var eth *NICStats
	for i := range st.NICs {
		if st.NICs[i].Name == "eth2" {
			eth = &st.NICs[i]
		}
	}
	if eth == nil || eth.RxBytes < 60000 || eth.TxBytes < 60000 {
		t.Errorf("s1 eth2 stats = %+v, want >= 60000 bytes each way", eth)
	}
}

func TestConfigErrors(t *testing.T) {
	a, _ := pipe.New("", "", 1500)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nil endpoint", Config{NICs: []NICConfig{{}}}, "NICs[0].Endpoint is nil"},
		{"reserved name", Config{NICs: []NICConfig{{Name: "lo", Endpoint: a}}}, "reserved"},
		{"bad cc", Config{TCP: TCPConfig{CongestionControl: "bbr"}}, "CongestionControl"},
		{"bad range", Config{TCP: TCPConfig{SendBuffer: BufferRange{Min: 10, Default: 5, Max: 20}}}, "SendBuffer"},
		{"bad gw", Config{Routes: []Route{{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("fd00::1"), NIC: "lo"}}}, "Gateway"},
		{"unknown nic", Config{Routes: []Route{{Dest: netip.MustParsePrefix("0.0.0.0/0"), NIC: "eth9"}}}, `Routes[0].NIC "eth9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New() = nil error, want one containing %q", tc.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("New() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

var _ net.Conn = (*gonet.TCPConn)(nil)

// syncBuffer is a bytes.Buffer safe for the sniffer's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestPcapCapturesNICTraffic(t *testing.T) {
	leakcheck.Check(t)
	var capture syncBuffer
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	s1, err := New(Config{NICs: []NICConfig{{Endpoint: a, Pcap: &capture, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := New(Config{NICs: []NICConfig{{Endpoint: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	echoRoundTrip(t, s2, s1, "10.0.0.2:7")

	capture.mu.Lock()
	data := capture.b.Bytes()
	capture.mu.Unlock()
	// A pcap file starts with the magic 0xa1b2c3d4 (little-endian here) and
	// a 24-byte global header; each record has a 16-byte header.
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("capture does not start with a pcap header: % x", data[:min(len(data), 24)])
	}
	records := 0
	for off := 24; off+16 <= len(data); records++ {
		off += 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
	}
	// SYN, SYN-ACK, ACK, 60000 bytes each way in MTU-sized segments, FINs.
	if records < 80 {
		t.Errorf("capture has %d packets, want at least 80", records)
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	if f.n > 3 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// pipeStacks joins two stacks over an in-memory link, with cfg1's NIC
// settings applied to the first.
func pipeStacks(t *testing.T, nic1 NICConfig, cfg1 Config) (*Stack, *Stack) {
	t.Helper()
	return pipeStacksOver(t, nic1, cfg1, func(e *pipe.Endpoint) gstack.LinkEndpoint { return e })
}

// pipeStacksOver is pipeStacks with both ends of the link wrapped in wrap.
func pipeStacksOver(t *testing.T, nic1 NICConfig, cfg1 Config, wrap func(*pipe.Endpoint) gstack.LinkEndpoint) (*Stack, *Stack) {
	t.Helper()
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	nic1.Endpoint = wrap(a)
	nic1.Addrs = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}
	cfg1.NICs = []NICConfig{nic1}
	s1, err := New(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s1.Close)
	s2, err := New(Config{NICs: []NICConfig{{Endpoint: wrap(b), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	return s1, s2
}

func TestPcapWriteFailureStopsCaptureNotStack(t *testing.T) {
	leakcheck.Check(t)
	fw := &failingWriter{}
	s1, s2 := pipeStacks(t, NICConfig{Pcap: fw}, Config{})
	echoRoundTrip(t, s2, s1, "10.0.0.2:7")
	if err := s1.CaptureErr(); err == nil || err.Error() != "disk full" {
		t.Errorf("CaptureErr() = %v, want disk full", err)
	}
	if fw.n != 4 {
		t.Errorf("capture writes after the failure: %d calls, want 4 (3 good, 1 failed)", fw.n)
	}
}

func TestPausedDropsUntilResume(t *testing.T) {
	leakcheck.Check(t)
	s1, s2 := pipeStacks(t, NICConfig{}, Config{Paused: true})
	fa, proto := fullAddr(netip.MustParseAddrPort("10.0.0.1:7"))
	l, err := gonet.ListenTCP(s1.GVisor(), fa, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := gonet.DialContextTCP(ctx, s2.GVisor(), fa, proto); err == nil {
		c.Close()
		t.Fatalf("dial to a paused stack succeeded, want it to time out")
	}
	s1.Resume()
	l.Close()
	echoRoundTrip(t, s1, s2, "10.0.0.1:7")
}

// TestNoDelay checks that TCP.NoDelay starts new TCP endpoints with
// Nagle's algorithm off (TCP_NODELAY set), and that the default is on.
func TestNoDelay(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name      string
		noDelay   bool
		wantDelay bool
	}{{"default", false, true}, {"NoDelay", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{TCP: TCPConfig{NoDelay: tc.noDelay}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var wq waiter.Queue
			ep, terr := s.GVisor().NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
			if terr != nil {
				t.Fatal(terr)
			}
			defer ep.Close()
			if got := ep.SocketOptions().GetDelayOption(); got != tc.wantDelay {
				t.Errorf("Config{TCP: {NoDelay: %v}}: new endpoint's delay option = %v, want %v", tc.noDelay, got, tc.wantDelay)
			}
		})
	}
}
