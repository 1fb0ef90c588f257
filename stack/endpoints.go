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

// endpointStats counts s's endpoints. It walks every table under gVisor's
// locks, so its cost grows with the number of endpoints: fine for a status
// page, not for a packet path.
func (s *Stack) endpointStats() EndpointStats {
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
