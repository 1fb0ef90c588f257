package services

import (
	"context"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// TestMaxConnsResetsTheRest: the small TCP services had no limit on
// concurrent connections, and each costs serve a goroutine and 12-24 KB
// idle, and about 190 KB for a chargen client that never reads (gVisor's
// send buffer): 10,000 such clients would take about 2 GB, where a kernel
// inetd stops at its descriptor limit. Past Config.MaxConns, a new
// connection is reset at once and counted; the status page still answers,
// and a slot freed is used again.
func TestMaxConnsResetsTheRest(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	srv, err := Start(Config{Stack: st, Addrs: []netip.Addr{lo4}, Version: "test", MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	held := []io.ReadWriteCloser{dial(t, st, lo4, PortEcho), dial(t, st, lo4, PortChargen), dial(t, st, lo4, PortDiscard)}
	for deadline := time.Now().Add(5 * time.Second); len(srv.Conns()) < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	// On loopback the reset can come before connect returns.
	fa, proto := fullAddress(lo4, PortEcho)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	over, err := gonet.DialContextTCP(ctx, st.GVisor(), fa, proto)
	cancel()
	if err == nil {
		defer over.Close()
		over.SetDeadline(time.Now().Add(5 * time.Second))
		// The reset fails whichever call meets it first; a gonet
		// connection reports it once, and EOF after.
		if _, err = over.Write([]byte("x")); err == nil {
			_, err = over.Read(make([]byte, 1))
		}
	}
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("a 4th connection with MaxConns 3: %v; want a reset", err)
	}

	resp, err := httpClient(st).Get("http://127.0.0.1/")
	if err != nil {
		t.Fatalf("GET / with the services full: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `(?m)^Services\.ConnLimitReset +1$`; !regexp.MustCompile(want).Match(body) {
		t.Errorf("GET / does not match %s:\n%s", want, body)
	}

	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Conns()) > 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	again := dial(t, st, lo4, PortEcho)
	again.Write([]byte("y"))
	if _, err := io.ReadFull(again, make([]byte, 1)); err != nil {
		t.Errorf("echo after a slot was freed: %v", err)
	}
}
