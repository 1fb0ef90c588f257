//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// Sockets is the userspace implementation of API over one stack. Its
// methods are safe for concurrent use.
type Sockets struct {
	st  *stack.Stack
	fds fdTable

	resolvMu sync.Mutex     // guards resolv
	resolv   ResolverConfig // guarded by resolvMu

	// lookups ends the name lookups in flight when CloseAll runs, which
	// then starts a fresh one for later lookups (see lookupContext).
	lookupMu  sync.Mutex
	lookups   context.Context    // guarded by lookupMu; nil until needed
	endLookup context.CancelFunc // guarded by lookupMu
}

// New returns the socket calls over s, with a resolver that knows only
// numeric addresses and the loopback names ("localhost", and
// "ip6-localhost" and "ip6-loopback" for ::1) until SetResolver
// configures it.
func New(s *stack.Stack) *Sockets {
	return &Sockets{st: s}
}

// ResolverConfig configures Getaddrinfo and Getnameinfo.
type ResolverConfig struct {
	// Nameservers are queried in order, over the userspace stack.
	Nameservers []netip.AddrPort
	// Search lists domains tried for names with fewer than Ndots dots.
	Search []string
	// Ndots is resolv.conf's ndots; 0 means 1.
	Ndots int
	// Timeout bounds each query; 0 means 5s, as resolv.conf's default.
	Timeout time.Duration
	// Attempts is how many times each nameserver is tried; 0 means 2.
	Attempts int
	// Rotate starts each query at the next nameserver in turn instead of
	// the first, as resolv.conf's "options rotate".
	Rotate bool
	// HostsFile is a file in /etc/hosts format; "" means none: only the
	// loopback names are known ("localhost", and "ip6-localhost" and
	// "ip6-loopback" for ::1).
	HostsFile string
}

// SetResolver replaces the resolver configuration.
func (s *Sockets) SetResolver(cfg ResolverConfig) error {
	if cfg.Ndots < 0 || cfg.Timeout < 0 || cfg.Attempts < 0 {
		return errors.New("sockapi: ResolverConfig has a negative Ndots, Timeout or Attempts")
	}
	s.resolvMu.Lock()
	defer s.resolvMu.Unlock()
	s.resolv = cfg
	return nil
}

// lookupContext returns ctx ended also by CloseAll, and the function that
// releases it. Lookups (Getaddrinfo, Getnameinfo, a Dialer's) are not
// calls on a descriptor, so nothing else would wake one that waits for a
// silent nameserver once the Sockets are closed.
func (s *Sockets) lookupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	s.lookupMu.Lock()
	if s.lookups == nil {
		s.lookups, s.endLookup = context.WithCancel(context.Background())
	}
	all := s.lookups
	s.lookupMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(all, cancel)
	return ctx, func() { stop(); cancel() }
}

// endLookups ends every lookup in flight (CloseAll).
func (s *Sockets) endLookups() {
	s.lookupMu.Lock()
	end := s.endLookup
	s.lookups, s.endLookup = nil, nil
	s.lookupMu.Unlock()
	if end != nil {
		end()
	}
}
