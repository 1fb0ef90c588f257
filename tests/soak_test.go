package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
)

// serveFigures is what must stay flat in a `ustack serve` that runs for
// days under churn.
type serveFigures struct {
	goroutines  uint64 // from the status page
	endpoints   uint64 // the stack's, cleanup stage included
	established uint64
	fds         int // /proc/PID/fd
}

func readServeFigures(t *testing.T, ns *roottest.NS, p *serveProc) serveFigures {
	t.Helper()
	c := dialIn(t, ns, "tcp", netip.AddrPortFrom(stackV4.Addr(), 80))
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// HTTP/1.1, so that this side closes first and keeps the TIME_WAIT:
	// serve's would count in the very figures read.
	fmt.Fprint(c, "GET /stats.json HTTP/1.1\r\nHost: soak\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET /stats.json: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Stats struct {
			TCP struct{ CurrentEstablished uint64 }
		} `json:"stats"`
		Endpoints struct{ Registered, Cleanup uint64 } `json:"endpoints"`
		Runtime   struct {
			Goroutines uint64 `json:"goroutines"`
		} `json:"runtime"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// The request reading them is one established connection with one
	// goroutine; leave it out.
	return serveFigures{
		goroutines:  st.Runtime.Goroutines - 1,
		endpoints:   st.Endpoints.Registered + st.Endpoints.Cleanup - 1,
		established: st.Stats.TCP.CurrentEstablished - 1,
		fds:         len(ents),
	}
}

// TestServeSoak is the CI-sized soak of `ustack serve` (tests/soak -mode
// serve is the long one): warm up with every service over both families
// (connections that finish, that reset midway, that abandon chargen with
// data unread, refused ones, HTTP, UDP from fresh ports), take serve's
// figures, churn ten times as much again, and require goroutines,
// endpoints, connections and descriptors back at the warm-up figures.
// Serve's idle workers and TIME_WAIT (1 s) both end within the wait.
func TestServeSoak(t *testing.T) {
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	p := startServe(t, ns)
	// At rest: every listener and nothing else.
	settle := func(want serveFigures) serveFigures {
		deadline := time.Now().Add(30 * time.Second)
		for {
			f := readServeFigures(t, ns, p)
			if f.goroutines <= want.goroutines && f.endpoints <= want.endpoints && f.established == 0 && f.fds <= want.fds {
				return f
			}
			if time.Now().After(deadline) {
				return f
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	start := readServeFigures(t, ns, p)
	const warm, churn = 10, 100
	for i := range warm {
		serveSoakCycle(t, ns, i)
	}
	// Back to the listeners alone, with up to the warm-up's idle workers.
	base := settle(serveFigures{goroutines: start.goroutines + 8, endpoints: start.endpoints, fds: start.fds})
	for i := range churn {
		serveSoakCycle(t, ns, i)
	}
	got := settle(base)
	if got.goroutines > base.goroutines || got.endpoints > base.endpoints || got.established != 0 || got.fds > base.fds {
		t.Errorf("after %d more cycles: goroutines %d, endpoints %d, established %d, fds %d; want at most %d, %d, 0, %d (after the warm-up)",
			churn, got.goroutines, got.endpoints, got.established, got.fds, base.goroutines, base.endpoints, base.fds)
	}
}

func serveSoakCycle(t *testing.T, ns *roottest.NS, i int) {
	t.Helper()
	addr := stackV4.Addr()
	if i%2 == 1 {
		addr = stackV6.Addr()
	}
	at := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(addr, port) }
	deadline := time.Now().Add(20 * time.Second)

	echo := dialIn(t, ns, "tcp", at(7))
	echo.SetDeadline(deadline)
	msg := make([]byte, 10000+i)
	go echo.Write(msg)
	if _, err := io.ReadFull(echo, make([]byte, len(msg))); err != nil {
		t.Fatalf("echo: %v", err)
	}
	echo.Close()

	day := dialIn(t, ns, "tcp", at(13))
	day.SetDeadline(deadline)
	if b, err := io.ReadAll(day); err != nil || len(b) == 0 {
		t.Fatalf("daytime: %q, %v", b, err)
	}
	day.Close()

	disc := dialIn(t, ns, "tcp", at(9))
	if _, err := disc.Write(make([]byte, 50000)); err != nil {
		t.Fatalf("discard: %v", err)
	}
	disc.Close()

	// chargen abandoned with data unread: the kernel resets.
	gen := dialIn(t, ns, "tcp", at(19))
	gen.SetDeadline(deadline)
	if _, err := io.ReadFull(gen, make([]byte, 1000)); err != nil {
		t.Fatalf("chargen: %v", err)
	}
	gen.Close()

	// An echo client that resets midway.
	rst := dialIn(t, ns, "tcp", at(7)).(*net.TCPConn)
	rst.Write(make([]byte, 30000))
	rst.SetLinger(0)
	rst.Close()

	web := dialIn(t, ns, "tcp", at(80))
	web.SetDeadline(deadline)
	fmt.Fprint(web, "GET / HTTP/1.0\r\n\r\n")
	if b, err := io.ReadAll(web); err != nil || len(b) == 0 {
		t.Fatalf("http: %d bytes, %v", len(b), err)
	}
	web.Close()

	if c, err := tryDialIn(ns, "tcp", at(1)); err == nil {
		c.Close()
		t.Fatal("a connection to port 1 succeeded")
	}

	u := dialIn(t, ns, "udp", at(7))
	u.SetDeadline(deadline)
	if _, err := u.Write([]byte("ping")); err != nil {
		t.Fatalf("udp echo: %v", err)
	}
	if _, err := u.Read(make([]byte, 16)); err != nil {
		t.Fatalf("udp echo: %v", err)
	}
	u.Close()
}
