package tun

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openVnet creates the TUN device for DriverVnet on the calling thread:
// IFF_VNET_HDR with the 10-byte header (TUNSETVNETHDRSZ), little-endian on
// every host (TUNSETVNETLE), and TUNSETOFFLOAD so the kernel may hand us
// TCP segments of up to 64 KiB with partial checksums (TUN_F_CSUM is the
// precondition of the TSO flags; see tun_set_offload in
// drivers/net/tun.c). Writes need no flag: the kernel honours the GSO
// fields of any header we write. The fd is non-blocking so that reads go
// through Go's netpoller.
func openVnet(cfg Config) (*Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, openError(cfg.Name, err)
	}
	name, err := setupVnet(fd, cfg.Name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	ep, err := NewVnetEndpoint(f, uint32(cfg.MTU))
	if err != nil {
		f.Close()
		return nil, err
	}
	if cfg.DisableDelayedACK {
		ep.acks = nil
	}
	return &Device{name: name, mtu: cfg.MTU, ep: ep, close: f.Close}, nil
}

// setupVnet attaches fd to a new TUN interface named name ("" lets the
// kernel choose) and turns on the virtio-net header and offloads. It
// returns the interface's name.
func setupVnet(fd int, name string) (string, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return "", fmt.Errorf("tun: name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return "", openError(name, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, virtioNetHdrLen); err != nil {
		return "", fmt.Errorf("tun: TUNSETVNETHDRSZ: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil {
		return "", fmt.Errorf("tun: TUNSETVNETLE: %w", err)
	}
	offloads := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		return "", fmt.Errorf("tun: TUNSETOFFLOAD: %w", err)
	}
	return ifr.Name(), nil
}
