//go:build !linux

package tun

import (
	"errors"
	"os"

	"github.com/songgao/water"
)

// DefaultDriver is the packet path Open uses when Config.Driver is "".
var DefaultDriver = DriverWater

func knownDriver(d Driver) bool { return d == DriverWater }

// Open creates a TUN device through water. Configuring it (NetNS, Addrs,
// Routes) is supported only on Linux.
func Open(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.NetNS != "" || len(cfg.Addrs) > 0 || len(cfg.Routes) > 0 {
		return nil, errors.New("tun: namespaces, addresses and routes are supported only on Linux")
	}
	ifce, err := water.New(water.Config{DeviceType: water.TUN})
	if err != nil {
		return nil, err
	}
	var rw interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	} = ifce
	if f, ok := ifce.ReadWriteCloser.(*os.File); ok {
		rw = f
	}
	return &Device{name: ifce.Name(), mtu: cfg.MTU, ep: NewPacketEndpoint(rw, uint32(cfg.MTU)), close: ifce.Close}, nil
}
