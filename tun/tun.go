// Package tun opens TUN devices and gives a gVisor stack a link endpoint
// for them.
//
// It knows devices and nothing of sockets. Open creates a TUN device (in
// the current network namespace or another one), configures the kernel
// side of it through netlink (MTU, addresses, routes, link up) and wraps its
// fd in a link endpoint for package stack.
//
// Ownership: the Device owns the TUN fd. The link endpoint it hands out
// does not: a Stack that is given the endpoint stops it (Stack.Close), and
// Device.Close then stops it too if needed, waits for its goroutines and
// closes the fd, which makes the kernel remove the device with its
// addresses and routes. Close the Stack first, then the Device.
package tun

import (
	"errors"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Driver selects how packets cross the device.
type Driver string

const (
	// DriverWater moves one packet per read and write through
	// github.com/songgao/water: the plain path, for comparison and for
	// systems other than Linux.
	DriverWater Driver = "water"
)

// Config describes a device to create. Zero fields take the defaults
// documented beside them.
type Config struct {
	// Name is the interface name; "" lets the kernel choose (tunN).
	Name string
	// NetNS is the path of the network namespace to create the device in
	// (/run/netns/NAME, /proc/PID/ns/net); "" means the current one.
	NetNS string
	// MTU of the device, 68 to 65535; 0 means 1500.
	MTU int
	// Addrs are the kernel side's addresses on the device.
	Addrs []netip.Prefix
	// Routes are kernel-side routes through the device.
	Routes []Route
	// Driver is the packet path; "" means DefaultDriver.
	Driver Driver
	// DisableDelayedACK makes the vnet driver write every pure ACK the
	// stack sends at once. Default off: on a connection that answers what
	// it receives, a pure ACK is held up to 1 ms so that the answer carries
	// it, as Linux's delayed ACK does (see ackDelayer in tun/ackdelay.go).
	DisableDelayedACK bool
}

// Route sends Dest through the device, via Gateway if it is valid.
type Route struct {
	Dest    netip.Prefix
	Gateway netip.Addr
}

// Device is an open TUN device.
type Device struct {
	name  string
	mtu   int
	ep    stack.LinkEndpoint
	close func() error // closes the fd; set by the driver
}

// ErrPermission is wrapped by Open's error when the caller lacks
// CAP_NET_ADMIN.
var ErrPermission = errors.New("creating a TUN device needs CAP_NET_ADMIN (run as root, or inside a user namespace that owns the network namespace)")

// ErrExists is wrapped by Open's error when Config.Name is already in use.
var ErrExists = errors.New("device name already in use")

const defaultMTU = 1500

func (c *Config) validate() error {
	if c.MTU == 0 {
		c.MTU = defaultMTU
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return fmt.Errorf("tun: MTU %d out of range 68..65535", c.MTU)
	}
	if len(c.Name) >= 16 {
		return fmt.Errorf("tun: name %q longer than 15 bytes", c.Name)
	}
	if c.Driver == "" {
		c.Driver = DefaultDriver
	}
	if !knownDriver(c.Driver) {
		return fmt.Errorf("tun: unknown driver %q", c.Driver)
	}
	for _, a := range c.Addrs {
		if !a.IsValid() {
			return fmt.Errorf("tun: invalid address %v", a)
		}
		if a.Addr().Is6() && c.MTU < 1280 {
			return fmt.Errorf("tun: IPv6 address %v needs MTU >= 1280, have %d", a, c.MTU)
		}
	}
	for _, r := range c.Routes {
		if !r.Dest.IsValid() {
			return fmt.Errorf("tun: invalid route destination %v", r.Dest)
		}
		if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dest.Addr().Is4() {
			return fmt.Errorf("tun: route %v: gateway %v of another family", r.Dest, r.Gateway)
		}
	}
	return nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// MTU returns the device MTU.
func (d *Device) MTU() int { return d.mtu }

// Endpoint returns the link endpoint to give a stack.
func (d *Device) Endpoint() stack.LinkEndpoint { return d.ep }

// Failed returns a channel closed when the device stopped working on its
// own, reading it having failed for good (someone ran `ip link del` on
// it); Err then says why. Close does not close it. The stack on the
// endpoint is not told and would wait for packets forever, so whoever
// serves on the device should watch this.
func (d *Device) Failed() <-chan struct{} {
	if f, ok := d.ep.(interface{ Failed() <-chan struct{} }); ok {
		return f.Failed()
	}
	return nil
}

// Err returns the read error that stopped the device, or nil.
func (d *Device) Err() error {
	if f, ok := d.ep.(interface{ Err() error }); ok {
		return f.Err()
	}
	return nil
}

// Close stops the endpoint, waits for its goroutines and closes the fd,
// removing the device. It is safe to call more than once.
func (d *Device) Close() error {
	if d.close == nil {
		return nil
	}
	d.ep.Close()
	d.ep.Wait()
	err := d.close()
	d.close = nil
	return err
}
