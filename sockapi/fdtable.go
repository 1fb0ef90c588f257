package sockapi

import (
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// file is what a descriptor refers to: a socket or an epoll instance.
// Poll, Select and Epoll see every file only through this interface.
type file interface {
	// Readiness returns the events of mask that are ready now
	// (waiter.ReadableEvents, WritableEvents, EventErr, EventHUp,
	// EventRdHUp, EventPri), as Linux's f_op->poll would.
	Readiness(mask waiter.EventMask) waiter.EventMask
	// EventRegister and EventUnregister add and remove a waiter that is
	// notified whenever the file's readiness may have changed.
	EventRegister(e *waiter.Entry) error
	EventUnregister(e *waiter.Entry)
	// release frees the file's resources. The table calls it once, when
	// the file's last descriptor is closed.
	release() error
}

// fdEntry is one open descriptor.
type fdEntry struct {
	f file
	// closed is closed when the descriptor is closed, waking every call
	// blocked on it so that it returns EBADF.
	closed chan struct{}
	// epolls are the epoll registrations of this descriptor (epoll.go).
	epolls epollLinks
}

// fdTable maps descriptor numbers to files, handing out the lowest free
// number first as Linux does.
type fdTable struct {
	mu      sync.Mutex
	entries []*fdEntry // guarded by mu; index is the descriptor, nil is free
}

// install gives f the lowest free descriptor.
func (t *fdTable) install(f file) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &fdEntry{f: f, closed: make(chan struct{})}
	for i, old := range t.entries {
		if old == nil {
			t.entries[i] = e
			return i
		}
	}
	t.entries = append(t.entries, e)
	return len(t.entries) - 1
}

// get returns the entry for fd, or EBADF.
func (t *fdTable) get(fd int) (*fdEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || fd >= len(t.entries) || t.entries[fd] == nil {
		return nil, unix.EBADF
	}
	return t.entries[fd], nil
}

// remove frees fd, wakes the calls blocked on it and returns its entry,
// or EBADF. The caller releases the file.
func (t *fdTable) remove(fd int) (*fdEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || fd >= len(t.entries) || t.entries[fd] == nil {
		return nil, unix.EBADF
	}
	e := t.entries[fd]
	t.entries[fd] = nil
	close(e.closed)
	e.epolls.detach()
	return e, nil
}

// removeAll frees every descriptor and returns their entries.
func (t *fdTable) removeAll() []*fdEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var all []*fdEntry
	for i, e := range t.entries {
		if e != nil {
			close(e.closed)
			e.epolls.detach()
			all = append(all, e)
			t.entries[i] = nil
		}
	}
	return all
}
