package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/ustack/ustack/tun"
)

// TestServeUsageErrors checks that every bad command line names its
// problem and exits 2 before touching any device, so it needs no root.
func TestServeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--frob"}, "unknown flag: --frob"},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
		{"bad CIDR", []string{"--addr", "10.99.0.300/24"}, `--addr "10.99.0.300/24": not an address/prefix`},
		{"no prefix length", []string{"--host-addr", "10.99.0.1"}, `--host-addr "10.99.0.1": not an address/prefix`},
		{"mapped v4", []string{"--addr", "::ffff:10.0.0.2/120"}, "not IPv4-mapped"},
		{"multicast", []string{"--addr", "224.0.0.1/24,fd00:99::2/64"}, "not a unicast address"},
		{"MTU too small", []string{"--mtu", "67"}, "--mtu 67 out of range 68..65535"},
		{"MTU too large", []string{"--mtu", "65536"}, "--mtu 65536 out of range 68..65535"},
		{"MTU not a number", []string{"--mtu", "big"}, `invalid argument "big" for "--mtu"`},
		{"IPv6 below 1280", []string{"--mtu", "1000"}, "IPv6 needs an MTU of at least 1280"},
		{"v6 stack, no v6 host", []string{"--host-addr", "10.99.0.1/24"}, "address family mismatch: --addr fd00:99::2/64 is IPv6 but no --host-addr is"},
		{"v4 host, no v4 stack", []string{"--addr", "fd00:99::2/64"}, "address family mismatch: --host-addr 10.99.0.1/24 is IPv4 but no --addr is"},
		{"same address", []string{"--addr", "10.99.0.1/24", "--host-addr", "10.99.0.1/24", "--addr", "fd00:1::2/64", "--host-addr", "fd00:1::1/64"}, "10.99.0.1 is both an --addr and a --host-addr"},
		{"unknown driver", []string{"--tun-driver", "tap"}, `--tun-driver "tap": want vnet or water`},
		{"long name", []string{"--tun", "a-very-long-device-name"}, "at most 15 bytes"},
		{"missing netns", []string{"--netns", "/nonexistent/netns"}, "--netns /nonexistent/netns: no such file or directory"},
		{"empty addr list", []string{"--addr="}, "--addr: need at least one address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve"}, tc.args...)
			if got := dispatch(args, &stdout, &stderr); got != exitUsage {
				t.Errorf("dispatch(%q) = %d, want %d; stderr %q", args, got, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("dispatch(%q) stderr = %q, want it to contain %q", args, stderr.String(), tc.want)
			}
			if !strings.Contains(stderr.String(), "ustack serve -h") {
				t.Errorf("dispatch(%q) stderr = %q, want a pointer to -h", args, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("dispatch(%q) stdout = %q, want nothing", args, stdout.String())
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--help"}, {"help", "serve"}} {
		var stdout, stderr bytes.Buffer
		if got := dispatch(args, &stdout, &stderr); got != exitOK {
			t.Errorf("dispatch(%q) = %d, want %d; stderr %q", args, got, exitOK, stderr.String())
		}
		for _, want := range []string{"Usage: ustack serve", "--tun NAME", "--addr CIDR", "--host-addr CIDR", "--mtu N", "--netns PATH", "--tun-driver DRIVER", "--pcap FILE", "10.99.0.2/24,fd00:99::2/64"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("dispatch(%q) stdout does not contain %q:\n%s", args, want, stdout.String())
			}
		}
	}
	var stdout, stderr bytes.Buffer
	dispatch([]string{"help"}, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "serve") {
		t.Errorf("ustack help does not list serve:\n%s", stdout.String())
	}
}

func TestParseServeDefaults(t *testing.T) {
	cfg, err := parseServe(nil, nil)
	if err != nil {
		t.Fatalf("parseServe(nil) = %v", err)
	}
	if got, want := fmt.Sprint(cfg.addrs, cfg.hostAddrs, cfg.mtu), "[10.99.0.2/24 fd00:99::2/64] [10.99.0.1/24 fd00:99::1/64] 1500"; got != want {
		t.Errorf("parseServe(nil) addrs, host addrs, MTU = %s, want %s", got, want)
	}
	cfg, err = parseServe([]string{"--addr", "10.1.0.2/32", "--host-addr", "10.99.0.1/24", "--addr", "10.99.0.2/24"}, nil)
	if err != nil {
		t.Fatalf("parseServe(IPv4 only) = %v", err)
	}
	if got, want := fmt.Sprint(cfg.addrs), "[10.1.0.2/32 10.99.0.2/24]"; got != want {
		t.Errorf("repeated --addr = %s, want %s", got, want)
	}
	// The stack address outside the kernel's subnet gets a host route.
	if got, want := fmt.Sprint(kernelRoutes(cfg)), "[{10.1.0.2/32 invalid IP}]"; got != want {
		t.Errorf("kernelRoutes = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(stackRoutes(cfg, "tun0")), "[{0.0.0.0/0 invalid IP tun0}]"; got != want {
		t.Errorf("stackRoutes = %s, want %s", got, want)
	}
}

// TestServeRuntimeErrors checks the messages and statuses of failures
// that only a real device produces, by the errors package tun wraps.
func TestServeRuntimeErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{fmt.Errorf("tun: %w", tun.ErrPermission), []string{"needs CAP_NET_ADMIN"}},
		{fmt.Errorf("tun: %q: %w", "ustk0", tun.ErrExists), []string{`"ustk0": device name already in use`, "choose another name with --tun"}},
		{fmt.Errorf("netns: enter /run/netns/x: %w", syscall.EPERM), []string{"operation not permitted", "needs CAP_SYS_ADMIN", "run as root"}},
		{errors.New("tun: something else"), []string{"tun: something else"}},
	} {
		var stderr bytes.Buffer
		if got := serveFailed(&stderr, tc.err); got != exitFailure {
			t.Errorf("serveFailed(%v) = %d, want %d", tc.err, got, exitFailure)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("serveFailed(%v) printed %q, want it to contain %q", tc.err, stderr.String(), w)
			}
		}
	}
}

func TestServeProcs(t *testing.T) {
	for _, tc := range []struct {
		cpus int
		env  string
		want int
	}{
		{1, "", 1},
		{2, "", 1},
		{4, "", 0},
		{2, "2", 0}, // the user's GOMAXPROCS wins
		{64, "8", 0},
	} {
		if got := serveProcs(tc.cpus, tc.env); got != tc.want {
			t.Errorf("serveProcs(%d, %q) = %d, want %d", tc.cpus, tc.env, got, tc.want)
		}
	}
}
