package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
)

// TestRunReusedTupleServedAtOnce: a command that connects again from the
// same address and port right after a connection the server closed first
// (an HTTP/1.0 server; a client with a fixed or narrow port range) must be
// served at once, as a Linux server in TIME_WAIT serves a SYN with a
// higher sequence number (RFC 1122 4.2.2.13). The relay's side of such a
// connection had closed first and sat in TIME_WAIT for a second, and
// gVisor hands a SYN that reopens a TIME_WAIT connection only to a
// listening endpoint, which the relay has none of (its forwarder takes
// connections to any address and port): each reconnection waited for the
// command's SYN retransmission, one second.
func TestRunReusedTupleServedAtOnce(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	for _, tc := range []struct{ network, listen, gw string }{
		{"tcp4", "127.0.0.1:0", "10.0.2.2"},
		{"tcp6", "[::1]:0", "fd00::2"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("hi"))
					c.Close()
				}
			}()
			t.Cleanup(func() { ln.Close(); <-done })
			port := ln.Addr().(*net.TCPAddr).Port
			qa10Run(t, bin, []string{"run", "--allow-host-loopback", "--"}, "reuse", net.JoinHostPort(tc.gw, strconv.Itoa(port)), "5")
		})
	}
}

// TestRunWithoutResolvConf: on a host with no /etc/resolv.conf, or one
// that is a symlink to a missing file (systemd-resolved's stub where
// resolved is not running, common in containers), `ustack run` failed
// before CMD ran: "bind-mount ... over /etc/resolv.conf: no such file or
// directory", status 126. Nothing needs the file to run CMD (unshare -n,
// slirp4netns and pasta do not look at it): CMD now runs, and ustack
// warns that its resolver does not know the DNS forwarder.
func TestRunWithoutResolvConf(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	for _, how := range []string{"missing", "dangling"} {
		t.Run(how, func(t *testing.T) {
			argv := append(qa10WithoutResolvConf(t, how), bin, "run", "--", "sh", "-c", "test ! -e /etc/resolv.conf && echo ran")
			res := runUstack(t, argv[0], argv[1:]...)
			if res.status != 0 || res.stdout != "ran\n" {
				t.Fatalf("ustack run with /etc/resolv.conf %s: status %d, stdout %q, stderr %q; want 0 and CMD run", how, res.status, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, "warning: /etc/resolv.conf is missing") {
				t.Errorf("stderr %q does not warn about the missing /etc/resolv.conf", res.stderr)
			}
		})
	}
}

// TestRunRouteErrorsAsBehindARouter: CMD sits behind ustack as behind a
// router, so a destination the host cannot reach must fail for CMD as it
// would behind a Linux router with the host's routes (measured with a
// forwarding namespace holding the same routes: ip_error and
// ip6_pkt_discard). A blackhole route drops in silence (CMD's connect
// times out); a prohibit route answers "administratively prohibited"
// (EHOSTUNREACH on IPv4, EACCES on IPv6); no route answers "network
// unreachable". UDP too, as a connected socket with IP_RECVERR sees it.
// ustack answered the blackhole and prohibit routes with a reset
// (ECONNREFUSED, as if the host were there with the port closed) and
// every UDP failure with port unreachable (ECONNREFUSED too).
func TestRunRouteErrorsAsBehindARouter(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := qa10RoutedNS(t)
	want := map[string]string{
		"198.51.100.1:80":     "tcp=timeout udp=timeout",
		"198.51.100.65:80":    "tcp=EHOSTUNREACH udp=EHOSTUNREACH",
		"203.0.113.1:80":      "tcp=ENETUNREACH udp=ENETUNREACH",
		"[2001:db8:13::1]:80": "tcp=timeout udp=timeout",
		"[2001:db8:14::1]:80": "tcp=EACCES udp=EACCES",
		"[2001:db8:16::1]:80": "tcp=ENETUNREACH udp=ENETUNREACH",
	}
	var dsts []string
	for d := range want {
		dsts = append(dsts, d)
	}
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "errors", dsts...)
	got := qa10ByDest(res.stdout, " ")
	for d, w := range want {
		if got[d] != w {
			t.Errorf("%s: %q; want %q, as behind a Linux router", d, got[d], w)
		}
	}
}

