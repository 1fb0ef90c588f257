package tests

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/tun"
	"golang.org/x/sys/unix"
)

// TestServeUDPLoopRefused: through the real device, both drivers, one
// datagram forged from the kernel side's UDP echo port (a kernel echo
// server listens on 10.99.0.1:7) to serve's UDP echo. Before, the two
// echoed each other for ever, hundreds of datagrams a second from one
// packet; now serve leaves it unanswered and counts it.
func TestServeUDPLoopRefused(t *testing.T) {
	roottest.RequireCommand(t, "curl")
	leakcheck.Check(t)
	for _, d := range drivers {
		t.Run(string(d), func(t *testing.T) {
			ns := roottest.Netns(t)
			startServe(t, ns, "--tun-driver", string(d))
			var echo net.PacketConn
			err := netnsDo(ns, func() (err error) {
				echo, err = net.ListenPacket("udp4", addrPort(hostV4, 7).String())
				return err
			})
			if err != nil {
				t.Fatalf("kernel echo server: %v", err)
			}
			defer echo.Close()
			// The kernel's echo server, for one second: a loop would
			// go on for ever.
			echoed := make(chan int)
			go func() {
				n := 0
				buf := make([]byte, 2000)
				echo.SetReadDeadline(time.Now().Add(time.Second))
				for {
					m, from, err := echo.ReadFrom(buf)
					if err != nil {
						echoed <- n
						return
					}
					n++
					echo.WriteTo(buf[:m], from)
				}
			}()
			sendRaw(t, ns, unix.AF_INET, udp4Packet(hostV4.Addr().As4(), stackV4.Addr().As4(), 7, 7, []byte("loop?")))
			if n := <-echoed; n > 1 {
				t.Errorf("one forged datagram from the kernel's echo port: the kernel echo server got %d from serve, want at most 1", n)
			}
			js := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "http://10.99.0.2/stats.json")
			var got struct {
				Services map[string]uint64 `json:"services"`
			}
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatalf("stats.json: %v\n%s", err, js)
			}
			if got.Services["udp_low_port_dropped"] != 1 {
				t.Errorf("stats.json services = %v, want udp_low_port_dropped 1", got.Services)
			}
		})
	}
}

// TestServeHostileInput: packets the stack must drop, sent from the
// kernel side through raw sockets over both drivers at MTU 1500 and 65520:
// forged sources (serve's own address, loopback, broadcast, multicast),
// broken IPv4 options, truncated UDP, ICMP with a bad checksum, IPv6 with
// a hop-by-hop header out of place and a payload length beyond the packet,
// and 2,000 fragments that never complete. serve keeps answering and the
// drops appear on the status page, each under its own counter.
func TestServeHostileInput(t *testing.T) {
	roottest.RequireCommand(t, "curl")
	leakcheck.Check(t)
	forEachLink(t, func(t *testing.T, d tun.Driver, mtu int) {
		ns := roottest.Netns(t)
		sp := startServe(t, ns, "--tun-driver", string(d), "--mtu", strconv.Itoa(mtu))
		h4, s4 := hostV4.Addr().As4(), stackV4.Addr().As4()
		var pkts [][]byte
		for _, src := range [][4]byte{s4, {127, 0, 0, 1}, {10, 99, 0, 255}, {224, 0, 0, 5}} {
			pkts = append(pkts, udp4Packet(src, s4, 7, 40000, []byte("x")))
		}
		opt := udp4Packet(h4, s4, 40000, 9, []byte("x"))
		opt = append(append(append([]byte{}, opt[:20]...), 0x07, 0x30, 0x04, 0x00), opt[20:]...) // record route, length 48
		opt[0] = 0x46
		pkts = append(pkts, opt)
		short := udp4Packet(h4, s4, 40000, 9, []byte("x"))
		binary.BigEndian.PutUint16(short[24:], 100) // UDP length beyond the packet
		binary.BigEndian.PutUint16(short[26:], 0)   // no checksum, so that the stack judges it
		pkts = append(pkts, short)
		icmp := make([]byte, 20+12)
		icmp[20], icmp[22], icmp[23] = 8, 0x12, 0x34 // echo request, a wrong checksum
		pkts = append(pkts, ipv4Header(icmp, h4, s4, unix.IPPROTO_ICMP))
		for i := range 2000 {
			frag := udp4Packet(h4, s4, 40000, 9, make([]byte, 1000))
			binary.BigEndian.PutUint16(frag[4:], uint16(i))
			frag[6] = 0x20 // more fragments, and the rest never comes
			pkts = append(pkts, frag)
		}
		sendRaw(t, ns, unix.AF_INET, pkts...)
		sendRaw(t, ns, unix.AF_INET6,
			ipv6Packet(unix.IPPROTO_DSTOPTS, []byte{0, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0}), // hop-by-hop after a destination header
			ipv6PacketLen(unix.IPPROTO_UDP, make([]byte, 8), 1000))                                    // payload length beyond the packet

		js := ns.Run("curl", "-sS", "--fail", "--max-time", "20", "http://10.99.0.2/stats.json")
		var got struct {
			Stats struct {
				IP   map[string]uint64
				ICMP map[string]uint64
				UDP  map[string]uint64
			} `json:"stats"`
		}
		if err := json.Unmarshal([]byte(js), &got); err != nil {
			t.Fatalf("stats.json: %v\n%s", err, js)
		}
		// The drops are counted, not logged: a peer must not choose what
		// the operator's terminal shows (gVisor logs a loopback source
		// at Info level).
		if out := sp.out.String(); strings.Contains(out, "artian") {
			t.Errorf("serve printed gVisor's drop log:\n%s", out)
		}
		if n := got.Stats.IP["InvalidSource"]; n != 4 {
			t.Errorf("IP.InvalidSource = %d, want 4 (own, loopback, broadcast, multicast source)", n)
		}
		if n := got.Stats.IP["MalformedPackets"]; n < 2 {
			t.Errorf("IP.MalformedPackets = %d, want at least 2 (bad IPv4 option, IPv6 length)", n)
		}
		if n := got.Stats.UDP["MalformedPackets"]; n != 1 {
			t.Errorf("UDP.MalformedPackets = %d, want 1", n)
		}
		if n := got.Stats.ICMP["Invalid"]; n != 1 {
			t.Errorf("ICMP.Invalid = %d, want 1", n)
		}
		if n := got.Stats.IP["PacketsReceived"]; n < uint64(len(pkts)+2) {
			t.Errorf("IP.PacketsReceived = %d, want at least the %d sent", n, len(pkts)+2)
		}
		if n := got.Stats.UDP["PacketsReceived"]; n != 0 {
			t.Errorf("UDP.PacketsReceived = %d, want 0: every datagram sent was bad", n)
		}
		testDaytimeChargen(t, ns)
	})
}

