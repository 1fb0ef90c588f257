package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/relay"
	"github.com/ustack/ustack/tun"
	glog "gvisor.dev/gvisor/pkg/log"
)

func init() {
	// A process re-executed by netns.Start is the namespace child: it must
	// set up its mounts and become the command before anything else runs.
	if netns.IsChild() {
		netns.ChildMain()
	}
	register(command{name: "run", summary: "run a command in a network namespace networked from userspace", run: runRun})
}

const runUsage = `Usage: ustack run [FLAGS] -- CMD [ARGS...]
       ustack run [FLAGS] --netns PATH | --pid PID

Runs CMD in new network, mount and PID namespaces (and, when not root, a
new user namespace mapping you to root, like 'unshare -rn') whose whole
network is the userspace stack: every TCP connection, UDP flow and ping CMD opens is
relayed through ordinary host sockets. Inside: lo, a TUN device with
10.0.2.100/24 and fd00::100/64, default routes via 10.0.2.2 and fd00::2,
DNS at 10.0.2.3 and fd00::3 (CMD's own /etc/resolv.conf); --cidr and
--cidr6 move them (network+100, +2, +3; IPv6 +0x100). The exit status
is CMD's, or 0 when --exit-fd reaches end of file first (CMD is then
killed). With --netns or --pid, the network is given to an existing
namespace until ustack is killed or --exit-fd reaches end of file
(exit 0).

Flags:
`

// runOptions are the parsed flags of `ustack run`.
type runOptions struct {
	argv              []string
	attachPath        string
	allowHostLoopback bool
	deny              []netip.Prefix
	dnsUpstreams      []netip.AddrPort
	forwards          []relay.Forward
	apiSocket         string
	pcap              string
	mtu               int
	tunName           string
	tunDriver         string
	maxFlows          int
	dialTimeout       time.Duration
	halfCloseTimeout  time.Duration
	udpTimeout        time.Duration
	debug             bool
	fds               engineFDs     // --ready-fd, --exit-fd
	network           relay.Network // --cidr, --cidr6
	outbound4         netip.Addr    // --outbound-addr
	outbound6         netip.Addr    // --outbound-addr6
}

func runRun(args []string, stdout, stderr io.Writer) int {
	opts, err := parseRunFlags(args, stdout, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
		if flagErrStatus(err) == exitUsage {
			fmt.Fprintln(stderr, "Run 'ustack run --help' for usage.")
		}
		return flagErrStatus(err)
	}
	if !opts.debug {
		// gVisor logs some drops at Info level to stderr (a martian
		// source, rate-limited): CMD would choose what the operator's
		// terminal shows, and when. --debug keeps them.
		glog.SetLevel(glog.Warning)
	}
	if os.Geteuid() != 0 && !netns.InUserNS() {
		// Rootless: become root of a new user namespace, then do the rest
		// there, with every capability over the namespaces we create; to
		// attach, join the user namespace that owns the target instead.
		// The copy gets --ready-fd and --exit-fd at the same numbers, and
		// the only copies of them.
		keep := opts.fds.files()
		run := func() (int, error) { return netns.RunInUserNS(keep) }
		if opts.attachPath != "" {
			run = func() (int, error) { return netns.RunInUserNSOf(opts.attachPath, keep) }
		}
		status, err := run()
		if err != nil {
			fmt.Fprintf(stderr, "ustack run: %v\n", err)
			return exitFailure
		}
		return status
	}
	opts.fds.own()
	if !startDebugFromEnv("run", stderr) {
		return exitUsage
	}
	return runWithEngineFDs(opts, stderr)
}

