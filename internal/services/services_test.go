package services

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// fixedNow is the daytime clock of the tests.
var fixedNow = time.Date(2026, 11, 21, 20, 30, 5, 0, time.UTC)

// start runs a Server on a loopback-only stack and closes both when the
// test ends.
func start(t *testing.T) (*stack.Stack, *Server) {
	t.Helper()
	return startWith(t, stack.Config{})
}

// startWith is start on a stack made from cfg.
func startWith(t *testing.T, cfg stack.Config) (*stack.Stack, *Server) {
	t.Helper()
	st, err := stack.New(cfg)
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	t.Cleanup(st.Close)
	srv, err := Start(Config{Stack: st, Addrs: []netip.Addr{lo4, lo6}, Now: func() time.Time { return fixedNow }, Version: "test"})
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return st, srv
}

func dial(t *testing.T, st *stack.Stack, a netip.Addr, port uint16) *gonet.TCPConn {
	t.Helper()
	fa, proto := fullAddress(a, port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, st.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("dial %v: %v", netip.AddrPortFrom(a, port), err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestStartValidates(t *testing.T) {
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nil stack", Config{Addrs: []netip.Addr{lo4}}, "Stack is nil"},
		{"no addrs", Config{Stack: st}, "Addrs is empty"},
		{"invalid addr", Config{Stack: st, Addrs: []netip.Addr{{}}}, "invalid address"},
		{"not the stack's", Config{Stack: st, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, "192.0.2.1:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := Start(tc.cfg)
			if err == nil {
				srv.Close()
				t.Fatalf("Start(%+v) = nil error, want one containing %q", tc.cfg, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start(%+v) = %v, want it to contain %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestEchoTCP(t *testing.T) {
	leakcheck.Check(t)
	st, _ := start(t)
	for _, a := range []netip.Addr{lo4, lo6} {
		c := dial(t, st, a, PortEcho)
		want := bytes.Repeat([]byte("echo me "), 100000) // 800 KB: more than one window
		go func() { c.Write(want); c.CloseWrite() }()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("echo via %v: got %d bytes, err %v; want the %d bytes sent", a, len(got), err, len(want))
		}
	}
}

func TestDiscardTCP(t *testing.T) {
	leakcheck.Check(t)
	st, srv := start(t)
	c := dial(t, st, lo4, PortDiscard)
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("write to discard: %v", err)
	}
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Errorf("read from discard = %q, %v; want EOF and nothing", got, err)
	}
	// The server counted what it discarded before it closed.
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Conns()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("Conns() after the peer closed = %d entries, want 0", n)
	}
}

func TestDaytime(t *testing.T) {
	leakcheck.Check(t)
	st, _ := start(t)
	const want = "Saturday, November 21, 2026 20:30:05-UTC\r\n"
	got, err := io.ReadAll(dial(t, st, lo6, PortDaytime))
	if err != nil || string(got) != want {
		t.Errorf("daytime over TCP = %q, %v; want %q", got, err, want)
	}
	c := dialUDP(t, st, lo4, PortDaytime)
	c.Write([]byte("?"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Errorf("daytime over UDP = %q, %v; want %q", buf[:n], err, want)
	}
}

func TestChargen(t *testing.T) {
	leakcheck.Check(t)
	st, _ := start(t)
	c := dial(t, st, lo4, PortChargen)
	got := make([]byte, 3*len(chargenCycle)+100)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read chargen: %v", err)
	}
	// RFC 864's example: the first two lines of the rotating pattern.
	lines := strings.SplitN(string(got), "\r\n", 3)
	want0 := ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefg"
	want1 := `!"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefgh"
	if lines[0] != want0 || lines[1] != want1 {
		t.Errorf("chargen lines = %q, %q; want %q, %q", lines[0], lines[1], want0, want1)
	}
	for i := range got {
		if got[i] != chargenCycle[i%len(chargenCycle)] {
			t.Fatalf("chargen byte %d = %q, want %q (the pattern repeats every %d bytes)", i, got[i], chargenCycle[i%len(chargenCycle)], len(chargenCycle))
		}
	}
}

func dialUDP(t *testing.T, st *stack.Stack, a netip.Addr, port uint16) *gonet.UDPConn {
	t.Helper()
	fa, proto := fullAddress(a, port)
	c, err := gonet.DialUDP(st.GVisor(), nil, &fa, proto)
	if err != nil {
		t.Fatalf("DialUDP(%v) = %v", fa, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestUDPEchoAndDiscard(t *testing.T) {
	leakcheck.Check(t)
	st, _ := start(t)
	for _, a := range []netip.Addr{lo4, lo6} {
		discard := dialUDP(t, st, a, PortDiscard)
		discard.Write([]byte("dropped"))
		c := dialUDP(t, st, a, PortEcho)
		for _, size := range []int{1, 1400, 9000, 65000} {
			want := bytes.Repeat([]byte{byte(size)}, size)
			if _, err := c.Write(want); err != nil {
				t.Fatalf("write %d bytes to %v: %v", size, a, err)
			}
			buf := make([]byte, maxDatagram)
			n, err := c.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Errorf("UDP echo of %d bytes via %v = %d bytes, %v", size, a, n, err)
			}
		}
		discard.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := discard.Read(make([]byte, 10)); err == nil {
			t.Errorf("UDP discard answered %d bytes, want no answer", n)
		}
	}
}

func httpClient(st *stack.Stack) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					return nil, err
				}
				fa, proto := fullAddress(ap.Addr(), ap.Port())
				return gonet.DialContextTCP(ctx, st.GVisor(), fa, proto)
			},
		},
	}
}

func TestStatusPage(t *testing.T) {
	leakcheck.Check(t)
	st, _ := start(t)
	// One open echo connection that the page must list, with its bytes.
	echo := dial(t, st, lo4, PortEcho)
	echo.Write([]byte("hello"))
	io.ReadFull(echo, make([]byte, 5))

	hc := httpClient(st)
	resp, err := hc.Get("http://[::1]/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %s\n%s", resp.Status, page)
	}
	for _, want := range []string{
		"ustack test, up ",
		"TCP.PassiveOpens",
		"NIC lo.RxPackets",
		"Open connections: 2", // the echo connection and this request
		fmt.Sprintf("echo     127.0.0.1:7  %s", echo.LocalAddr()),
	} {
		if !strings.Contains(page, want) {
			t.Errorf("GET / does not contain %q:\n%s", want, page)
		}
	}

	// The earlier request's connection may still be closing on the
	// server's side; wait for the table to settle on these two.
	var got Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err = hc.Get("http://127.0.0.1/stats.json")
		if err != nil {
			t.Fatalf("GET /stats.json: %v", err)
		}
		got = Status{}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("decode /stats.json: %v", err)
		}
		if len(got.Connections) == 2 || time.Now().After(deadline) {
			break
		}
	}
	// At least two HTTP requests and the echo connection were accepted.
	if got.Stats.TCP.PassiveOpens < 3 || len(got.Connections) != 2 {
		t.Errorf("stats.json: PassiveOpens = %d, %d connections; want >= 3 and 2", got.Stats.TCP.PassiveOpens, len(got.Connections))
	}
	if len(got.Connections) > 0 {
		if c := got.Connections[0]; c.Service != "echo" || c.BytesIn != 5 || c.BytesOut != 5 {
			t.Errorf("stats.json: oldest connection = %+v, want echo with 5 bytes each way", c)
		}
	}

	resp, err = hc.Get("http://127.0.0.1/nope")
	if err != nil {
		t.Fatalf("GET /nope: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %s, want 404", resp.Status)
	}
}

// TestCloseWithOpenConnections checks that Close returns promptly with
// clients still connected and reading or writing, and leaves nothing
// running.
func TestCloseWithOpenConnections(t *testing.T) {
	leakcheck.Check(t)
	st, srv := start(t)
	echo := dial(t, st, lo4, PortEcho)
	echo.Write([]byte("x"))
	chargen := dial(t, st, lo6, PortChargen)
	io.ReadFull(chargen, make([]byte, 10)) // the server is mid-write
	dial(t, st, lo4, PortDiscard)
	idleHTTP := dial(t, st, lo4, PortHTTP) // never sends a request
	idleHTTP.Write([]byte("GET"))
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Conns()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.Conns()); n != 4 {
		t.Fatalf("Conns() = %d entries, want 4", n)
	}
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s with connections open")
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("Conns() after Close = %d entries, want 0", n)
	}
	// The client sees its connection end (EOF or reset), not a timeout.
	chargen.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(chargen); err != nil && strings.Contains(err.Error(), "timeout") {
		t.Errorf("chargen client after Close: %v, want the connection ended", err)
	}
}

// TestIdleWorkers checks what serving connections on reused goroutines
// promises: a burst of connections leaves at most maxIdleWorkers
// goroutines waiting for work, sequential connections reuse them instead
// of adding goroutines, and Close ends the idle ones (leakcheck).
func TestIdleWorkers(t *testing.T) {
	leakcheck.Check(t)
	st, srv := start(t)
	waitConns := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.Conns()) != n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := len(srv.Conns()); got != n {
			t.Fatalf("Conns() = %d entries, want %d", got, n)
		}
	}
	waitConns(0)
	base := runtime.NumGoroutine()

	// A burst: more echo connections open at once than may stay idle.
	const burst = 2 * maxIdleWorkers
	conns := make([]*gonet.TCPConn, burst)
	for i := range conns {
		conns[i] = dial(t, st, lo4, PortEcho)
	}
	waitConns(burst)
	for _, c := range conns {
		c.Close()
	}
	waitConns(0)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+maxIdleWorkers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+maxIdleWorkers {
		t.Fatalf("after a burst of %d connections: %d goroutines, want at most %d more than the %d before", burst, n, maxIdleWorkers, base)
	}
	if n := srv.idle.Load(); n != maxIdleWorkers {
		t.Errorf("idle workers after the burst = %d, want %d", n, maxIdleWorkers)
	}

	// Sequential connections are served by the idle workers: no new
	// worker goroutine is started for them.
	started := srv.workers.Load()
	for i := 0; i < 20; i++ {
		c := dial(t, st, lo4, PortDaytime)
		if line, err := io.ReadAll(c); err != nil || !strings.HasPrefix(string(line), fixedNow.Format("Monday")) {
			t.Fatalf("daytime %d = %q, %v", i, line, err)
		}
		c.Close()
		waitConns(0)
	}
	if n := srv.workers.Load() - started; n != 0 {
		t.Errorf("20 sequential connections started %d new worker goroutines, want 0 (idle workers reused)", n)
	}
}

func TestFullAddrPort(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   tcpip.FullAddress
		want netip.AddrPort
	}{
		{"v4", tcpip.FullAddress{Addr: tcpip.AddrFrom4([4]byte{10, 99, 0, 1}), Port: 4242}, netip.MustParseAddrPort("10.99.0.1:4242")},
		{"v6", tcpip.FullAddress{Addr: tcpip.AddrFrom16(netip.MustParseAddr("fd00:99::1").As16()), Port: 80}, netip.MustParseAddrPort("[fd00:99::1]:80")},
		{"none", tcpip.FullAddress{}, netip.AddrPort{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fullAddrPort(tc.in); got != tc.want {
				t.Errorf("fullAddrPort(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
