package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/relay"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
)

// runNet is the userspace network given to one namespace: the TUN device
// inside it, the stack on our side, the relay and the control socket. Its
// close tears them down in the order STYLE.md #7 asks: users first, then
// the stack, then the device.
type runNet struct {
	dev   *tun.Device
	st    *stack.Stack
	rl    *relay.Relay
	pcap  *os.File
	api   net.Listener
	apiCh chan error

	procsStop, procsDone chan struct{} // adaptProcs
	untrack              func()        // removes st from USTACK_DEBUG_ADDR's /debug/vars

	captureErr error // set by close: why the --pcap capture stopped, if it did
}

// startNet opens the TUN device in the namespace at nsPath, configures
// it, and starts the stack and relay behind it.
func startNet(o *runOptions, nsPath string, stderr io.Writer) (*runNet, error) {
	if err := netns.SetLoopbackUp(nsPath); err != nil {
		return nil, err
	}
	n := &runNet{}
	nw := o.network
	var err error
	n.dev, err = tun.Open(tun.Config{
		Name:   o.tunName,
		NetNS:  nsPath,
		MTU:    o.mtu,
		Driver: tun.Driver(o.tunDriver),
		Addrs: []netip.Prefix{
			netip.PrefixFrom(nw.Guest4(), nw.Bits4()),
			netip.PrefixFrom(nw.Guest6(), nw.Bits6()),
		},
		Routes: []tun.Route{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: nw.Gateway4()},
			{Dest: netip.MustParsePrefix("::/0"), Gateway: nw.Gateway6()},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := n.startStack(o, nsPath, stderr); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *runNet) startStack(o *runOptions, nsPath string, stderr io.Writer) error {
	var pcap io.Writer
	if o.pcap != "" {
		f, err := os.Create(o.pcap)
		if err != nil {
			return fmt.Errorf("--pcap: %w", err)
		}
		n.pcap, pcap = f, f
	}
	var err error
	if n.st, err = stack.New(relay.StackConfig(n.dev.Endpoint(), pcap, o.network)); err != nil {
		return err
	}
	n.untrack = trackStack(n.st)
	upstreams := o.dnsUpstreams
	if len(upstreams) == 0 {
		upstreams = hostResolvers("/etc/resolv.conf")
	}
	// CMD sees the host's filesystem, the control socket included;
	// through it it could listen on the host's network (a port forward).
	inside, err := netns.PeerInNetNS(nsPath)
	if err != nil {
		return err
	}
	cfg := relay.Config{
		Stack:             n.st,
		AllowHostLoopback: o.allowHostLoopback,
		Deny:              o.deny,
		DNSUpstreams:      upstreams,
		MaxFlows:          o.maxFlows,
		DialTimeout:       o.dialTimeout,
		HalfCloseTimeout:  o.halfCloseTimeout,
		UDPIdleTimeout:    o.udpTimeout,
		ControlRefuse: func(c net.Conn) error {
			if inside(c) {
				return errors.New("control socket: not open to processes inside the namespace")
			}
			return nil
		},
		LinkMalformed: func() uint64 {
			s := n.dev.Stats()
			return s.Malformed + s.BadChecksum
		},
	}
	cfg.Network = o.network // as given to StackConfig above
	cfg.Outbound4, cfg.Outbound6 = o.outbound4, o.outbound6
	if o.debug {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "ustack run: "+format+"\n", args...) }
		nw := o.network
		cfg.Logf("namespace %v/%d %v/%d, gateway %v %v, DNS %v %v", nw.Guest4(), nw.Bits4(), nw.Guest6(), nw.Bits6(),
			nw.Gateway4(), nw.Gateway6(), nw.DNS4(), nw.DNS6())
	}
	if n.rl, err = relay.New(cfg); err != nil {
		return err
	}
	for _, f := range o.forwards {
		if err := n.rl.AddForward(f); err != nil {
			return fmt.Errorf("-p %v: %w", f, err)
		}
	}
	n.procsStop, n.procsDone = make(chan struct{}), make(chan struct{})
	go adaptProcs(n.rl, cfg.Logf, n.procsStop, n.procsDone)
	// Packets flow only now that the relay is complete.
	n.st.Resume()
	if o.apiSocket != "" {
		if n.api, err = listenControl(o.apiSocket); err != nil {
			return fmt.Errorf("--api-socket: %w", err)
		}
		n.apiCh = make(chan error, 1)
		go func() { n.apiCh <- n.rl.ServeControl(n.api) }()
	}
	return nil
}