// sendRaw sends each packet, headers included, from a raw socket in ns.
func sendRaw(t *testing.T, ns *roottest.NS, family int, pkts ...[]byte) {
	t.Helper()
	err := netnsDo(ns, func() error {
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var dst unix.Sockaddr = &unix.SockaddrInet4{Addr: stackV4.Addr().As4()}
		if family == unix.AF_INET6 {
			dst = &unix.SockaddrInet6{Addr: stackV6.Addr().As16()}
		}
		for i, p := range pkts {
			if i%200 == 199 {
				// The device's queue holds 500 packets (txqueuelen):
				// let the stack drain it rather than have the
				// kernel drop the rest.
				time.Sleep(20 * time.Millisecond)
			}
			if err := unix.Sendto(fd, p, 0, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from a raw socket: %v", err)
	}
}

// ipv4Header fills in the IPv4 header at the front of p (20 bytes, the
// kernel computes its checksum) and returns p.
func ipv4Header(p []byte, src, dst [4]byte, proto byte) []byte {
	p[0], p[8], p[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	return p
}

// udp4Packet is an IPv4 UDP datagram with a correct checksum.
func udp4Packet(src, dst [4]byte, sport, dport uint16, data []byte) []byte {
	p := make([]byte, 28+len(data))
	ipv4Header(p, src, dst, unix.IPPROTO_UDP)
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	sum := uint32(unix.IPPROTO_UDP) + uint32(len(u))
	sum = onesSum(onesSum(onesSum(sum, src[:]), dst[:]), u)
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return p
}

func onesSum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// ipv6Packet is an IPv6 packet from the kernel side to the stack.
func ipv6Packet(next byte, payload []byte) []byte {
	return ipv6PacketLen(next, payload, len(payload))
}

// ipv6PacketLen is ipv6Packet with payload length plen in its header.
func ipv6PacketLen(next byte, payload []byte, plen int) []byte {
	p := make([]byte, 40+len(payload))
	p[0] = 6 << 4
	binary.BigEndian.PutUint16(p[4:], uint16(plen))
	p[6], p[7] = next, 64
	copy(p[8:24], hostV6.Addr().AsSlice())
	copy(p[24:40], stackV6.Addr().AsSlice())
	copy(p[40:], payload)
	return p
}
