package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/songgao/water"
	"github.com/ustack/ustack/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultDriver is the packet path Open uses when Config.Driver is "": the
// vnet fast path on Linux.
var DefaultDriver = DriverVnet

func knownDriver(d Driver) bool {
	return d == DriverWater || d == DriverVnet
}

// Open creates and configures a TUN device as cfg says.
func Open(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var d *Device
	err := netns.Do(cfg.NetNS, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("tun: netlink: %w", err)
		}
		defer h.Close()
		if cfg.Name != "" {
			if _, err := h.LinkByName(cfg.Name); err == nil {
				return fmt.Errorf("tun: %q: %w", cfg.Name, ErrExists)
			}
		}
		d, err = openDriver(cfg)
		if err != nil {
			return err
		}
		if err := configure(h, d.name, cfg); err != nil {
			d.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A peer may send its first packet as soon as Open returns: wait
	// until the kernel accepts packets to the device's addresses. Right
	// after the link comes up an IPv6 one can still lack its local route
	// for milliseconds on a busy machine, and a reply arriving then was
	// dropped (Ip6InAddrErrors), costing the first IPv6 connection or DNS
	// query a retransmission (see netns.WaitLocal).
	addrs := make([]netip.Addr, len(cfg.Addrs))
	for i, a := range cfg.Addrs {
		addrs[i] = a.Addr()
	}
	if err := netns.WaitLocal(cfg.NetNS, addrs, localWait); err != nil {
		d.Close()
		return nil, fmt.Errorf("tun: %w", err)
	}
	return d, nil
}

// localWait bounds how long Open waits for the kernel to finish setting up
// the device's addresses: milliseconds at worst on a busy machine; seconds
// mean something is wrong.
const localWait = 5 * time.Second

// openDriver opens /dev/net/tun for cfg.Driver on the calling thread (which
// is in the target namespace) and returns the device with its endpoint.
func openDriver(cfg Config) (*Device, error) {
	switch cfg.Driver {
	case DriverVnet:
		return openVnet(cfg)
	case DriverWater:
		ifce, err := water.New(water.Config{
			DeviceType:             water.TUN,
			PlatformSpecificParams: water.PlatformSpecificParams{Name: cfg.Name},
		})
		if err != nil {
			return nil, openError(cfg.Name, err)
		}
		f := ifce.ReadWriteCloser.(*os.File)
		return &Device{
			name:  ifce.Name(),
			mtu:   cfg.MTU,
			ep:    NewPacketEndpoint(f, uint32(cfg.MTU)),
			close: f.Close,
		}, nil
	}
	return nil, fmt.Errorf("tun: unknown driver %q", cfg.Driver)
}

// openError turns the errors of open(/dev/net/tun) and TUNSETIFF into ones
// that say what to do.
func openError(name string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("tun: %w", ErrPermission)
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return fmt.Errorf("tun: %q: %w", name, ErrExists)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV):
		return fmt.Errorf("tun: /dev/net/tun is missing (load the tun module): %w", err)
	}
	return fmt.Errorf("tun: open: %w", err)
}

// configure sets the MTU, addresses and routes of the device named name and
// brings it up, all through netlink.
func configure(h *netlink.Handle, name string, cfg Config) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: find %s: %w", name, err)
	}
	if err := h.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("tun: set MTU %d on %s: %w", cfg.MTU, name, err)
	}
	for _, a := range cfg.Addrs {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if a.Addr().Is6() {
			// A TUN has no link layer for duplicate address detection to
			// probe; without NODAD the address stays tentative ~1s and
			// unusable (RFC 4862 §5.4 lets a node skip DAD).
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("tun: add address %v to %s: %w", a, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("tun: set %s up: %w", name, err)
	}
	for _, r := range cfg.Routes {
		rt := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: r.Dest.Masked().Addr().AsSlice(), Mask: net.CIDRMask(r.Dest.Bits(), r.Dest.Addr().BitLen())},
		}
		if r.Gateway.IsValid() {
			rt.Gw = r.Gateway.AsSlice()
		}
		if err := h.RouteAdd(rt); err != nil {
			return fmt.Errorf("tun: add route %v via %v on %s: %w", r.Dest, r.Gateway, name, err)
		}
	}
	return nil
}