func parseRunFlags(args []string, stdout, stderr io.Writer) (*runOptions, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false) // everything after CMD belongs to CMD
	fs.SetOutput(io.Discard)
	var (
		o                            runOptions
		deny, dns, publish           []string
		readyFD, exitFD              string
		cidr4, cidr6                 string
		out4, out6                   string
		nsPath                       string
		pid                          int
		help                         bool
		mtuDefault, maxFlowsDefault  = 65520, 4096
		dialDefault, halfDefault     = 30 * time.Second, 2 * time.Minute
		udpDefault                   = 60 * time.Second
		tunNameDefault, driverDefalt = "tap0", ""
	)
	fs.BoolVar(&o.allowHostLoopback, "allow-host-loopback", false, "let the gateway (network+2: 10.0.2.2/fd00::2 by default) reach the host's 127.0.0.1/::1")
	fs.StringVar(&cidr4, "cidr", relay.DefaultPrefix4.String(), "the namespace's IPv4 network `CIDR`: the namespace is network+100, the gateway +2, DNS +3 (slirp4netns's --cidr)")
	fs.StringVar(&cidr6, "cidr6", relay.DefaultPrefix6.String(), "the namespace's IPv6 network `CIDR`: the namespace is network+0x100, the gateway +2, DNS +3")
	fs.StringArrayVar(&deny, "deny", nil, "block destinations in `CIDR` (repeatable)")
	fs.StringArrayVar(&dns, "dns-upstream", nil, "forward DNS to `ADDR`[:PORT] instead of the host's /etc/resolv.conf resolvers (repeatable: the next is used when one fails)")
	fs.StringArrayVarP(&publish, "publish", "p", nil, "forward `SPEC` = [HOSTIP:]HOSTPORT:NSPORT[/tcp|/udp] from the host into the namespace (repeatable)")
	fs.StringVar(&nsPath, "netns", "", "attach to the network namespace at `PATH` instead of creating one")
	fs.IntVar(&pid, "pid", 0, "attach to the network namespace of process `PID`")
	fs.StringVar(&o.apiSocket, "api-socket", "", "serve the JSON-lines control API on the unix socket `PATH`")
	fs.StringVar(&o.pcap, "pcap", "", "write the namespace's traffic to the pcap `FILE`")
	fs.IntVar(&o.mtu, "mtu", mtuDefault, "MTU of the namespace's TUN device (1280..65520)")
	fs.StringVar(&o.tunName, "tun-name", tunNameDefault, "`NAME` of the TUN device inside the namespace")
	fs.StringVar(&o.tunDriver, "tun-driver", driverDefalt, "TUN packet path `DRIVER`: vnet (offloads; the Linux default) or water")
	fs.IntVar(&o.maxFlows, "max-flows", maxFlowsDefault, "cap on concurrently relayed connections and flows")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", dialDefault, "give up dialling a real destination that does not answer after this long (CMD gets no answer either; its connect times out on its own)")
	fs.DurationVar(&o.halfCloseTimeout, "half-close-timeout", halfDefault, "close a half-closed connection idle this long")
	fs.DurationVar(&o.udpTimeout, "udp-timeout", udpDefault, "expire UDP and ping flows idle this long")
	fs.StringVar(&readyFD, "ready-fd", "", "write \"1\" to descriptor `FD` and close it once the namespace's network, every -p forward and the --api-socket are up (slirp4netns's --ready-fd)")
	fs.StringVar(&exitFD, "exit-fd", "", "tear everything down and exit 0 when descriptor `FD` reaches end of file (slirp4netns's --exit-fd)")
	fs.StringVar(&out4, "outbound-addr", "", "send CMD's IPv4 traffic from the host address `ADDR` (bind every host socket the relay opens to it; slirp4netns's --outbound-addr)")
	fs.StringVar(&out6, "outbound-addr6", "", "send CMD's IPv6 traffic from the host address `ADDR` (slirp4netns's --outbound-addr6)")
	fs.BoolVar(&o.debug, "debug", false, "log each refused or failed flow to stderr")
	fs.BoolVarP(&help, "help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if help {
		fmt.Fprint(stdout, runUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil, pflag.ErrHelp
	}
	o.argv = fs.Args()
	if fs.Changed("pid") && pid <= 0 {
		// 0 would otherwise read as "not given" and the error would be
		// about a missing command.
		return nil, fmt.Errorf("--pid %d: not a process ID", pid)
	}
	if err := o.check(deny, dns, publish, nsPath, pid); err != nil {
		return nil, err
	}
	var err error
	if o.network.Prefix4, err = parseCIDR("--cidr", cidr4, true); err != nil {
		return nil, err
	}
	if o.network.Prefix6, err = parseCIDR("--cidr6", cidr6, false); err != nil {
		return nil, err
	}
	if o.outbound4, err = parseOutbound("--outbound-addr", out4, true); err != nil {
		return nil, err
	}
	if o.outbound6, err = parseOutbound("--outbound-addr6", out6, false); err != nil {
		return nil, err
	}
	return &o, o.checkFDs(fs.Changed("ready-fd"), readyFD, fs.Changed("exit-fd"), exitFD)
}

