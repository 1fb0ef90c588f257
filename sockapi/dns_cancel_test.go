//go:build linux

package sockapi

import (
	"context"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
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
