package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"
	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/tun"
)

// serveConfig is `ustack serve`'s command line, checked.
type serveConfig struct {
	tunName   string
	addrs     []netip.Prefix // the userspace stack's
	hostAddrs []netip.Prefix // the kernel side's, on the TUN device
	mtu       int
	netns     string
	driver    tun.Driver
	pcap      string
}

// Defaults: a /24 and a /64 from the private ranges (RFC 1918, RFC 4193)
// with the kernel at .1/::1 and the stack at .2/::2.
var (
	defaultServeHostAddrs = []string{"10.99.0.1/24", "fd00:99::1/64"}
	defaultServeAddrs     = []string{"10.99.0.2/24", "fd00:99::2/64"}
)

// serveDrivers are the values --tun-driver accepts.
var serveDrivers = []tun.Driver{tun.DriverVnet, tun.DriverWater}

const serveUsage = `Usage: ustack serve [FLAGS]

Creates a TUN device, gives its kernel side --host-addr and the userspace
stack --addr, and serves from the userspace stack: echo (7, TCP and UDP),
discard (9, TCP and UDP), daytime (13, TCP and UDP), chargen (19, TCP) and
HTTP on 80 with a status page of the stack's counters and open connections.
The stack answers ping on IPv4 and IPv6. Runs until SIGINT or SIGTERM, then
removes the device and exits 0.

Needs CAP_NET_ADMIN (root) to create the device.

Flags:
`

// errHelp means -h was given: print the usage and exit 0.
var errHelp = errors.New("help requested")

