//go:build linux

package sockapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// A Dialer's lookup must end when its context is cancelled, not when the
// nameserver's minute-long timeout runs out.
func TestDNSLookupCancelled(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Timeout: time.Minute}, "127.0.0.1:53")
	ds[0].setSilent(true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.netLookupAddrinfo(ctx, "www.test", "80", &AddrInfo{Socktype: 1})
	if err == nil {
		t.Fatalf("lookup with a silent server = nil error, want one")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("lookup returned %v after cancel at 100ms, want promptly", d)
	}
}

// TestDNSLookupCancelledOverTCP: the same when the answer was truncated
// and the query went on over TCP to a server that does not answer: the
// TCP exchange ends with the context too, not at the query's timeout.
func TestDNSLookupCancelledOverTCP(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Timeout: 10 * time.Second}, "127.0.0.1:53")
	var rrs []string
	for i := 1; i <= 40; i++ {
		rrs = append(rrs, fmt.Sprintf("A 192.0.2.%d", i))
	}
	ds[0].add("big.test.", rrs...) // too big for UDP: truncated, then TCP
	ds[0].setTCPMute(true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.netLookupAddrinfo(ctx, "big.test", "80", &AddrInfo{Socktype: 1})
	if err == nil {
		t.Fatalf("lookup with a mute TCP server = nil error, want one")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("lookup returned %v after cancel at 200ms, want promptly", d)
	}
	wantQueries(t, ds[0], "udp A big.test.")
}

// TestCloseAllEndsLookups: CloseAll wakes every blocked call, and a
// Getaddrinfo, Getnameinfo or a Dialer's lookup waiting for a silent
// nameserver is one: it ends at once with EAI_AGAIN (the nameserver's
// minute-long timeout would otherwise keep it, and the caller's
// goroutine, after the Sockets were closed). Lookups made afterwards
// work.
func TestCloseAllEndsLookups(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Timeout: time.Minute}, "127.0.0.1:53")
	ds[0].add("www.test.", "A 192.0.2.10")
	ds[0].setSilent(true)
	errs := make(chan error, 3)
	go func() {
		_, err := s.Getaddrinfo("www.test", "80", nil)
		errs <- err
	}()
	go func() {
		_, _, err := s.Getnameinfo(&unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 10}}, NI_NAMEREQD)
		errs <- err
	}()
	go func() {
		_, err := (&Dialer{Sockets: s}).Dial("tcp", "www.test:80")
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	s.CloseAll()
	for range 3 {
		select {
		case err := <-errs:
			var eai *AddrinfoError
			var dnsErr *net.DNSError
			if !(errors.As(err, &eai) && eai.Code == EAI_AGAIN) && !errors.As(err, &dnsErr) {
				t.Errorf("lookup ended by CloseAll = %v, want EAI_AGAIN or a *net.DNSError", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a lookup still waits 5s after CloseAll")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("lookups ended %v after CloseAll, want at once", d)
	}
	ds[0].setSilent(false)
	if ais, err := s.Getaddrinfo("www.test", "80", &AddrInfo{Socktype: unix.SOCK_STREAM}); err != nil || len(ais) != 1 {
		t.Errorf("Getaddrinfo after CloseAll = %v, %v; want 192.0.2.10", ais, err)
	}
}
