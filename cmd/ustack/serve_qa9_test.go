package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServeBroadcastAddrRefused: an IPv4 --addr that is the broadcast
// address of its own or a --host-addr's subnet (10.99.0.255 in a /24) is
// accepted by `ip addr add`, but the kernel side then sends to it as a
// broadcast (ping says "Do you want to ping broadcast?"), so nothing
// served there is reachable. serve must refuse it as a usage error; /31
// and /32 have no broadcast address and stay accepted.
func TestServeBroadcastAddrRefused(t *testing.T) {
	v6 := []string{"--addr", "fd00:99::2/64", "--host-addr", "fd00:99::1/64"}
	for _, tc := range []struct {
		name string
		args []string
		want string // "" means accepted
	}{
		{"own subnet broadcast", []string{"--addr", "10.99.0.255/24", "--host-addr", "10.99.0.1/24"}, "--addr 10.99.0.255/24: the broadcast address of 10.99.0.0/24"},
		{"host subnet broadcast", []string{"--addr", "10.99.0.255/16", "--host-addr", "10.99.0.1/24"}, "--addr 10.99.0.255/16: the broadcast address of 10.99.0.0/24"},
		{"host-addr broadcast", []string{"--addr", "10.99.0.2/24", "--host-addr", "10.99.0.255/24"}, "--host-addr 10.99.0.255/24: the broadcast address of 10.99.0.0/24"},
		{"limited broadcast", []string{"--addr", "255.255.255.255/32", "--host-addr", "10.99.0.1/24"}, "--addr 255.255.255.255/32: the broadcast address"},
		{"slash 31", []string{"--addr", "10.99.0.3/31", "--host-addr", "10.99.0.2/31"}, ""},
		{"slash 32", []string{"--addr", "10.99.0.255/32", "--host-addr", "10.99.1.1/32"}, ""},
		{"ordinary", []string{"--addr", "10.99.0.254/24", "--host-addr", "10.99.0.1/24"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), v6...)
			_, err := parseServe(args, &bytes.Buffer{})
			if err == nil {
				if tc.want != "" {
					t.Fatalf("parseServe(%q) = nil error, want %q", args, tc.want)
				}
				return
			}
			if tc.want == "" {
				t.Fatalf("parseServe(%q) = %v, want it accepted", args, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseServe(%q) = %v, want it to contain %q", args, err, tc.want)
			}
			var stdout, stderr bytes.Buffer
			if got := dispatch(append([]string{"serve"}, args...), &stdout, &stderr); got != exitUsage {
				t.Errorf("dispatch = %d, want %d; stderr %q", got, exitUsage, stderr.String())
			}
		})
	}
}
