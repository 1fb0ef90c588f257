package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/internal/services"
	"github.com/ustack/ustack/tun"
)

// drivers are the TUN packet paths every end-to-end test runs over.
var drivers = []tun.Driver{tun.DriverVnet, tun.DriverWater}

// mtus are the device MTUs every end-to-end test runs with: Ethernet's,
// and the largest a TUN offers with room for a 64 KiB segment.
var mtus = []int{1500, 65520}

// forEachLink runs f as a subtest per driver and MTU.
func forEachLink(t *testing.T, f func(t *testing.T, driver tun.Driver, mtu int)) {
	for _, d := range drivers {
		for _, mtu := range mtus {
			t.Run(fmt.Sprintf("%s/mtu%d", d, mtu), func(t *testing.T) { f(t, d, mtu) })
		}
	}
}

// TestServe runs `ustack serve` in a fresh namespace per driver and MTU and
// uses every service from the namespace's kernel, then stops it.
func TestServe(t *testing.T) {
	roottest.RequireCommand(t, "ping", "curl", "socat")
	forEachLink(t, func(t *testing.T, driver tun.Driver, mtu int) {
		leakcheck.Check(t)
		ns := roottest.Netns(t)
		p := startServe(t, ns, "--tun-driver", string(driver), "--mtu", strconv.Itoa(mtu))
		t.Run("ping", func(t *testing.T) { testPing(t, ns) })
		t.Run("tcp-echo", func(t *testing.T) { testTCPEcho(t, ns) })
		t.Run("udp-echo", func(t *testing.T) { testUDPEcho(t, ns) })
		t.Run("daytime-chargen", func(t *testing.T) { testDaytimeChargen(t, ns) })
		t.Run("http", func(t *testing.T) { testHTTP(t, ns) })
		t.Run("200-conns", func(t *testing.T) { test200Conns(t, ns) })
		t.Run("stop", func(t *testing.T) { testStopWithOpenConns(t, ns, p, mtu) })
	})
}