// listenControl listens on the unix socket path. A socket already there
// that nobody listens on (left by a ustack killed with SIGKILL, whose
// cleanup never ran) is replaced, so a container engine can reuse its
// path; a live one, or anything else at the path, is an error.
func listenControl(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	if fi, serr := os.Lstat(path); serr != nil || fi.Mode().Type() != fs.ModeSocket {
		return nil, err
	}
	c, derr := net.Dial("unix", path)
	if derr == nil {
		c.Close()
		return nil, fmt.Errorf("%s is in use by a running process", path)
	}
	if !errors.Is(derr, syscall.ECONNREFUSED) {
		return nil, err
	}
	// Two ustacks finding the same stale socket at once could each remove
	// it, the second removing the first one's fresh socket: paths are
	// one per container, so that race is left to whoever shares a path.
	if rerr := os.Remove(path); rerr != nil {
		return nil, rerr
	}
	return net.Listen("unix", path)
}

// close tears everything down and returns the relay's final counters.
func (n *runNet) close() relay.Stats {
	var st relay.Stats
	if n.api != nil {
		n.api.Close() // also removes the socket file
		<-n.apiCh
	}
	if n.procsStop != nil {
		close(n.procsStop)
		<-n.procsDone
	}
	if n.rl != nil {
		n.rl.Close()
		st = n.rl.Stats()
	}
	if n.st != nil {
		n.untrack()
		n.st.Close()
		n.captureErr = n.st.CaptureErr()
	}
	if n.dev != nil {
		n.dev.Close()
	}
	if n.pcap != nil {
		n.pcap.Close()
	}
	return st
}

// finish tears everything down and reports what the user should know.
func (n *runNet) finish(debug bool, stderr io.Writer) {
	report(n.close(), debug, stderr)
	if n.captureErr != nil {
		fmt.Fprintf(stderr, "ustack run: --pcap: the capture stopped early: %v\n", n.captureErr)
	}
}

// report prints the limits hit during the run, which the user should know
// about, and every counter with --debug.
func report(st relay.Stats, debug bool, stderr io.Writer) {
	if st.FlowLimitHits > 0 {
		fmt.Fprintf(stderr, "ustack run: refused %d flows at the --max-flows limit\n", st.FlowLimitHits)
	}
	if st.SYNDropped > 0 {
		fmt.Fprintf(stderr, "ustack run: dropped %d SYNs with --max-flows handshakes already pending\n", st.SYNDropped)
	}
	if st.HandshakeTimeouts > 0 {
		fmt.Fprintf(stderr, "ustack run: gave up on %d connections whose handshake the namespace did not complete within --dial-timeout\n", st.HandshakeTimeouts)
	}
	if st.Malformed > 0 {
		fmt.Fprintf(stderr, "ustack run: dropped %d malformed packets from the namespace\n", st.Malformed)
	}
	if st.HalfOpenClosed > 0 {
		fmt.Fprintf(stderr, "ustack run: closed %d half-closed connections after --half-close-timeout\n", st.HalfOpenClosed)
	}
	if debug {
		fmt.Fprintf(stderr, "ustack run: %+v\n", st)
	}
}

// exitDrainTimeout bounds how long ustack run, once the command has
// exited, waits for the relay to pass on what the command sent (only a
// host peer that stops reading makes it wait that long).
const exitDrainTimeout = 5 * time.Second

