package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageErrorsNameTheFlag: a bad value found only at run time used to
// fail with exit 1 and an internal message (a library's error, an fd
// path); each must be a usage error, exit 2, naming the flag.
func TestUsageErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--tun-driver", "x", "--", "true"}, `--tun-driver "x": want vnet or water`},
		{[]string{"run", "--pid", "0"}, "--pid 0: not a process ID"},
		{[]string{"run", "--pid=0", "--", "true"}, "--pid 0: not a process ID"},
		{[]string{"serve", "--tun", "a/b"}, `--tun "a/b": not an interface name`},
		{[]string{"serve", "--tun", "."}, `--tun ".": not an interface name`},
		{[]string{"serve", "--tun", ".."}, `--tun "..": not an interface name`},
		{[]string{"serve", "--tun", "a b"}, `--tun "a b": not an interface name`},
		{[]string{"serve", "--tun", "a:b"}, `--tun "a:b": not an interface name`},
		{[]string{"serve", "--tun", "a\tb"}, `--tun "a\tb": not an interface name`},
		{[]string{"run", "--tun-name", ".", "--", "true"}, `--tun-name ".": not an interface name`},
		{[]string{"run", "--tun-name", "a:b", "--", "true"}, `--tun-name "a:b": not an interface name`},
		{[]string{"serve", "--netns", "/etc/passwd"}, "--netns /etc/passwd: not a network namespace"},
		{[]string{"serve", "--netns", "/proc/self/ns/uts"}, "--netns /proc/self/ns/uts: not a network namespace"},
		{[]string{"run", "--netns", "/etc/passwd"}, "--netns /etc/passwd: not a network namespace"},
		{[]string{"run", "--netns", "/nonexistent/netns"}, "--netns /nonexistent/netns: no such file or directory"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := dispatch(tc.args, &stdout, &stderr); got != exitUsage {
				t.Errorf("ustack %q = %d, want %d (usage); stderr %q", tc.args, got, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("ustack %q stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.want)
			}
		})
	}
}
