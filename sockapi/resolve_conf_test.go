//go:build linux

package sockapi

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

func TestParseResolvConf(t *testing.T) {
	leakcheck.Check(t)
	const file = `# generated
; also a comment
nameserver 192.0.2.53
nameserver fe80::1%eth0
nameserver not-an-address
nameserver 2001:db8::53
nameserver 192.0.2.54
domain first.test
search a.test b.test
options ndots:3 timeout:2 attempts:9 rotate unknown:1 ndots:x
bogus line
`
	cfg, err := ParseResolvConf(strings.NewReader(file))
	if err != nil {
		t.Fatalf("ParseResolvConf = %v", err)
	}
	want := ResolverConfig{
		Nameservers: []netip.AddrPort{
			netip.MustParseAddrPort("192.0.2.53:53"),
			netip.MustParseAddrPort("[fe80::1%eth0]:53"),
			netip.MustParseAddrPort("[2001:db8::53]:53"),
		},
		Search:   []string{"a.test", "b.test"},
		Ndots:    3,
		Timeout:  2 * time.Second,
		Attempts: maxAttempts,
		Rotate:   true,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ParseResolvConf = %+v\nwant %+v", cfg, want)
	}
	cfg, _ = ParseResolvConf(strings.NewReader("search a.test\ndomain d.test\n"))
	if !reflect.DeepEqual(cfg.Search, []string{"d.test"}) {
		t.Errorf("a later domain line: Search = %q, want [d.test]", cfg.Search)
	}
}