// runWithEngineFDs runs the command (runCommand), or networks the namespace
// given to --attach (runAttach), between the engine's two descriptors: it
// watches --exit-fd, and closes --ready-fd without writing when either
// fails before signalReady, so the engine reads end of file at once.
func runWithEngineFDs(o *runOptions, stderr io.Writer) int {
	defer o.fds.closeReady() // a failure before signalReady: end of file, no "1"
	exit, err := watchExit(o.fds.exit)
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
		return exitFailure
	}
	defer exit.close()
	if o.attachPath != "" {
		return runAttach(o, exit, stderr)
	}
	return runCommand(o, exit, stderr)
}

// runCommand creates the namespaces, networks them, runs the command and
// tears everything down when it exits, returning its exit status; or,
// when the --exit-fd descriptor reaches end of file first, kills the
// command, tears everything down and returns 0.
func runCommand(o *runOptions, exit *exitWatch, stderr io.Writer) int {
	resolv, err := os.CreateTemp("", "ustack-resolv-*.conf")
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
		return exitFailure
	}
	defer os.Remove(resolv.Name())
	resolv.WriteString(resolvConf("/etc/resolv.conf", o.network))
	resolv.Chmod(0o644)
	resolv.Close()

	proc, err := netns.Start(netns.ExecConfig{Argv: o.argv, ResolvConf: resolv.Name()})
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
		return exitFailure
	}
	// Signals arriving from now on go to the command.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, netns.ForwardedSignals()...)
	defer signal.Stop(sigs)

	n, err := startNet(o, proc.NetNS(), stderr)
	if err != nil {
		proc.Close()
		fmt.Fprintf(stderr, "ustack run: %v\n", explain(err))
		return exitFailure
	}
	// Ready before the command runs: the engine learns that ustack's part
	// is done (the network is up, the forwards listen), and the command
	// never sends a packet before the engine was told. Whether the
	// command itself is ready is the command's to say.
	if err := o.fds.signalReady(); err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
	}
	if err := proc.Release(); err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
	}
	for waiting := true; waiting; {
		select {
		case s := <-sigs:
			proc.Signal(s)
		case <-exit.EOF():
			// The engine is done with the namespace: stop now, as
			// slirp4netns does; nothing the command sent is waited for.
			proc.Close()
			n.finish(o.debug, stderr)
			return exitOK
		case <-proc.Done():
			waiting = false
		}
	}
	status := proc.Wait()
	proc.Close() // kills what the command left running in the namespace
	// What the command wrote before it exited may still sit in the
	// relay, acknowledged to it already: deliver it first (relay.Drain).
	n.rl.Drain(exitDrainTimeout)
	n.finish(o.debug, stderr)
	return status
}

// runAttach networks an existing namespace until SIGINT or SIGTERM, or
// until the --exit-fd descriptor reaches end of file.
func runAttach(o *runOptions, exit *exitWatch, stderr io.Writer) int {
	// Hold the namespace so it cannot vanish and be replaced under us.
	f, err := os.Open(o.attachPath)
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: attach: %v\n", err)
		return exitFailure
	}
	defer f.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	n, err := startNet(o, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ustack run: attach %s: %v\n", o.attachPath, explain(err))
		return exitFailure
	}
	if err := o.fds.signalReady(); err != nil {
		fmt.Fprintf(stderr, "ustack run: %v\n", err)
	}
	select {
	case <-sigs:
	case <-exit.EOF():
	}
	n.finish(o.debug, stderr)
	return exitOK
}

// explain adds what to do to errors whose cause the user cannot see.
func explain(err error) error {
	if errors.Is(err, tun.ErrPermission) && netns.InUserNS() {
		if fi, serr := os.Stat("/dev/net/tun"); serr == nil && fi.Mode().Perm()&0o006 != 0o006 {
			return fmt.Errorf("%w; /dev/net/tun is mode %v here, and without root it must be readable and writable by others (0666, as udev normally sets it)", err, fi.Mode().Perm())
		}
	}
	return err
}
