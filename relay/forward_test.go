package relay

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Forward
		err  bool
	}{
		{in: "8080:80", want: Forward{Proto: "tcp", HostPort: 8080, GuestPort: 80}},
		{in: "8080:80/udp", want: Forward{Proto: "udp", HostPort: 8080, GuestPort: 80}},
		{in: "127.0.0.1:8080:80/tcp", want: Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, GuestPort: 80}},
		{in: "[::1]:8080:80", want: Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("::1"), HostPort: 8080, GuestPort: 80}},
		{in: "8080", err: true},
		{in: "0:80", err: true},
		{in: "8080:70000", err: true},
		{in: "8080:80/sctp", err: true},
		{in: "host:8080:80", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseForward(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseForward(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
			}
			if err == nil {
				if back, _ := ParseForward(got.String()); back != got {
					t.Errorf("ParseForward(%q.String()=%q) = %+v, want it back", tc.in, got.String(), back)
				}
			}
		})
	}
}

// freePort returns a port that was free on addr a moment ago.
func freePort(t *testing.T, network, addr string) uint16 {
	t.Helper()
	var ap netip.AddrPort
	if strings.HasPrefix(network, "udp") {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		ap = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		pc.Close()
	} else {
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		ap = ln.Addr().(*net.TCPAddr).AddrPort()
		ln.Close()
	}
	return ap.Port()
}

// nsListen listens on the namespace stack and answers each connection
// with the source address it arrived from.
func (h *harness) nsListen(t *testing.T, guest netip.AddrPort) {
	t.Helper()
	fa, proto := full(guest)
	ln, err := gonet.ListenTCP(h.ns.GVisor(), fa, proto)
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) {
		io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String())
	})
}

func TestForwardTCP(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	h.nsListen(t, netip.AddrPortFrom(DefaultGuest4, 80))
	h.nsListen(t, netip.AddrPortFrom(DefaultGuest6, 80))
	for _, tc := range []struct{ hostIP, network, wantSrc string }{
		{"127.0.0.1", "tcp4", DefaultGateway4.String()},
		{"::1", "tcp6", DefaultGateway6.String()},
	} {
		t.Run(tc.hostIP, func(t *testing.T) {
			got, err := readThroughForward(t, h, tc.network, tc.hostIP, 80)
			if err != nil || string(got) != tc.wantSrc {
				t.Errorf("forwarded connection seen from %q (%v), want %s (loopback clients appear as the gateway)", got, err, tc.wantSrc)
			}
		})
	}
	// A port nothing listens on inside: the client gets a reset.
	if err := forwardToClosedPort(t, h, "tcp4", "127.0.0.1", 81); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("forward to a closed namespace port: %v, want connection reset", err)
	}
	if st := h.r.Stats(); st.ForwardAccepted != 2 || st.ForwardFailed != 1 {
		t.Errorf("Stats() = %+v, want 2 forwarded, 1 failed", st)
	}
}

// readThroughForward adds a TCP forward from host (on network) to
// guestPort for the test's subtest, connects through it and returns what
// the namespace's server sends until it closes.
func readThroughForward(t *testing.T, h *harness, network, host string, guestPort uint16) ([]byte, error) {
	t.Helper()
	port := freePort(t, network, net.JoinHostPort(host, "0"))
	f := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr(host), HostPort: port, GuestPort: guestPort}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	defer h.r.RemoveForward(f)
	c, err := net.DialTimeout(network, net.JoinHostPort(host, itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(c)
}

// forwardToClosedPort adds a TCP forward from host (on network) to
// guestPort, where nothing listens inside, connects to it and returns
// what the client's first read fails with (nil if it did not).
func forwardToClosedPort(t *testing.T, h *harness, network, host string, guestPort uint16) error {
	t.Helper()
	port := freePort(t, network, net.JoinHostPort(host, "0"))
	f := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr(host), HostPort: port, GuestPort: guestPort}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial(network, net.JoinHostPort(host, itoa(port)))
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	return err
}