// qa10ByDest maps each line "DEST" sep "OUTCOME" of out, a destination
// first, to its outcome.
func qa10ByDest(out, sep string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if d, outcome, ok := strings.Cut(line, sep); ok {
			got[d] = outcome
		}
	}
	return got
}

// TestRunPingRouteErrorsAsBehindARouter: a ping the host cannot send
// (its routes refuse the destination) got no answer at all from ustack;
// behind a Linux router with the host's routes ping prints the router's
// unreachable message, and now does so from the gateway. A blackhole
// route stays silent, as there. Only an error the host really got is
// passed on; a reply is still never made up.
func TestRunPingRouteErrorsAsBehindARouter(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping")
	ns := qa10RoutedNS(t)
	want := map[string]string{
		"198.51.100.1":   "",
		"198.51.100.65":  "From 10.0.2.2 icmp_seq=1 Packet filtered",
		"203.0.113.1":    "From 10.0.2.2 icmp_seq=1 Destination Net Unreachable",
		"2001:db8:13::1": "",
		"2001:db8:14::1": "From fd00::2 icmp_seq=1 Destination unreachable: Administratively prohibited",
		"2001:db8:16::1": "From fd00::2 icmp_seq=1 Destination unreachable: No route",
	}
	var script strings.Builder
	for d := range want {
		fmt.Fprintf(&script, "ping -n -c 1 -W 1 %s | grep -E '^From|bytes from' | sed 's/^/%s: /' &\n", d, d)
	}
	script.WriteString("wait\n")
	res := runUstack(t, "ip", "netns", "exec", ns.Name, bin, "run", "--", "sh", "-c", script.String())
	got := qa10ByDest(res.stdout, ": ")
	for d, w := range want {
		if got[d] != w {
			t.Errorf("ping %s: %q; want %q, as behind a Linux router\nstdout: %s\nstderr: %s", d, got[d], w, res.stdout, res.stderr)
		}
	}
}

// TestRunTTLSpentAtGateway: a packet CMD sends with TTL 1 (traceroute's
// first probe; ping -t 1) to a destination outside was relayed, so
// traceroute found the destination itself one hop away. The gateway is a
// router hop: like a Linux router (measured: a forwarding namespace) it
// now answers ICMP time exceeded, from its own address, and relays
// nothing; a SYN with TTL 1 fails with EHOSTUNREACH as behind that
// router. Packets to the gateway's own addresses are still taken.
func TestRunTTLSpentAtGateway(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	// In a namespace of the test's with no route out, so that nothing a
	// regression relays leaves the machine.
	ns := roottest.Netns(t)
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "ttl1", "198.51.100.1:33434", "[2001:db8::1]:33434", "10.0.2.2:33434")
	want := []string{
		"198.51.100.1:33434 udp=EHOSTUNREACH/11/0/10.0.2.2 tcp=EHOSTUNREACH",
		"[2001:db8::1]:33434 udp=EHOSTUNREACH/3/0/fd00::2 tcp=EHOSTUNREACH",
		// The gateway itself, not a hop further: its own refusal (no
		// --allow-host-loopback), port unreachable and a reset.
		"10.0.2.2:33434 udp=ECONNREFUSED/3/3/10.0.2.2 tcp=ECONNREFUSED",
	}
	if got := strings.Split(strings.TrimSpace(res.stdout), "\n"); !slices.Equal(got, want) {
		t.Errorf("TTL 1 from inside:\n got %q\nwant %q", got, want)
	}
}