// parseCIDR reads a --cidr (v4) or --cidr6 value (relay.CheckPrefix
// says what a prefix must be).
func parseCIDR(flag, s string, v4 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%s %q: not a CIDR prefix (ADDR/BITS)", flag, s)
	case v4 && !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%s %q: not an IPv4 prefix (IPv6 goes in --cidr6)", flag, s)
	case !v4 && !p.Addr().Is6():
		return netip.Prefix{}, fmt.Errorf("%s %q: not an IPv6 prefix (IPv4 goes in --cidr)", flag, s)
	}
	if err := relay.CheckPrefix(p); err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q: %v", flag, s, err)
	}
	return p, nil
}

// setupError marks a flag check that failed through no fault of the
// value (the host out of descriptors, say): ustack exits 1, not 2.
type setupError struct{ error }

func (e setupError) Unwrap() error { return e.error }

// flagErrStatus is the exit status for an error from parseRunFlags.
func flagErrStatus(err error) int {
	var se setupError
	if errors.As(err, &se) {
		return exitFailure
	}
	return exitUsage
}

// parseOutbound reads an --outbound-addr value ("" for none): an address
// of the flag's family that this host has, which a socket can be bound
// to (checked by binding one). A loopback address would keep everything
// on the host, and the unspecified one is the kernel's choice anyway.
//
// The bind check proves less where the kernel lets sockets bind foreign
// addresses: with net.ipv4.ip_nonlocal_bind=1 (net.ipv6.ip_nonlocal_bind
// for IPv6; ip(7) IP_FREEBIND) it passes for an address the host lacks,
// whose replies then never come back. A tentative IPv6 address (still in
// duplicate address detection) fails it with EADDRNOTAVAIL, as a missing
// one does.
func parseOutbound(flag, s string, v4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%s %q: not an IP address", flag, s)
	case v4 && !a.Is4():
		return netip.Addr{}, fmt.Errorf("%s %q: not an IPv4 address (IPv6 goes in --outbound-addr6)", flag, s)
	case !v4 && (!a.Is6() || a.Is4In6()):
		return netip.Addr{}, fmt.Errorf("%s %q: not an IPv6 address (IPv4 goes in --outbound-addr)", flag, s)
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s %q: a zone is not supported; use an address without one", flag, s)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return netip.Addr{}, fmt.Errorf("%s %q: not a unicast address that reaches other hosts", flag, s)
	}
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return netip.Addr{}, bindCheckError(flag, s, err)
	}
	pc.Close()
	return a, nil
}

// bindCheckError says why binding a socket to an --outbound-addr value
// failed: EADDRNOTAVAIL, the host lacks the address, is the user's
// mistake (a usage error); anything else (EMFILE, ENOBUFS) is the host's
// trouble at that moment (a setupError).
func bindCheckError(flag, s string, err error) error {
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("%s %q: not an address of this host (binding a socket to it: %v)", flag, s, errors.Unwrap(err))
	}
	return setupError{fmt.Errorf("%s %q: checking the address: %w", flag, s, err)}
}