func TestForwardUDP(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	// A namespace UDP server that answers with the sender's address.
	fa, proto := full(netip.AddrPortFrom(DefaultGuest4, 53))
	pc, err := gonet.DialUDP(h.ns.GVisor(), &fa, nil, proto)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.(*net.UDPAddr).AddrPort().Addr().String()), from)
		}
	}()
	defer func() { pc.Close(); <-done }()
	port := freePort(t, "udp4", "127.0.0.1:0")
	f := Forward{Proto: "udp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 53}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("q"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != DefaultGateway4.String() {
		t.Errorf("UDP forward reply = %q, %v; want the gateway address as the sender seen inside", buf[:n], err)
	}
}

// dialControl serves h's control API on a unix socket and returns a
// client connection with a 5 s deadline; both end with the test.
func dialControl(t *testing.T, h *harness) net.Conn {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.r.ServeControl(ln) }()
	t.Cleanup(func() { ln.Close(); <-served })
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestControlSocket(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	c := dialControl(t, h)
	rd := bufio.NewReader(c)
	call := func(req string) ControlResponse {
		t.Helper()
		io.WriteString(c, req+"\n")
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		var resp ControlResponse
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatalf("%s: bad response %q: %v", req, line, err)
		}
		return resp
	}
	port := freePort(t, "tcp4", "127.0.0.1:0")
	spec := "127.0.0.1:" + itoa(port) + ":80/tcp"
	if r := call(`{"op":"add","forward":"` + spec + `"}`); !r.OK {
		t.Fatalf("add = %+v", r)
	}
	if r := call(`{"op":"add","forward":"` + spec + `"}`); r.OK || !strings.Contains(r.Error, "already") {
		t.Errorf("add twice = %+v, want an error", r)
	}
	if r := call(`{"op":"list"}`); !r.OK || len(r.Forwards) != 1 || r.Forwards[0] != spec {
		t.Errorf("list = %+v, want [%s]", r, spec)
	}
	// The forward really listens.
	if hc, err := net.Dial("tcp4", "127.0.0.1:"+itoa(port)); err != nil {
		if !strings.Contains(err.Error(), "reset") {
			t.Errorf("dial the added forward: %v, want success or the namespace's reset", err)
		}
	} else {
		// Nothing listens inside: the namespace's reset comes back.
		hc.SetDeadline(time.Now().Add(5 * time.Second))
		hc.Read(make([]byte, 1))
		hc.Close()
	}
	if r := call(`{"op":"remove","forward":"` + spec + `"}`); !r.OK {
		t.Errorf("remove = %+v", r)
	}
	if r := call(`{"op":"list"}`); !r.OK || len(r.Forwards) != 0 {
		t.Errorf("list after remove = %+v, want none", r)
	}
	if r := call(`{"op":"stats"}`); !r.OK || r.Stats == nil || r.Stats.ForwardFailed != 1 {
		t.Errorf("stats = %+v, want counters with the one refused forward", r)
	}
	if r := call(`{"op":"frobnicate"}`); r.OK || r.Error == "" {
		t.Errorf("unknown op = %+v, want an error", r)
	}
	if r := call(`not json`); r.OK || !strings.Contains(r.Error, "bad request") {
		t.Errorf("garbage = %+v, want a bad request error", r)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// FuzzParseForward: any spec either fails or parses into a forward that
// formats and parses back to itself.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80/udp", "[::1]:1:2/tcp", "::1:1:2", "[fe80::1%eth0]:1:2", ":80", "1:2/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fw, err := ParseForward(s)
		if err != nil {
			return
		}
		back, err := ParseForward(fw.String())
		if err != nil || back != fw {
			t.Fatalf("ParseForward(%q) = %+v; its String %q parses to %+v, %v", s, fw, fw.String(), back, err)
		}
		if fw.HostPort == 0 || fw.GuestPort == 0 || (fw.Proto != "tcp" && fw.Proto != "udp") {
			t.Fatalf("ParseForward(%q) = %+v: invalid forward accepted", s, fw)
		}
	})
}
