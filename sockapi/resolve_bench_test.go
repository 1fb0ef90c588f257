//go:build linux

package sockapi

import (
	"net/netip"
	"testing"
	"time"
)

// Run: go test ./sockapi -run XXX -bench Getaddrinfo -benchtime 1s

func BenchmarkGetaddrinfoNumeric(b *testing.B) {
	hints := h(0, 0, stream, 0)
	b.Run("userspace", func(b *testing.B) {
		s, _ := newResolverSockets(b, "", ResolverConfig{})
		for b.Loop() {
			if _, err := s.Getaddrinfo("127.0.0.1", "80", hints); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kernel", func(b *testing.B) {
		var r hostResolver
		for b.Loop() {
			if _, err := r.Getaddrinfo("127.0.0.1", "80", hints); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetaddrinfoLocalhost resolves "localhost" (both families,
// sorted) from the hosts table: the userspace defaults, the host's
// /etc/hosts through Go's resolver.
func BenchmarkGetaddrinfoLocalhost(b *testing.B) {
	hints := h(0, 0, stream, 0)
	b.Run("userspace", func(b *testing.B) {
		s, _ := newResolverSockets(b, "", ResolverConfig{})
		for b.Loop() {
			if _, err := s.Getaddrinfo("localhost", "80", hints); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kernel", func(b *testing.B) {
		var r hostResolver
		for b.Loop() {
			if _, err := r.Getaddrinfo("localhost", "80", hints); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetaddrinfoDNS is one A query and its answer over UDP through
// the userspace stack, to a server on the same stack.
func BenchmarkGetaddrinfoDNS(b *testing.B) {
	s, st := newResolverSockets(b, "", ResolverConfig{})
	d := startDNS(b, st.GVisor(), "127.0.0.1:53")
	d.add("www.test.", "A 192.0.2.10")
	cfg := s.resolv
	cfg.Nameservers, cfg.Timeout = []netip.AddrPort{d.addr}, time.Second
	if err := s.SetResolver(cfg); err != nil {
		b.Fatal(err)
	}
	hints := h(0, inet, stream, 0)
	for b.Loop() {
		if _, err := s.Getaddrinfo("www.test", "80", hints); err != nil {
			b.Fatal(err)
		}
		d.queries()
	}
}