// checkFDs validates --ready-fd and --exit-fd (before any namespace is
// made, so a mistake costs nothing).
func (o *runOptions) checkFDs(readySet bool, ready string, exitSet bool, exit string) error {
	var err error
	if readySet {
		if o.fds.ready, err = parseFD("--ready-fd", ready, true); err != nil {
			return err
		}
	}
	if exitSet {
		if o.fds.exit, err = parseFD("--exit-fd", exit, false); err != nil {
			return err
		}
	}
	if o.fds.ready > 0 && o.fds.ready == o.fds.exit {
		// The ready descriptor is closed once written: the exit watch
		// would see that as the engine's end of file.
		return fmt.Errorf("--ready-fd and --exit-fd are both %d; give each its own descriptor", o.fds.ready)
	}
	return nil
}

// check validates and converts the flag values, naming the bad one.
func (o *runOptions) check(deny, dns, publish []string, nsPath string, pid int) error {
	switch {
	case nsPath != "" && pid != 0:
		return errors.New("--netns and --pid both given; choose one")
	case pid < 0:
		return fmt.Errorf("--pid %d: not a process ID", pid)
	case pid > 0:
		o.attachPath = fmt.Sprintf("/proc/%d/ns/net", pid)
	case nsPath != "":
		o.attachPath = nsPath
	}
	if err := checkAttach(o.attachPath, nsPath, pid); err != nil {
		return err
	}
	if o.attachPath != "" && len(o.argv) > 0 {
		return fmt.Errorf("a command (%q) cannot be given with --netns or --pid", o.argv[0])
	}
	if o.attachPath == "" && len(o.argv) == 0 {
		return errors.New("missing command: ustack run [FLAGS] -- CMD [ARGS...]")
	}
	if o.mtu < 1280 || o.mtu > 65520 {
		return fmt.Errorf("--mtu %d: want 1280..65520 (IPv6 needs 1280)", o.mtu)
	}
	if o.tunName == "" || len(o.tunName) > 15 || strings.ContainsAny(o.tunName, "/ \t\n") {
		return fmt.Errorf("--tun-name %q: want 1 to 15 bytes without '/' or spaces", o.tunName)
	}
	if bad := badIfName(o.tunName); bad != "" {
		return fmt.Errorf("--tun-name %q: %s", o.tunName, bad)
	}
	if o.tunName == "lo" && o.attachPath == "" {
		// Every new network namespace has lo: this can never work.
		return fmt.Errorf("--tun-name %q: the new namespace's loopback device already has that name", o.tunName)
	}
	if o.tunDriver != "" && !knownServeDriver(tun.Driver(o.tunDriver)) {
		return fmt.Errorf("--tun-driver %q: want %s", o.tunDriver, joinDrivers())
	}
	if o.maxFlows < 1 {
		return fmt.Errorf("--max-flows %d: want at least 1", o.maxFlows)
	}
	for name, d := range map[string]time.Duration{"--dial-timeout": o.dialTimeout, "--half-close-timeout": o.halfCloseTimeout, "--udp-timeout": o.udpTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s %v: want a positive duration", name, d)
		}
	}
	for _, s := range deny {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("--deny %q: not a CIDR prefix or address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		o.deny = append(o.deny, p.Masked())
	}
	for _, s := range dns {
		ap, err := parseUpstream(s)
		if err != nil {
			return fmt.Errorf("--dns-upstream %q: %v", s, err)
		}
		o.dnsUpstreams = append(o.dnsUpstreams, ap)
	}
	for _, s := range publish {
		f, err := relay.ParseForward(s)
		if err != nil {
			return fmt.Errorf("-p: %v", err)
		}
		for _, g := range o.forwards {
			if forwardsClash(f, g) {
				return fmt.Errorf("-p %v: host port %d/%s already forwarded by -p %v", f, f.HostPort, f.Proto, g)
			}
		}
		o.forwards = append(o.forwards, f)
	}
	return nil
}