func testPing(t *testing.T, ns *roottest.NS) {
	for _, argv := range [][]string{
		{"ping", "-c", "3", "-i", "0.2", "-W", "2", stackV4.Addr().String()},
		{"ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", stackV6.Addr().String()},
		// 8000 bytes cross a 1500-byte MTU in fragments both ways.
		{"ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "8000", stackV4.Addr().String()},
		{"ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "8000", stackV6.Addr().String()},
	} {
		out := ns.Run(argv...)
		if !strings.Contains(out, " 0% packet loss") {
			t.Errorf("%s: lost replies:\n%s", strings.Join(argv, " "), out)
		}
	}
}

// testTCPEcho sends 64 MiB through echo over IPv4 (and 8 MiB over IPv6)
// from a kernel client and compares SHA-256 both ways.
func testTCPEcho(t *testing.T, ns *roottest.NS) {
	checkEcho(t, dialIn(t, ns, "tcp", addrPort(stackV4, services.PortEcho)), 64<<20, 2*time.Minute)
	checkEcho(t, dialIn(t, ns, "tcp", addrPort(stackV6, services.PortEcho)), 8<<20, time.Minute)
}

func testUDPEcho(t *testing.T, ns *roottest.NS) {
	for _, a := range []netip.AddrPort{addrPort(stackV4, services.PortEcho), addrPort(stackV6, services.PortEcho)} {
		c := dialIn(t, ns, "udp", a)
		// 8000 and 65000 bytes are IP-fragmented at MTU 1500.
		checkUDPEcho(t, c, 1, 1200, 8000, 65000)
		c.Close()
	}
	// socat as a second, non-Go kernel client.
	out := ns.Run("sh", "-c", "echo hello over socat | socat -t 0.5 - UDP6:[fd00:99::2]:7")
	if out != "hello over socat\n" {
		t.Errorf("socat UDP6 echo = %q, want %q", out, "hello over socat\n")
	}
}

// daytimeRE matches RFC 867's example format, which serve uses.
var daytimeRE = regexp.MustCompile(`^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-[A-Z]+\r\n$`)

func testDaytimeChargen(t *testing.T, ns *roottest.NS) {
	c := dialIn(t, ns, "tcp", addrPort(stackV6, services.PortDaytime))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !daytimeRE.Match(got) {
		t.Errorf("daytime over TCP = %q, %v; want a date like RFC 867's and the server's close", got, err)
	}
	u := dialIn(t, ns, "udp", addrPort(stackV4, services.PortDaytime))
	defer u.Close()
	buf := make([]byte, 512)
	var n int
	for try := 0; try < 3; try++ {
		u.Write([]byte("time?"))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err = u.Read(buf); err == nil {
			break
		}
	}
	if err != nil || !daytimeRE.Match(buf[:n]) {
		t.Errorf("daytime over UDP = %q, %v; want a date like RFC 867's", buf[:n], err)
	}
	c = dialIn(t, ns, "tcp", addrPort(stackV4, services.PortChargen))
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	lines := make([]byte, 2*74)
	if _, err := io.ReadFull(c, lines); err != nil {
		t.Fatalf("chargen: %v", err)
	}
	// RFC 864: 72 printable characters from ' ' on, then from '!' on.
	want := ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefg\r\n" +
		`!"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefgh\r\n"
	if string(lines) != want {
		t.Errorf("chargen's first lines = %q, want %q", lines, want)
	}
}

// testHTTP fetches the status page with curl and checks that it shows
// the traffic the test just caused and lists curl's own connection.
func testHTTP(t *testing.T, ns *roottest.NS) {
	c := dialIn(t, ns, "tcp", addrPort(stackV4, services.PortDiscard))
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("write to discard: %v", err)
	}
	defer c.Close()

	page := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "--local-port", "40123", "http://10.99.0.2/")
	for _, re := range []string{
		`(?m)^http\s+10\.99\.0\.2:80\s+10\.99\.0\.1:40123\s`, // curl's connection, from the stack's side
		`(?m)^discard\s+10\.99\.0\.2:9\s+10\.99\.0\.1:\d+\s`,
	} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("status page does not match %s:\n%s", re, page)
		}
	}
	if rx := counter(t, page, "NIC "+devName+".RxBytes"); rx < 1<<20 {
		t.Errorf("status page: NIC %s.RxBytes = %d after 1 MiB was sent to discard, want >= %d", devName, rx, 1<<20)
	}
	if n := counter(t, page, "TCP.PassiveOpens"); n < 2 {
		t.Errorf("status page: TCP.PassiveOpens = %d, want >= 2 (discard and this request)", n)
	}

	js := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "-g", "http://[fd00:99::2]/stats.json")
	var st services.Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("stats.json: %v\n%s", err, js)
	}
	if len(st.Connections) < 2 || st.Stats.TCP.CurrentEstablished < 2 {
		t.Errorf("stats.json: %d connections, TCP.CurrentEstablished %d; want >= 2 each (discard and this request)",
			len(st.Connections), st.Stats.TCP.CurrentEstablished)
	}
}

// counter reads "name value" from the status page.
func counter(t *testing.T, page, name string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(\d+)$`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("status page has no counter %s:\n%s", name, page)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// test200Conns opens 200 connections to echo at once, has each echo its
// own message while all are open, checks the status page counts them, and
// closes them.
func test200Conns(t *testing.T, ns *roottest.NS) {
	const n = 200
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := addrPort(stackV4, services.PortEcho)
			if i%2 == 1 {
				a = addrPort(stackV6, services.PortEcho)
			}
			c, err := tryDialIn(ns, "tcp", a)
			if err != nil {
				errs <- fmt.Errorf("conn %d: dial %v: %w", i, a, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(time.Minute))
			msg := []byte(strings.Repeat(fmt.Sprintf("connection %03d ", i), 200))
			if _, err := c.Write(msg); err != nil {
				errs <- fmt.Errorf("conn %d: write: %w", i, err)
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
				errs <- fmt.Errorf("conn %d: echo = %.40q..., %v; want its own message back", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Connections of earlier subtests may take a moment to be gone.
	echo := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		echo = countService(t, ns, "echo")
		if echo == n || time.Now().After(deadline) {
			break
		}
	}
	if echo != n {
		t.Errorf("stats.json lists %d open echo connections with %d open, want %d", echo, n, n)
	}
}

// countService counts the open connections of a service on the status page.
func countService(t *testing.T, ns *roottest.NS, service string) int {
	t.Helper()
	js := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "http://10.99.0.2/stats.json")
	var st services.Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	n := 0
	for _, c := range st.Connections {
		if c.Service == service {
			n++
		}
	}
	return n
}

// testStopWithOpenConns stops serve (SIGTERM, or SIGINT on the 65520
// runs) while a chargen client is not reading (serve blocked in a write)
// and an echo client is idle; serve must still exit 0 and remove the
// device, and both clients must see their connection end.
func testStopWithOpenConns(t *testing.T, ns *roottest.NS, p *serveProc, mtu int) {
	chargen := dialIn(t, ns, "tcp", addrPort(stackV4, services.PortChargen))
	defer chargen.Close()
	idle := dialIn(t, ns, "tcp", addrPort(stackV6, services.PortEcho))
	defer idle.Close()
	time.Sleep(200 * time.Millisecond) // let chargen fill the window
	var sig os.Signal = syscall.SIGTERM
	if mtu != 1500 {
		sig = syscall.SIGINT
	}
	p.stop(t, sig)
	for name, c := range map[string]net.Conn{"chargen": chargen, "echo": idle} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s client: connection still open 10s after serve exited", name)
		}
	}
}
