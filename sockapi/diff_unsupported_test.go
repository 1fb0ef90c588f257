//go:build linux

package sockapi

import (
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// unsupportedOptions are options Linux has and the userspace stack does
// not (docs/sockcore.md lists them). They are not differential scenarios:
// the two sides are known to differ. What is checked instead is the
// promise of issue 3 for them: ustack refuses them with ENOPROTOOPT,
// never a silent success, while Linux does take them.
var unsupportedOptions = []struct {
	name            string
	typ, level, opt int
	value           int
}{
	{"SO_DONTROUTE", unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_DONTROUTE, 1},
	{"SO_TIMESTAMP", unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1},
	{"SO_PASSCRED", unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_PASSCRED, 1},
	{"SO_MARK", unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_MARK, 7},
	{"SO_RCVBUFFORCE", unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 65536},
	{"SO_SNDBUFFORCE", unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 65536},
	{"TCP_LINGER2", unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_LINGER2, 10},
	{"TCP_DEFER_ACCEPT", unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 5},
	{"TCP_WINDOW_CLAMP", unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, 65536},
	{"TCP_FASTOPEN", unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 5},
	{"TCP_NOTSENT_LOWAT", unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 16384},
	{"IP_RECVTOS", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_RECVTOS, 1},
	{"IP_PKTINFO", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
	{"IP_MTU_DISCOVER", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO},
	{"IP_RECVERR", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_RECVERR, 1},
	{"IP_RECVTTL", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_RECVTTL, 1},
	{"IP_FREEBIND", unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_FREEBIND, 1},
	{"IP_BIND_ADDRESS_NO_PORT", unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1},
	{"SO_NO_CHECK", unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_NO_CHECK, 1},
	{"UDP_SEGMENT", unix.SOCK_DGRAM, unix.IPPROTO_UDP, unix.UDP_SEGMENT, 1000},
	{"UDP_GRO", unix.SOCK_DGRAM, unix.IPPROTO_UDP, unix.UDP_GRO, 1},
}

func TestDiffUnsupportedOptionsRefused(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := New(st)
	defer u.CloseAll()
	k := Kernel()
	for _, o := range unsupportedOptions {
		t.Run(o.name, func(t *testing.T) {
			kfd, err := k.Socket(unix.AF_INET, o.typ, 0)
			if err != nil {
				t.Fatalf("kernel Socket = %v", err)
			}
			defer k.Close(kfd)
			if err := k.SetsockoptInt(kfd, o.level, o.opt, o.value); err != nil {
				t.Skipf("the host kernel refuses %s too (%v): not a difference here", o.name, err)
			}
			ufd, err := u.Socket(unix.AF_INET, o.typ, 0)
			if err != nil {
				t.Fatalf("ustack Socket = %v", err)
			}
			defer u.Close(ufd)
			if err := u.SetsockoptInt(ufd, o.level, o.opt, o.value); err != unix.ENOPROTOOPT {
				t.Errorf("ustack SetsockoptInt(%s, %d) = %v, want ENOPROTOOPT (Linux takes it; ustack must refuse, not ignore it)", o.name, o.value, err)
			}
			if v, err := u.GetsockoptInt(ufd, o.level, o.opt); err != unix.ENOPROTOOPT {
				t.Errorf("ustack GetsockoptInt(%s) = %d, %v, want ENOPROTOOPT", o.name, v, err)
			}
		})
	}
}
