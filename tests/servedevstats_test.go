package tests

import (
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
	"golang.org/x/sys/unix"
)

// TestServeDeviceDropsShown: TCP segments with a wrong checksum, sent
// from the kernel side through a raw socket (so the kernel neither fills
// nor vouches for the checksum), are dropped by the vnet endpoint before
// the stack sees them; /stats.json must count them under "device".
func TestServeDeviceDropsShown(t *testing.T) {
	roottest.RequireCommand(t, "curl")
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	startServe(t, ns, "--tun-driver", "vnet")
	const sent = 3
	err := netns.Do(ns.Path, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dst := &unix.SockaddrInet4{Addr: stackV4.Addr().As4()}
		for i := range sent {
			if err := unix.Sendto(fd, badChecksumSYN(uint16(40000+i)), 0, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from a raw socket: %v", err)
	}
	js := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "http://10.99.0.2/stats.json")
	var got struct {
		Device map[string]uint64 `json:"device"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("stats.json: %v\n%s", err, js)
	}
	if got.Device["bad_checksum"] != sent {
		t.Errorf("stats.json device = %v, want bad_checksum %d", got.Device, sent)
	}
}

// badChecksumSYN is an IPv4 TCP SYN from the kernel side to the stack's
// echo port whose TCP checksum is wrong (the kernel fills in the IP
// header's checksum and length for IPPROTO_RAW).
func badChecksumSYN(sport uint16) []byte {
	p := make([]byte, 40)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_TCP
	copy(p[12:16], hostV4.Addr().AsSlice())
	copy(p[16:20], stackV4.Addr().AsSlice())
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 7)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12], tcp[13] = 5<<4, 0x02 // data offset 5, SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	binary.BigEndian.PutUint16(tcp[16:], 0xdead) // not the checksum
	return p
}
