package sockapi

// getaddrinfo calls the Sockets' Getaddrinfo. Until the resolver is part
// of this build, Sockets has none, and every name is unknown (EAI_NONAME):
// the adapters then accept numeric hosts and ports only.
func (s *Sockets) getaddrinfo(node, service string, hints *AddrInfo) ([]AddrInfo, error) {
	r, ok := any(s).(interface {
		Getaddrinfo(node, service string, hints *AddrInfo) ([]AddrInfo, error)
	})
	if !ok {
		return nil, &AddrinfoError{Code: EAI_NONAME}
	}
	return r.Getaddrinfo(node, service, hints)
}
