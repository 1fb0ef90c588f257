package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestRunDNSUpstreamNotUnicast: --dns-upstream took any address and port.
// 0.0.0.0, 224.0.0.251, ff02::fb, 255.255.255.255 and port 0 were
// accepted and left every DNS query of CMD refused or timing out, and ::
// silently reached the host's ::1 (Linux connects an unspecified
// destination to loopback), past a --deny ::1/128. Each is a usage error,
// as a --deny that is not a prefix is; ordinary upstreams stay accepted.
func TestRunDNSUpstreamNotUnicast(t *testing.T) {
	for _, tc := range []struct {
		up, want string // want "" means accepted
	}{
		{"0.0.0.0", "not a unicast address"},
		{"::", "not a unicast address"},
		{"[::]:5353", "not a unicast address"},
		{"224.0.0.251", "not a unicast address"},
		{"ff02::fb", "not a unicast address"},
		{"255.255.255.255", "not a unicast address"},
		{"127.0.0.1:0", "port 0"},
		{"[::1]:0", "port 0"},
		{"127.0.0.1", ""},
		{"[::1]:5353", ""},
		{"[::ffff:127.0.0.1]:5353", ""},
		{"[fe80::1%eth0]:53", ""},
	} {
		t.Run(tc.up, func(t *testing.T) {
			args := []string{"--dns-upstream", tc.up, "--", "true"}
			_, err := parseRunFlags(args, io.Discard, io.Discard)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("parseRunFlags(%q) = %v, want it accepted", args, err)
				}
				return
			}
			var out bytes.Buffer
			if got := dispatch(append([]string{"run"}, args...), &out, &out); got != exitUsage {
				t.Errorf("ustack run %q = %d, want %d (usage); output %q", args, got, exitUsage, out.String())
			}
			if !strings.Contains(out.String(), `--dns-upstream "`+tc.up+`"`) || !strings.Contains(out.String(), tc.want) {
				t.Errorf("ustack run %q output = %q, want it to name the flag and say %q", args, out.String(), tc.want)
			}
		})
	}
}

// TestRunTunNameLoRefused: a new namespace always has lo, so `ustack run
// --tun-name lo -- CMD` can never work; it failed at run time with exit 1
// ("device name already in use"), as if something on the machine were in
// the way. It is a usage error (exit 2). With --netns the namespace is
// someone else's and its devices are checked at run time, as before.
func TestRunTunNameLoRefused(t *testing.T) {
	args := []string{"--tun-name", "lo", "--", "true"}
	var out bytes.Buffer
	if got := dispatch(append([]string{"run"}, args...), &out, &out); got != exitUsage {
		t.Errorf("ustack run %q = %d, want %d (usage); output %q", args, got, exitUsage, out.String())
	}
	if !strings.Contains(out.String(), `--tun-name "lo"`) {
		t.Errorf("ustack run %q output = %q, want it to name --tun-name", args, out.String())
	}
}
