package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ustack/ustack/internal/services"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
	glog "gvisor.dev/gvisor/pkg/log"
)

func init() {
	register(command{
		name:    "serve",
		summary: "serve echo, discard, daytime, chargen and HTTP from the userspace stack on a TUN device",
		run:     runServe,
	})
}

func runServe(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServe(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "ustack serve: %v\nRun 'ustack serve -h' for help.\n", err)
		return exitUsage
	}
	// gVisor logs some drops at Info level to stderr (a martian source,
	// rate-limited); a peer would choose what the operator's terminal
	// shows. The status page counts them instead.
	glog.SetLevel(glog.Warning)
	if !startDebugFromEnv("serve", stderr) {
		return exitUsage
	}
	setServeRuntime()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default action, so that a
	// second Ctrl-C kills a shutdown that hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := serve(ctx, cfg, stdout); err != nil {
		return serveFailed(stderr, err)
	}
	return exitOK
}

// serveFailed reports a runtime failure (missing privilege, name in use,
// ...) and returns its exit status.
func serveFailed(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ustack serve: %v\n", err)
	switch {
	case errors.Is(err, tun.ErrExists):
		fmt.Fprintln(stderr, "ustack serve: choose another name with --tun, or leave --tun out to let the kernel pick one")
	case errors.Is(err, os.ErrPermission) && !errors.Is(err, tun.ErrPermission):
		// Most likely entering --netns, which needs CAP_SYS_ADMIN.
		fmt.Fprintln(stderr, "ustack serve: entering --netns needs CAP_SYS_ADMIN and creating the device needs CAP_NET_ADMIN; run as root")
	}
	return exitFailure
}

// serve brings the device, the stack and the services up, reports on
// stdout, and takes them down again in the order STYLE.md #7 gives once
// ctx is done: services (the users), stack (NIC and link endpoint),
// device (fd), pcap file.
func serve(ctx context.Context, cfg serveConfig, stdout io.Writer) (err error) {
	dev, err := tun.Open(tun.Config{
		Name: cfg.tunName, NetNS: cfg.netns, MTU: cfg.mtu, Driver: cfg.driver,
		Addrs: cfg.hostAddrs, Routes: kernelRoutes(cfg),
	})
	if err != nil {
		return err
	}
	defer closeInto(&err, "device", dev.Close)

	nic := stack.NICConfig{Name: dev.Name(), Endpoint: dev.Endpoint(), Addrs: cfg.addrs}
	if cfg.pcap != "" {
		f, ferr := os.Create(cfg.pcap)
		if ferr != nil {
			return fmt.Errorf("pcap: %w", ferr)
		}
		defer closeInto(&err, "pcap", f.Close)
		nic.Pcap = f
	}
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{nic}, Routes: stackRoutes(cfg, dev.Name())})
	if err != nil {
		return err
	}
	untrack := trackStack(st)
	defer func() {
		untrack()
		st.Close()
		// The stack stops a capture whose write failed rather than take
		// the server down; the user still learns of it.
		if cerr := st.CaptureErr(); cerr != nil && err == nil {
			err = fmt.Errorf("pcap: %w", cerr)
		}
	}()

	addrs := make([]netip.Addr, len(cfg.addrs))
	for i, p := range cfg.addrs {
		addrs[i] = p.Addr()
	}
	srv, err := services.Start(services.Config{Stack: st, Addrs: addrs, Version: version, DeviceStats: dev.Stats})
	if err != nil {
		return err
	}
	defer srv.Close()

	where := "this network namespace"
	if cfg.netns != "" {
		where = cfg.netns
	}
	fmt.Fprintf(stdout, "ustack serve: device %s in %s, MTU %d, driver %s\n", dev.Name(), where, dev.MTU(), driverName(cfg.driver))
	fmt.Fprintf(stdout, "  kernel side: %s\n  ustack:      %s\n  serving:     %s\n", joinPrefixes(cfg.hostAddrs), joinPrefixes(cfg.addrs), services.Summary)
	fmt.Fprintln(stdout, "ustack serve: ready; SIGINT or SIGTERM stops")
	select {
	case <-ctx.Done():
	case <-dev.Failed():
		// Deleted under us: nothing more can be served, and staying
		// "ready" would hide it.
		return fmt.Errorf("device %s gone: %w", dev.Name(), dev.Err())
	}
	fmt.Fprintln(stdout, "ustack serve: stopping")
	return nil
}

// kernelRoutes routes each stack address that no --host-addr subnet
// covers through the device, so the kernel can reach it.
func kernelRoutes(cfg serveConfig) []tun.Route {
	var rs []tun.Route
	for _, a := range cfg.addrs {
		if !coveredBy(a.Addr(), cfg.hostAddrs) {
			rs = append(rs, tun.Route{Dest: netip.PrefixFrom(a.Addr(), a.Addr().BitLen())})
		}
	}
	return rs
}

// stackRoutes gives the stack a default route through the device for each
// family it has an address of: the device is its only way out, and a
// default route lets it answer peers beyond the kernel side's subnet.
func stackRoutes(cfg serveConfig, nic string) []stack.Route {
	var rs []stack.Route
	if firstOfFamily(cfg.addrs, true).IsValid() {
		rs = append(rs, stack.Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), NIC: nic})
	}
	if firstOfFamily(cfg.addrs, false).IsValid() {
		rs = append(rs, stack.Route{Dest: netip.MustParsePrefix("::/0"), NIC: nic})
	}
	return rs
}

func coveredBy(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

func driverName(d tun.Driver) string {
	if d == "" {
		return string(tun.DefaultDriver)
	}
	return string(d)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

// closeInto calls close and, if *err is nil, sets it to close's error.
func closeInto(err *error, what string, close func() error) {
	if cerr := close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close %s: %w", what, cerr)
	}
}
