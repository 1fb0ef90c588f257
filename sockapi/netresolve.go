//go:build linux

package sockapi

import "context"

// netLookupAddrinfo is the Sockets' Getaddrinfo under ctx, for the Go net
// adapters: cancelling a DialContext's context, or its deadline, ends a
// DNS query in progress.
func (s *Sockets) netLookupAddrinfo(ctx context.Context, node, service string, hints *AddrInfo) ([]AddrInfo, error) {
	ctx, done := s.lookupContext(ctx)
	defer done()
	return getaddrinfo(ctx, s.userBackend(), node, service, hints)
}