// checkAttach refuses, as usage errors naming the flag, an attach target
// that is missing or not a network namespace; setns would only say
// "invalid argument" about an internal descriptor. Anything else (no
// permission to look) is left to the attach to report.
//
// It also refuses ustack's own network namespace, where the relay's host
// sockets live: attaching there would add tap0 and default routes into
// the userspace stack to the host itself (`--pid 1`, or a process that
// has not yet left the host's namespace, as `unshare -n CMD &` just
// after it starts).
func checkAttach(path, nsPath string, pid int) error {
	if path == "" {
		return nil
	}
	flag := "--netns " + nsPath
	if pid > 0 {
		flag = fmt.Sprintf("--pid %d", pid)
	}
	err := netns.Check(path)
	switch {
	case pid > 0 && errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such process", flag)
	case pid > 0 && errors.Is(err, netns.ErrNotNetNS):
		return fmt.Errorf("%s: %s: %v", flag, path, err)
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, netns.ErrNotNetNS):
		return fmt.Errorf("%s: %v", flag, err)
	case err != nil:
		return nil
	}
	if own, err := netns.IsCurrent(path); err == nil && own {
		return fmt.Errorf("%s: that is ustack's own network namespace; attach gives its network to another one", flag)
	}
	return nil
}

// forwardsClash reports whether two port forwards would listen on the
// same host socket, which the second would fail to bind (or, for the
// same forward twice, find "already exists") only once ustack is running.
// No host address means all of them, IPv4 and IPv6.
func forwardsClash(f, g relay.Forward) bool {
	if f.Proto != g.Proto || f.HostPort != g.HostPort {
		return false
	}
	a, b := f.HostAddr, g.HostAddr
	switch {
	case !a.IsValid() || !b.IsValid():
		return true
	case a.IsUnspecified() || b.IsUnspecified():
		return a.Is4() == b.Is4()
	}
	return a == b
}

// parseUpstream reads ADDR, ADDR:PORT or [V6ADDR]:PORT; the port defaults
// to 53.
//
// The address must be one a resolver can have: the unspecified address
// would reach the host's loopback behind the user's back (and past a
// --deny of it), and multicast or broadcast ones never answer a unicast
// query, as port 0 cannot; each would only leave CMD's DNS dead.
func parseUpstream(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if err != nil {
			return netip.AddrPort{}, errors.New("want ADDR, ADDR:PORT or [ADDR]:PORT")
		}
		ap = netip.AddrPortFrom(a, 53)
	}
	a := ap.Addr().Unmap()
	switch {
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.AddrPort{}, errors.New("not a unicast address a resolver can have")
	case ap.Port() == 0:
		return netip.AddrPort{}, errors.New("port 0: want 1..65535 (53 when left out)")
	}
	return ap, nil
}

// hostResolvers reads the nameservers of a resolv.conf(5) file, port 53.
// A file that lists none, or is missing, means a nameserver on loopback,
// as for the host's own programs (resolv.conf(5): "the default is to use
// the name server on the local machine"; glibc asks 127.0.0.1, Go's
// resolver 127.0.0.1 then ::1).
func hostResolvers(path string) []netip.AddrPort {
	var out []netip.AddrPort
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
			}
		}
	}
	if len(out) == 0 {
		out = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[::1]:53")}
	}
	return out
}

// resolvConf returns the namespace's resolv.conf: nw's forwarder
// addresses, keeping the host's search and options lines.
func resolvConf(hostPath string, nw relay.Network) string {
	var b strings.Builder
	b.WriteString("# generated by ustack run\n")
	fmt.Fprintf(&b, "nameserver %v\nnameserver %v\n", nw.DNS4(), nw.DNS6())
	if data, err := os.ReadFile(hostPath); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}
