//go:build linux

package sockapi

import (
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestHostResolver checks the host resolver on answers that do not
// depend on the host's configuration (beyond localhost being 127.0.0.1);
// the kernel branch's differential tests compare it with the userspace
// resolver at large.
func TestHostResolver(t *testing.T) {
	leakcheck.Check(t)
	var r hostResolver
	cases := []gaiCase{
		{"numeric", "127.0.0.1", "http", h(0, 0, 0, 0), []string{"1/6 127.0.0.1:80"}, 0},
		{"numeric v6 scoped", "fe80::1%1", "22", h(0, 0, stream, 0), []string{"1/6 [fe80::1%1]:22"}, 0},
		{"mapped", "127.0.0.1", "22", h(AI_V4MAPPED, inet6, dgram, 0), []string{"2/17 [::ffff:127.0.0.1]:22"}, 0},
		{"localhost inet", "localhost", "22", h(0, inet, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"numerichost", "localhost", "22", h(AI_NUMERICHOST, 0, 0, 0), nil, EAI_NONAME},
		{"service", "127.0.0.1", "nosuch", h(0, 0, 0, 0), nil, EAI_SERVICE},
		{"socktype", "127.0.0.1", "", h(0, 0, 99, 0), nil, EAI_SOCKTYPE},
		{"family", "127.0.0.1", "", h(0, 99, 0, 0), nil, EAI_FAMILY},
		{"flags", "127.0.0.1", "", h(0x800, 0, 0, 0), nil, EAI_BADFLAGS},
		{"addrfamily", "::1", "", h(0, inet, 0, 0), nil, EAI_ADDRFAMILY},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := r.Getaddrinfo(c.node, c.service, c.hints)
			got := strings.Join(fmtResults(res, c.hints.Flags), ", ")
			if code := eaiOf(t, err); code != c.err || got != strings.Join(c.want, ", ") {
				t.Errorf("Getaddrinfo(%q, %q) = [%s], EAI %d; want %q, EAI %d", c.node, c.service, got, code, c.want, c.err)
			}
		})
	}
	for _, c := range []gniCase{
		{"numeric", v4sa("127.0.0.1", 53), NI_NUMERICHOST | NI_DGRAM, "127.0.0.1", "domain", 0},
		{"name", v4sa("127.0.0.1", 22), NI_NAMEREQD, "localhost", "ssh", 0},
		{"scope", v6sa("fe80::1", 22, 1), NI_NUMERICHOST | NI_NUMERICSERV, "fe80::1%" + loName(t), "22", 0},
		{"badflags", v4sa("127.0.0.1", 22), 0x100, "", "", EAI_BADFLAGS},
		{"family", &unix.SockaddrLinklayer{}, 0, "", "", EAI_FAMILY},
	} {
		t.Run("gni "+c.name, func(t *testing.T) {
			host, serv, err := r.Getnameinfo(c.sa, c.flags)
			if code := eaiOf(t, err); host != c.host || serv != c.serv || code != c.err {
				t.Errorf("Getnameinfo(%s, %#x) = %q, %q, EAI %d; want %q, %q, EAI %d", fmtSockaddr(c.sa), c.flags, host, serv, code, c.host, c.serv, c.err)
			}
		})
	}
}

// loName is the name of the host's interface 1 (the loopback on Linux).
func loName(t *testing.T) string {
	name, ok := hostBackend{}.interfaceName(1)
	if !ok {
		t.Skip("no interface with index 1")
	}
	return name
}
