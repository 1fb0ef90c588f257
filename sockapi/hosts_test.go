//go:build linux

package sockapi

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

func TestParseHosts(t *testing.T) {
	leakcheck.Check(t)
	const file = `# comment line
127.0.0.1	localhost
::1     localhost ip6-localhost ip6-loopback   # trailing comment
192.0.2.1 web.example.test web www   
192.0.2.2 web.example.test
  2001:db8::1	six.example.test six

192.0.2.3
127.1 short
fe80::1%lo scoped
not-an-address bogus
#192.0.2.9 commented
::ffff:192.0.2.4 mapped
192.0.2.5 Mixed.Case
`
	tab, err := parseHosts(strings.NewReader(file))
	if err != nil {
		t.Fatalf("parseHosts = %v", err)
	}
	lookups := []struct {
		name         string
		want4, want6 bool
		canon        string
		addrs        string
	}{
		{"localhost", true, true, "localhost", "127.0.0.1 ::1"},
		{"localhost", true, false, "localhost", "127.0.0.1"},
		{"ip6-loopback", true, true, "localhost", "::1"},
		{"www", true, true, "web.example.test", "192.0.2.1"},
		{"WEB.example.TEST", true, true, "web.example.test", "192.0.2.1 192.0.2.2"},
		{"six", true, true, "six.example.test", "2001:db8::1"},
		{"six", true, false, "", ""},
		{"mapped", true, true, "mapped", "::ffff:192.0.2.4"},
		{"mapped", true, false, "mapped", "192.0.2.4"},
		{"mixed.case", true, true, "Mixed.Case", "192.0.2.5"},
		{"short", true, true, "", ""},
		{"scoped", true, true, "", ""},
		{"bogus", true, true, "", ""},
		{"commented", true, true, "", ""},
		{"comment", true, true, "", ""},
		{"#", true, true, "", ""},
	}
	for _, l := range lookups {
		ans, ok := tab.lookup(l.name, l.want4, l.want6)
		var addrs []string
		for _, a := range ans.addrs {
			addrs = append(addrs, a.String())
		}
		if got := strings.Join(addrs, " "); got != l.addrs || ans.canon != l.canon || ok != (l.addrs != "") {
			t.Errorf("lookup(%q, %v, %v) = %q, %q, %v; want %q, %q", l.name, l.want4, l.want6, got, ans.canon, ok, l.addrs, l.canon)
		}
	}
	for addr, want := range map[string]string{
		"127.0.0.1": "localhost", "::1": "localhost", "192.0.2.2": "web.example.test",
		"192.0.2.3": "", "192.0.2.9": "", "::ffff:127.0.0.1": "",
	} {
		if got, ok := tab.lookupAddr(netip.MustParseAddr(addr)); got != want || ok != (want != "") {
			t.Errorf("lookupAddr(%s) = %q, %v; want %q", addr, got, ok, want)
		}
	}
}

func TestLoadHosts(t *testing.T) {
	leakcheck.Check(t)
	if tab, err := loadHosts(""); err != nil || !reflect.DeepEqual(tab, defaultHosts) {
		t.Errorf(`loadHosts("") = %v, %v; want the defaults`, tab, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if tab, err := loadHosts(missing); err != nil || len(tab.lines) != 0 {
		t.Errorf("loadHosts(missing) = %v, %v; want an empty table", tab, err)
	}
	long := filepath.Join(t.TempDir(), "long")
	if err := os.WriteFile(long, []byte("127.0.0.1 "+strings.Repeat("x", maxHostsLine)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHosts(long); err == nil {
		t.Errorf("loadHosts(a %d-byte line) succeeded, want an error", maxHostsLine)
	}
}

// TestHostsFileReread checks that a changed hosts file is seen by the
// next call, as glibc re-reads /etc/hosts.
func TestHostsFileReread(t *testing.T) {
	leakcheck.Check(t)
	s, _ := newResolverSockets(t, "192.0.2.1 a\n", ResolverConfig{})
	runGaiCases(t, s, []gaiCase{{"first", "a", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.1:0"}, 0}})
	if err := os.WriteFile(s.resolv.HostsFile, []byte("192.0.2.2 a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runGaiCases(t, s, []gaiCase{{"rewritten", "a", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.2:0"}, 0}})
}

func FuzzParseHosts(f *testing.F) {
	leakcheck.Check(f)
	f.Add("127.0.0.1 localhost\n::1 localhost ip6-localhost # c\n")
	f.Add("192.0.2.1\tweb www\n#x\n\n fe80::1%lo a\n::ffff:1.2.3.4 m\n")
	f.Fuzz(func(t *testing.T, file string) {
		tab, err := parseHosts(strings.NewReader(file))
		if err != nil {
			return
		}
		for _, l := range tab.lines {
			if !l.addr.IsValid() || len(l.names) == 0 {
				t.Fatalf("parseHosts(%q) kept line %+v", file, l)
			}
			for _, n := range l.names {
				if n == "" || strings.ContainsAny(n, " \t\n#") {
					t.Fatalf("parseHosts(%q) kept name %q", file, n)
				}
				if ans, ok := tab.lookup(n, true, true); !ok || len(ans.addrs) == 0 {
					t.Fatalf("parseHosts(%q): name %q from a line does not resolve", file, n)
				}
			}
		}
	})
}
