//go:build linux

package sockapi

import (
	"testing"

	"github.com/ustack/ustack/stack"
)

// The userspace side of the differential tests: a fresh loopback-only
// stack and Sockets per scenario, closed after it.
func init() {
	userspaceImpl = &impl{name: "ustack", open: func(t testing.TB) (API, func()) {
		st, err := stack.New(stack.Config{})
		if err != nil {
			t.Fatalf("stack.New: %v", err)
		}
		s := New(st)
		return s, func() {
			if err := s.CloseAll(); err != nil {
				t.Errorf("Sockets.CloseAll: %v", err)
			}
			st.Close()
		}
	}}
}

var _ API = (*Sockets)(nil)
