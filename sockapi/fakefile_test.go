//go:build linux

package sockapi

import (
	"sync"
	"sync/atomic"
	"testing"

	"gvisor.dev/gvisor/pkg/waiter"
)

// fakeFile is a file whose readiness a test sets by hand, standing in for
// a socket in the Poll, Select and Epoll unit tests.
type fakeFile struct {
	q        waiter.Queue
	mu       sync.Mutex
	ready    waiter.EventMask // guarded by mu
	polls    atomic.Int64     // Readiness calls
	released atomic.Bool
}

var _ file = (*fakeFile)(nil)

func (f *fakeFile) Readiness(mask waiter.EventMask) waiter.EventMask {
	f.polls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready & mask
}

func (f *fakeFile) EventRegister(e *waiter.Entry) error {
	f.q.EventRegister(e)
	return nil
}

func (f *fakeFile) EventUnregister(e *waiter.Entry) { f.q.EventUnregister(e) }

// release wakes waiters as gVisor endpoints do when they close.
func (f *fakeFile) release(bool) error {
	f.released.Store(true)
	f.q.Notify(waiter.EventHUp | waiter.EventErr | waiter.ReadableEvents | waiter.WritableEvents)
	return nil
}

// set makes m the file's readiness and notifies waiters of it, as an
// endpoint does when something happens.
func (f *fakeFile) set(m waiter.EventMask) {
	f.mu.Lock()
	f.ready = m
	f.mu.Unlock()
	f.q.Notify(m)
}

// waiters reports whether anything is registered on the file.
func (f *fakeFile) waiters() bool { return !f.q.IsEmpty() }

// newFake installs a fake file in s and returns it with its descriptor.
func newFake(t testing.TB, s *Sockets) (*fakeFile, int) {
	t.Helper()
	f := &fakeFile{}
	return f, s.fds.install(f)
}

// closeFD closes fd the way Close does: remove it from the table, then
// release the file.
func closeFD(t testing.TB, s *Sockets, fd int) {
	t.Helper()
	e, err := s.fds.remove(fd)
	if err != nil {
		t.Errorf("close(%d) = %v", fd, err)
		return
	}
	if err := e.f.release(false); err != nil {
		t.Errorf("release(%d) = %v", fd, err)
	}
}

// closeAll closes every descriptor left in s at the end of a test.
func closeAll(s *Sockets) {
	for _, e := range s.fds.removeAll() {
		_ = e.f.release(true)
	}
}

// newFakeSockets returns a Sockets without a stack, for tests that use
// only fake files; its descriptors are closed when the test ends.
func newFakeSockets(t testing.TB) *Sockets {
	s := New(nil)
	t.Cleanup(func() { closeAll(s) })
	return s
}
