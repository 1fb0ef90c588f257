package relay

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// synPacket is an IPv4 TCP SYN from the namespace to port 1 of the
// gateway, which nothing serves: the stack answers it with a reset,
// looking up a route under its lock.
func synPacket(srcPort uint16) []byte {
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: stack.Address(DefaultGuest4), DstAddr: stack.Address(DefaultGateway4)})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: srcPort, DstPort: 1, SeqNum: 1, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagSyn, WindowSize: 65535})
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, stack.Address(DefaultGuest4), stack.Address(DefaultGateway4), header.TCPMinimumSize)
	tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
	return b
}

// TestNetstackCloseUnderTraffic closes the relay's stack while a peer
// floods it with packets it must answer, over the TUN package's packet
// endpoint on a socketpair. Removing the NIC waits for the endpoint's
// dispatch loop while holding the stack's lock; without package stack's
// gate a packet in flight blocked that loop on the same lock and Close
// never returned.
func TestNetstackCloseUnderTraffic(t *testing.T) {
	leakcheck.Check(t)
	for i := 0; i < 20; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ours, peer := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "peer")
		ns, err := stack.New(StackConfig(tun.NewPacketEndpoint(ours, 1500), nil, Network{}))
		if err != nil {
			t.Fatal(err)
		}
		ns.Resume()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // flood
			defer wg.Done()
			for p := uint16(1000); ; p++ {
				select {
				case <-stop:
					return
				default:
				}
				peer.Write(synPacket(p))
			}
		}()
		go func() { // drain the resets
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				if _, err := peer.Read(buf); err != nil {
					return
				}
			}
		}()
		time.Sleep(5 * time.Millisecond)
		closed := make(chan struct{})
		go func() { ns.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Stack.Close did not return under traffic", i)
		}
		close(stop)
		peer.SetDeadline(time.Now()) // unblocks the flood and the drain
		wg.Wait()
		peer.Close()
		ours.Close()
	}
}
