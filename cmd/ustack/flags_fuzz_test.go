package main

import (
	"io"
	"strings"
	"testing"
)

// FuzzFlags feeds arbitrary command lines (arguments split at NUL) to the
// flag parsers of serve and run, which take them from the user: they must
// never panic, and a refusal must say something. Parsing only: nothing is
// created or started.
//
//	go test -fuzz FuzzFlags ./cmd/ustack
func FuzzFlags(f *testing.F) {
	for _, s := range []string{
		"--addr\x0010.99.0.2/24,fd00:99::2/64", "--host-addr=fd00::1/64\x00--mtu\x001280",
		"--tun\x00a/b", "--mtu\x00-1", "--addr\x00\"10.0.0.1/24", "--addr=,", "-h",
		"-p\x00[::1]:8080:80/udp\x00--\x00sh", "--deny\x00::/0\x00--dns-upstream\x00[fe80::1%eth0]:53\x00--\x00true",
		"--pid\x00-1", "--netns\x00/proc/self/ns/net\x00--pid\x001", "--dial-timeout\x00-5s\x00--\x00x",
		"-p\x001.2.3.4:0:0", "--publish=:::/tcp",
		"--cidr\x0010.0.3.0/24\x00--cidr6\x00fd00:1::/64\x00--\x00true", "--cidr=10.0.3.7/25", "--cidr6\x00::ffff:10.0.0.0/104",
		"--ready-fd\x00-1\x00--exit-fd\x00x", "--ready-fd=99999999999999999999",
		"--outbound-addr\x00127.0.0.1\x00--outbound-addr6\x00fe80::1%lo\x00--\x00x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		if _, err := parseServe(args, io.Discard); err != nil && err.Error() == "" {
			t.Errorf("parseServe(%q) failed with an empty message", args)
		}
		if _, err := parseRunFlags(args, io.Discard, io.Discard); err != nil && err.Error() == "" {
			t.Errorf("parseRunFlags(%q) failed with an empty message", args)
		}
	})
}