// parseServe parses and checks args. Its errors are usage errors.
func parseServe(args []string, help io.Writer) (serveConfig, error) {
	fs := pflag.NewFlagSet("ustack serve", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // we print errors and usage ourselves
	tunName := fs.String("tun", "", "`NAME` of the TUN device to create (default: the kernel picks tunN)")
	addrs := fs.StringSlice("addr", defaultServeAddrs, "`CIDR` address of the userspace stack; repeat or comma-separate for more")
	hostAddrs := fs.StringSlice("host-addr", defaultServeHostAddrs, "`CIDR` address of the kernel side of the device; repeat or comma-separate for more")
	mtu := fs.Int("mtu", 1500, "MTU of the device and the stack, `N` from 68 to 65535 (1280 or more with IPv6)")
	netnsPath := fs.String("netns", "", "create the device in the network namespace at `PATH` (/run/netns/NAME, /proc/PID/ns/net)")
	driver := fs.String("tun-driver", string(tun.DefaultDriver), "packet path `DRIVER`: vnet (offloads, batches) or water (one packet per syscall)")
	pcap := fs.String("pcap", "", "write every packet the stack sends and receives to `FILE` in pcap format (tcpdump -r reads it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(help, serveUsage, fs.FlagUsages())
			return serveConfig{}, errHelp
		}
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := serveConfig{tunName: *tunName, mtu: *mtu, netns: *netnsPath, driver: tun.Driver(*driver), pcap: *pcap}
	var err error
	if cfg.addrs, err = parsePrefixes("--addr", *addrs); err != nil {
		return serveConfig{}, err
	}
	if cfg.hostAddrs, err = parsePrefixes("--host-addr", *hostAddrs); err != nil {
		return serveConfig{}, err
	}
	return cfg, cfg.check()
}

// parsePrefixes parses each value of flag as an address with its prefix
// length, as `ip addr add` takes it.
func parsePrefixes(flag string, vals []string) ([]netip.Prefix, error) {
	if len(vals) == 0 {
		return nil, fmt.Errorf("%s: need at least one address", flag)
	}
	out := make([]netip.Prefix, 0, len(vals))
	for _, v := range vals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q: not an address/prefix such as 10.99.0.2/24 or fd00:99::2/64", flag, v)
		}
		a := p.Addr()
		switch {
		case a.Is4In6():
			return nil, fmt.Errorf("%s %q: write the IPv4 address as such, not IPv4-mapped", flag, v)
		case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback():
			return nil, fmt.Errorf("%s %q: not a unicast address an interface can have", flag, v)
		}
		for _, q := range out {
			if q.Addr() == a {
				// Caught here rather than as the stack's "duplicate
				// address" at run time.
				return nil, fmt.Errorf("%s %v: given twice", flag, a)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *serveConfig) check() error {
	if c.mtu < 68 || c.mtu > 65535 {
		return fmt.Errorf("--mtu %d out of range 68..65535", c.mtu)
	}
	if len(c.tunName) > 15 {
		return fmt.Errorf("--tun %q: interface names have at most 15 bytes", c.tunName)
	}
	if bad := badIfName(c.tunName); bad != "" {
		return fmt.Errorf("--tun %q: %s", c.tunName, bad)
	}
	if !knownServeDriver(c.driver) {
		return fmt.Errorf("--tun-driver %q: want %s", c.driver, joinDrivers())
	}
	if c.netns != "" {
		// Missing or not a network namespace: the user's mistake, said
		// here rather than as setns's "invalid argument". Anything else
		// (no permission to look) is left to the setup to report.
		if err := netns.Check(c.netns); errors.Is(err, fs.ErrNotExist) || errors.Is(err, netns.ErrNotNetNS) {
			return fmt.Errorf("--netns %s: %v", c.netns, err)
		}
	}
	for _, fam := range []struct {
		name string
		is4  bool
	}{{"IPv4", true}, {"IPv6", false}} {
		s, h := firstOfFamily(c.addrs, fam.is4), firstOfFamily(c.hostAddrs, fam.is4)
		switch {
		case s.IsValid() && !h.IsValid():
			return fmt.Errorf("address family mismatch: --addr %v is %s but no --host-addr is", s, fam.name)
		case h.IsValid() && !s.IsValid():
			return fmt.Errorf("address family mismatch: --host-addr %v is %s but no --addr is", h, fam.name)
		case !fam.is4 && s.IsValid() && c.mtu < 1280:
			return fmt.Errorf("--mtu %d: IPv6 needs an MTU of at least 1280 (RFC 8200)", c.mtu)
		}
	}
	if err := c.checkBroadcast(); err != nil {
		return err
	}
	for _, s := range c.addrs {
		for _, h := range c.hostAddrs {
			if s.Addr() == h.Addr() {
				return fmt.Errorf("%v is both an --addr and a --host-addr", s.Addr())
			}
		}
	}
	return nil
}

// checkBroadcast refuses an IPv4 address that is a broadcast address on
// the device: 255.255.255.255, or the last address of its own subnet or
// of another one given (10.99.0.255 beside 10.99.0.1/24). `ip addr add`
// takes such an address, but the kernel then sends to it as a broadcast
// (ping asks for -b, as it did with serve on 10.99.0.255/24), so nothing
// served there could be reached. /31 and /32 have no broadcast address.
func (c *serveConfig) checkBroadcast() error {
	limited := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	for _, set := range []struct {
		flag string
		ps   []netip.Prefix
	}{{"--addr", c.addrs}, {"--host-addr", c.hostAddrs}} {
		for _, p := range set.ps {
			if p.Addr() == limited {
				return fmt.Errorf("%s %v: the broadcast address, not one an interface can answer on", set.flag, p)
			}
			// Its own subnet first, then every other one on the device.
			for _, q := range append(append([]netip.Prefix{p}, c.addrs...), c.hostAddrs...) {
				if b, ok := broadcast4(q); ok && p.Addr() == b {
					return fmt.Errorf("%s %v: the broadcast address of %v, not one the kernel side can reach", set.flag, p, q.Masked())
				}
			}
		}
	}
	return nil
}

// broadcast4 returns the broadcast address of an IPv4 subnet of 30 bits
// or fewer.
func broadcast4(p netip.Prefix) (netip.Addr, bool) {
	if !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, false
	}
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	for i := 0; i < 4; i++ {
		a[i] |= byte(host >> (24 - 8*i))
	}
	return netip.AddrFrom4(a), true
}

func firstOfFamily(ps []netip.Prefix, is4 bool) netip.Prefix {
	for _, p := range ps {
		if p.Addr().Is4() == is4 {
			return p
		}
	}
	return netip.Prefix{}
}

func knownServeDriver(d tun.Driver) bool {
	for _, k := range serveDrivers {
		if d == k {
			return true
		}
	}
	return false
}

func joinDrivers() string {
	s := make([]string, len(serveDrivers))
	for i, d := range serveDrivers {
		s[i] = string(d)
	}
	return strings.Join(s, " or ")
}