// TestRunHostConnectionBrokenIsReset: when the relay's host connection
// breaks (aborted here with ss -K, as by a firewall or conntrack flush;
// likewise timed out or unreachable), CMD's connection was closed with a
// FIN: its read returned EOF as if the server had finished, and a
// transfer cut short read as complete. CMD now gets a reset
// (ECONNRESET), the nearest a relay can say "the connection broke".
func TestRunHostConnectionBrokenIsReset(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "ss")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverSaw := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverSaw <- err
			return
		}
		defer c.Close()
		c.Write([]byte("partial"))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Read(make([]byte, 1))
		serverSaw <- err
	}()
	t.Cleanup(func() { ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("QA10_HELPER", "readtwice")
	cmd, out := runStart(t, bin, "run", "--allow-host-loopback", "--", self, "10.0.2.2:"+port)
	os.Unsetenv("QA10_HELPER")
	runEventually(t, "CMD reads the first bytes", func() error {
		if !strings.Contains(out.String(), "got \"partial\"") {
			return fmt.Errorf("output so far %q", out.String())
		}
		return nil
	})
	// Abort the relay's host socket (its destination is the server).
	if b, err := exec.Command("ss", "-K", "dst", "127.0.0.1", "dport", "=", port).CombinedOutput(); err != nil {
		t.Fatalf("ss -K: %v: %s", err, b)
	}
	if err := <-serverSaw; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server's read after ss -K: %v; want ECONNRESET (the host socket was not aborted: no SOCK_DESTROY in this kernel?)", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("ustack run did not end; output %q", out.String())
	}
	if !strings.Contains(out.String(), "then ECONNRESET") {
		t.Errorf("CMD's read after its relayed connection broke: output %q; want ECONNRESET, not EOF", out.String())
	}
}

// TestRunSubnetBroadcastNotRelayed: a datagram CMD broadcasts on its
// subnet (10.0.2.255, SO_BROADCAST: service discovery, DHCP-like
// probes) was relayed as if 10.0.2.255 were a unicast address out on the
// host's network (dialled there; in this namespace with no route out it
// came back network unreachable), and one with TTL 1 was answered with
// time exceeded. A router takes its subnet's broadcast as its own and
// forwards nothing, and no ICMP error ever answers a broadcast (RFC 1122
// 3.2.2). TCP to it never leaves CMD's kernel.
func TestRunSubnetBroadcastNotRelayed(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--debug", "--"}, "errors", "10.0.2.255:9")
	if got, want := strings.TrimSpace(res.stdout), "10.0.2.255:9 tcp=ENETUNREACH udp=timeout"; got != want {
		t.Errorf("to the subnet broadcast: %q; want %q", got, want)
	}
	res = qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--debug", "--"}, "ttl1", "10.0.2.255:9")
	if got, want := strings.TrimSpace(res.stdout), "10.0.2.255:9 udp=timeout tcp=ENETUNREACH"; got != want {
		t.Errorf("to the subnet broadcast with TTL 1: %q; want %q", got, want)
	}
	if strings.Contains(res.stderr, "10.0.2.255") {
		t.Errorf("ustack logged a flow to the broadcast address: %s", res.stderr)
	}
}

// TestRunIPv4OnlyHostIPv6Unreachable: on a host without IPv6 (disabled,
// or no address of that family: the host's sockets say EADDRNOTAVAIL),
// CMD's IPv6 connections were refused (a reset, ECONNREFUSED, as if a
// server were there with its port closed) and its datagrams answered
// with port unreachable. A router without IPv6 connectivity answers "no
// route" (ENETUNREACH), which is what CMD now gets; its programs move
// to IPv4 either way.
func TestRunIPv4OnlyHostIPv6Unreachable(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	ns.Run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "errors", "[2001:db8::1]:80")
	if got, want := strings.TrimSpace(res.stdout), "[2001:db8::1]:80 tcp=ENETUNREACH udp=ENETUNREACH"; got != want {
		t.Errorf("IPv6 from inside on a host without IPv6: %q; want %q", got, want)
	}
}

// TestRunHostOutOfPortsStillRefused: EADDRNOTAVAIL from the host also
// means it ran out of ephemeral ports (one port here, held by a first
// connection); that is not "no route", and CMD's connection is still
// reset as before, not answered network unreachable.
func TestRunHostOutOfPortsStillRefused(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	ns.Run("sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40000")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := ns.Command(context.Background(), "env", "QA10_HELPER=listen", self, "127.0.0.1:17380")
	out := &runOutput{}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	runEventually(t, "the server in the namespace listens", func() error {
		if !strings.Contains(out.String(), "listening") {
			return fmt.Errorf("output so far %q", out.String())
		}
		return nil
	})
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--allow-host-loopback", "--"}, "holdthen", "10.0.2.2:17380")
	if got, want := strings.TrimSpace(res.stdout), "second tcp=ECONNREFUSED"; got != want {
		t.Errorf("a connection the host has no port left for: %q; want %q", got, want)
	}
}
