//go:build linux

package sockapi

import (
	"flag"
	"fmt"
	"math/rand"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestDiffRandomSequences runs generated call sequences, the same on the
// kernel and on ustack, and requires identical transcripts, as TestDiff
// does for written scenarios. Only calls whose outcome does not depend
// on timing take part: no data crosses a connection, so no step waits
// for gVisor's goroutines. The sequences mix sockets of both families
// and types with bind, listen, options at edge values, shutdown,
// non-blocking accept and recv, getsockname/getpeername and poll, on
// live, closed and never-opened descriptors. They found three
// differences the written scenarios had missed (recv after shutdown of
// an unconnected socket, IPV6_V6ONLY after bind, a listener stopped by
// SHUT_WR after an earlier SHUT_RD).
func TestDiffRandomSequences(t *testing.T) {
	leakcheck.Check(t)
	if userspaceImpl == nil {
		t.Skip("no userspace implementation")
	}
	kernelV6 := hasIPv6Loopback(Kernel())
	fails := 0
	for seed := int64(0); seed < int64(*randomSequences) && fails < 3; seed++ {
		scn := scenario{name: fmt.Sprintf("random/%d", seed), run: randomProgram(seed, kernelV6)}
		want := runOn(t, kernelImpl, scn)
		got := runOn(t, *userspaceImpl, scn)
		if !equal(want, got) {
			fails++
			t.Errorf("sequence %d differs:\n%s", seed, sideBySide(want, got))
		}
	}
}

var randomSequences = flag.Int("random-sequences", 1000, "how many generated sequences TestDiffRandomSequences runs")

// randomOpts are the options the sequences set and get.
var randomOpts = [][2]int{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}, {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	{unix.SOL_SOCKET, unix.SO_BROADCAST}, {unix.SOL_SOCKET, unix.SO_RCVLOWAT}, {unix.SOL_SOCKET, unix.SO_TYPE},
	{unix.SOL_SOCKET, unix.SO_ERROR}, {unix.SOL_SOCKET, unix.SO_ACCEPTCONN}, {unix.SOL_SOCKET, unix.SO_DOMAIN},
	{unix.SOL_SOCKET, unix.SO_PROTOCOL}, {unix.SOL_SOCKET, unix.SO_OOBINLINE}, {unix.SOL_SOCKET, unix.SO_PRIORITY},
	{unix.IPPROTO_TCP, unix.TCP_NODELAY}, {unix.IPPROTO_TCP, unix.TCP_CORK}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, {unix.IPPROTO_TCP, unix.TCP_KEEPCNT}, {unix.IPPROTO_TCP, unix.TCP_SYNCNT},
	{unix.IPPROTO_TCP, unix.TCP_MAXSEG}, {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}, {unix.IPPROTO_TCP, unix.TCP_INFO},
	{unix.IPPROTO_IP, unix.IP_TTL}, {unix.IPPROTO_IP, unix.IP_TOS},
	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}, {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}, {unix.IPPROTO_IPV6, unix.IPV6_TCLASS},
	{unix.SOL_UDP, unix.UDP_CORK},
}

var randomValues = []int{-1, 0, 1, 2, 255, 256, 4096, 1 << 20}

// randomProgram is sequence seed: 25 steps on the descriptors it opens
// (now and then on one never opened). It leaves out what is known to
// differ: shutdown(SHUT_RD) of a socket that listened (Linux's
// getsockname then still shows the released port), and IPv6 when the
// host has no IPv6 loopback.
func randomProgram(seed int64, v6ok bool) func(r *rec) {
	return func(r *rec) {
		rng := rand.New(rand.NewSource(seed))
		var fds []int
		listened := map[int]bool{}
		pick := func() int {
			if len(fds) == 0 || rng.Intn(10) == 0 {
				return 1<<20 - 7 // never a descriptor
			}
			return fds[rng.Intn(len(fds))]
		}
		for i := 0; i < 25; i++ {
			switch rng.Intn(12) {
			case 0, 1:
				dom := unix.AF_INET
				if v6ok && rng.Intn(2) == 0 {
					dom = unix.AF_INET6
				}
				typ := []int{unix.SOCK_STREAM, unix.SOCK_DGRAM}[rng.Intn(2)] | unix.SOCK_NONBLOCK
				if fd := r.Socket(dom, typ, 0); fd >= 0 {
					fds = append(fds, fd)
				}
			case 2:
				sas := []unix.Sockaddr{v4.lo(0), v4.any(0)}
				if v6ok {
					sas = append(sas, v6.lo(0), v6.any(0), mapped4(0))
				}
				r.Bind(pick(), sas[rng.Intn(len(sas))])
			case 3:
				fd := pick()
				if r.Listen(fd, rng.Intn(3)) == nil {
					listened[fd] = true
				}
			case 4, 5:
				o := randomOpts[rng.Intn(len(randomOpts))]
				r.SetInt(pick(), o[0], o[1], randomValues[rng.Intn(len(randomValues))])
			case 6, 7:
				o := randomOpts[rng.Intn(len(randomOpts))]
				r.GetInt(pick(), o[0], o[1])
			case 8:
				fd, how := pick(), rng.Intn(3)
				if listened[fd] && how != unix.SHUT_WR {
					continue
				}
				r.Shutdown(fd, how)
			case 9:
				r.Getsockname(pick())
				r.Getpeername(pick())
			case 10:
				r.Accept4(pick(), unix.SOCK_NONBLOCK)
				r.Recv(pick(), 4, unix.MSG_DONTWAIT)
			case 11:
				r.Poll(0, pq{pick(), unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP})
			}
		}
	}
}
