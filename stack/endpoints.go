package stack

import gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

// EndpointStats counts the stack's transport endpoints: the figure that
// shows whether sockets are released, for a program (or `ustack serve`)
// that runs for days. Each is counted once, however many protocol tables
// it is registered in (a dual-stack socket is in the IPv4 and the IPv6
// one).
type EndpointStats struct {
	// Registered endpoints receive packets: bound or listening sockets,
	// connections, and TCP connections in TIME_WAIT (TCPConfig.
	// TimeWaitTimeout).
	Registered uint64
	// Cleanup endpoints were closed and left the tables, but gVisor has
	// not yet finished releasing them (a TCP connection's last timers).
	Cleanup uint64
}

// Endpoints counts s's endpoints. It is not part of Stats because it is
// not a counter read: it walks every endpoint table holding the stack's
// lock, which new routes (new connections) wait for, about 7 ms for
// 10,000 endpoints. A page any peer can ask for must not call it more
// than about once a second (services caches it).
func (s *Stack) Endpoints() EndpointStats {
	return EndpointStats{
		Registered: countDistinct(s.s.RegisteredEndpoints()),
		Cleanup:    uint64(len(s.s.CleanupEndpoints())),
	}
}

func countDistinct(eps []gstack.TransportEndpoint) uint64 {
	seen := make(map[gstack.TransportEndpoint]struct{}, len(eps))
	for _, e := range eps {
		seen[e] = struct{}{}
	}
	return uint64(len(seen))
}
