package main

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
)

// TestHostResolversDefaultToLoopback: a host resolv.conf that lists no
// nameserver (only search/options lines, comments, an empty file) or
// that is missing makes the host's own programs ask a nameserver on
// loopback (resolv.conf(5): "the default is to use the name server on the
// local machine"; glibc asks 127.0.0.1, Go's resolver 127.0.0.1 then
// ::1). The DNS forwarder had no upstream at all then and refused every
// query from CMD though the host resolved names; it now asks the same
// loopback nameservers the host's programs do.
func TestHostResolversDefaultToLoopback(t *testing.T) {
	dir := t.TempDir()
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[::1]:53")}
	for name, content := range map[string]string{
		"empty":        "",
		"options only": "search example.org\noptions edns0 trust-ad\n",
		"comments":     "# nameserver 192.0.2.53\n; nameserver 192.0.2.54\n",
		"bad address":  "nameserver localhost\n",
	} {
		path := filepath.Join(dir, name)
		writeFile(t, path, content)
		if got := hostResolvers(path); !slices.Equal(got, want) {
			t.Errorf("hostResolvers(%q) = %v, want %v", content, got, want)
		}
	}
	if got := hostResolvers(filepath.Join(dir, "missing")); !slices.Equal(got, want) {
		t.Errorf("hostResolvers(missing file) = %v, want %v", got, want)
	}
	// Listed nameservers are used as listed, none added.
	path := filepath.Join(dir, "listed")
	writeFile(t, path, "nameserver 127.0.0.53\noptions edns0\n")
	if got := hostResolvers(path); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}) {
		t.Errorf("hostResolvers(systemd-resolved stub) = %v, want [127.0.0.53:53]", got)
	}
}
