package relay

import (
	"net"
	"os"
	"testing"

	"github.com/ustack/ustack/stack"

	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// TestMain opens what stays open for the life of the process once first
// used, before any test takes a leakcheck baseline: the runtime's network
// poller (an epoll fd and an eventfd) and gVisor's process-wide state
// (a pipe made on first use of a stack).
func TestMain(m *testing.M) {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	a, _ := pipe.New("", "", 1500)
	if s, err := stack.New(StackConfig(a, nil, Network{})); err == nil {
		s.Close()
	}
	os.Exit(m.Run())
}
