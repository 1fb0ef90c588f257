//go:build linux

package sockapi

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// hostsTable is a parsed file in /etc/hosts format, answering as glibc's
// files backend does with "multi on" (Debian's /etc/host.conf): a name
// lookup collects the addresses of every line naming it, in file order,
// and its canonical name is the first name of the first such line.
type hostsTable struct {
	lines []hostsLine
}

// hostsLine is one entry: an address, its canonical name and aliases.
type hostsLine struct {
	addr  netip.Addr
	names []string // names[0] is the canonical name
}

// defaultHosts is the table without a hosts file: the loopback names of
// Debian's default /etc/hosts.
var defaultHosts = &hostsTable{lines: []hostsLine{
	{netip.MustParseAddr("127.0.0.1"), []string{"localhost"}},
	{netip.MustParseAddr("::1"), []string{"localhost", "ip6-localhost", "ip6-loopback"}},
}}

// maxHostsLine bounds one line, as a guard against a file that is not a
// hosts file; glibc reads lines of any length.
const maxHostsLine = 64 << 10

// parseHosts reads a hosts file. Text from '#' to the end of a line is a
// comment; a line is an address followed by one or more names separated
// by white space (C's isspace: non-ASCII bytes belong to names). As in glibc, a line whose address inet_pton rejects (which
// includes IPv6 scopes and the short IPv4 forms inet_aton takes) or that
// has no name is skipped; an over-long line is an error.
func parseHosts(r io.Reader) (*hostsTable, error) {
	t := &hostsTable{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxHostsLine)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.FieldsFunc(line, isCSpace)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || a.Zone() != "" {
			continue
		}
		t.lines = append(t.lines, hostsLine{addr: a, names: f[1:]})
	}
	return t, sc.Err()
}

// loadHosts reads the hosts file at path; "" is the default table. A
// missing file is an empty table, as glibc treats a missing /etc/hosts.
func loadHosts(path string) (*hostsTable, error) {
	if path == "" {
		return defaultHosts, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &hostsTable{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseHosts(f)
}

// lookup returns the addresses of name (compared without regard to case)
// in the wanted families, and the canonical name; ok is false when no
// line matches. A v4-mapped IPv6 entry is IPv6 when IPv6 is wanted, else
// the IPv4 address, as glibc's files backend answers.
func (t *hostsTable) lookup(name string, want4, want6 bool) (hostAnswer, bool) {
	var ans hostAnswer
	for _, l := range t.lines {
		a := l.addr
		if a.Is4In6() && !want6 {
			a = a.Unmap()
		}
		if a.Is4() && !want4 || a.Is6() && !want6 || !l.hasName(name) {
			continue
		}
		if ans.canon == "" {
			ans.canon = l.names[0]
		}
		ans.addrs = append(ans.addrs, a)
	}
	return ans, len(ans.addrs) > 0
}

func (l *hostsLine) hasName(name string) bool {
	for _, n := range l.names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// lookupAddr returns the canonical name of the first line for a, which
// must match in family too (::ffff:127.0.0.1 does not find 127.0.0.1).
func (t *hostsTable) lookupAddr(a netip.Addr) (string, bool) {
	for _, l := range t.lines {
		if l.addr == a {
			return l.names[0], true
		}
	}
	return "", false
}

func isCSpace(r rune) bool { return r < 0x80 && isSpace(byte(r)) }
