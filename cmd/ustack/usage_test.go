package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
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
		// Attaching to ustack's own namespace would give the host a tap0
		// and default routes into the userspace stack.
		{[]string{"run", "--netns", "/proc/self/ns/net"}, "--netns /proc/self/ns/net: that is ustack's own network namespace"},
		{[]string{"run", "--pid", strconv.Itoa(os.Getpid())}, "--pid " + strconv.Itoa(os.Getpid()) + ": that is ustack's own network namespace"},
		{[]string{"serve", "--addr", "10.99.0.2/24", "--addr", "10.99.0.2/24", "--host-addr", "10.99.0.1/24"}, "--addr 10.99.0.2: given twice"},
		{[]string{"serve", "--addr", "10.99.0.2/24,10.99.0.2/16", "--host-addr", "10.99.0.1/24"}, "--addr 10.99.0.2: given twice"},
		{[]string{"serve", "--addr", "10.99.0.2/24", "--host-addr", "10.99.0.1/24", "--host-addr", "10.99.0.1/24"}, "--host-addr 10.99.0.1: given twice"},
		{[]string{"run", "-p", "8080:80", "-p", "8080:80", "--", "true"}, "-p 8080:80/tcp: host port 8080/tcp already forwarded by -p 8080:80/tcp"},
		{[]string{"run", "-p", "8080:80", "-p", "127.0.0.1:8080:81", "--", "true"}, "-p 127.0.0.1:8080:81/tcp: host port 8080/tcp already forwarded by -p 8080:80/tcp"},
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

// TestRunForwardsThatDoNotClash: the same host port on another protocol,
// or on two distinct host addresses, is no conflict.
func TestRunForwardsThatDoNotClash(t *testing.T) {
	for _, args := range [][]string{
		{"-p", "8080:80/tcp", "-p", "8080:80/udp", "--", "true"},
		{"-p", "127.0.0.1:8080:80", "-p", "[::1]:8080:80", "--", "true"},
	} {
		if _, err := parseRunFlags(args, io.Discard, io.Discard); err != nil {
			t.Errorf("parseRunFlags(%q) = %v, want no error", args, err)
		}
	}
}
