package main

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ustack/ustack/relay"
)

// usageCase is a `ustack run` command line that must be refused as a
// usage error (exit 2) whose output contains contains.
type usageCase struct {
	args     []string
	contains string
}

// checkUsageErrors runs each case, with tail appended to its arguments,
// as a subtest.
func checkUsageErrors(t *testing.T, cases []usageCase, tail ...string) {
	t.Helper()
	for _, tc := range cases {
		args := append(append([]string{}, tc.args...), tail...)
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var out bytes.Buffer
			if got := dispatch(append([]string{"run"}, args...), &out, &out); got != exitUsage {
				t.Errorf("ustack run %q = %d, want %d (usage); output %q", args, got, exitUsage, out.String())
			}
			if !strings.Contains(out.String(), tc.contains) {
				t.Errorf("ustack run %q output = %q, want it to name %q", args, out.String(), tc.contains)
			}
		})
	}
}

func TestRunFlagErrors(t *testing.T) {
	checkUsageErrors(t, []usageCase{
		{nil, "missing command"},
		{[]string{"--mtu", "100", "--", "true"}, "--mtu 100"},
		{[]string{"--mtu", "70000", "--", "true"}, "--mtu 70000"},
		{[]string{"--deny", "10.0.0.0/33", "--", "true"}, `--deny "10.0.0.0/33"`},
		{[]string{"--dns-upstream", "resolver", "--", "true"}, `--dns-upstream "resolver"`},
		{[]string{"-p", "80", "--", "true"}, `"80"`},
		{[]string{"-p", "8080:80/sctp", "--", "true"}, `"sctp"`},
		{[]string{"--netns", "/x", "--pid", "1"}, "--netns and --pid"},
		{[]string{"--pid", "1", "--", "true"}, "cannot be given with --netns or --pid"},
		{[]string{"--max-flows", "0", "--", "true"}, "--max-flows 0"},
		{[]string{"--udp-timeout", "-1s", "--", "true"}, "--udp-timeout"},
		{[]string{"--tun-name", "a-name-far-too-long", "--", "true"}, "--tun-name"},
		{[]string{"--frobnicate", "--", "true"}, "unknown flag: --frobnicate"},
	})
}

func TestRunHelp(t *testing.T) {
	var out bytes.Buffer
	if got := dispatch([]string{"run", "--help"}, &out, &out); got != exitOK {
		t.Fatalf("ustack run --help = %d, want 0", got)
	}
	for _, flag := range []string{"--allow-host-loopback", "--publish", "--api-socket", "--max-flows", "--pcap", "--mtu"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("help does not mention %s:\n%s", flag, out.String())
		}
	}
}

func TestRunFlagsParse(t *testing.T) {
	var out bytes.Buffer
	o, err := parseRunFlags([]string{"--deny", "192.0.2.7", "--dns-upstream", "[::1]:5353", "--dns-upstream", "127.0.0.1",
		"-p", "[::1]:8080:80/udp", "--", "sh", "-c", "--not-a-flag"}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.argv) != 3 || o.argv[2] != "--not-a-flag" {
		t.Errorf("argv = %q, want the command with its own flags untouched", o.argv)
	}
	if len(o.deny) != 1 || o.deny[0] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Errorf("deny = %v, want [192.0.2.7/32]", o.deny)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("[::1]:5353"), netip.MustParseAddrPort("127.0.0.1:53")}
	if len(o.dnsUpstreams) != 2 || o.dnsUpstreams[0] != want[0] || o.dnsUpstreams[1] != want[1] {
		t.Errorf("dnsUpstreams = %v, want %v", o.dnsUpstreams, want)
	}
	if len(o.forwards) != 1 || o.forwards[0].String() != "[::1]:8080:80/udp" {
		t.Errorf("forwards = %v, want [[::1]:8080:80/udp]", o.forwards)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	host := dir + "/resolv.conf"
	writeFile(t, host, "nameserver 192.0.2.53\nnameserver ::1\nsearch example.org\noptions ndots:2\n")
	got := resolvConf(host, relay.Network{})
	for _, want := range []string{"nameserver 10.0.2.3\n", "nameserver fd00::3\n", "search example.org\n", "options ndots:2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("resolvConf = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "192.0.2.53") {
		t.Errorf("resolvConf = %q leaks the host's resolver", got)
	}
	ups := hostResolvers(host)
	if len(ups) != 2 || ups[0] != netip.MustParseAddrPort("192.0.2.53:53") || ups[1] != netip.MustParseAddrPort("[::1]:53") {
		t.Errorf("hostResolvers = %v, want [192.0.2.53:53 [::1]:53]", ups)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
