//go:build linux

package sockapi

import (
	"sync"
	"sync/atomic"

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
	// the file's last descriptor is closed; exiting says it is closed by
	// CloseAll, the Sockets' exit, rather than by Close.
	release(exiting bool) error
}

// fdEntry is one open descriptor.
type fdEntry struct {
	f file
	// closed is closed when the descriptor is closed, waking every call
	// blocked on it so that it returns EBADF.
	closed chan struct{}
	// cloexec is the descriptor flag FD_CLOEXEC (F_GETFD/F_SETFD). Nothing
	// here execs; it is kept so that programs read back what they set.
	cloexec atomic.Bool
	// status holds the file status flags of F_GETFL/F_SETFL that can be
	// changed (statusSettable); O_NONBLOCK among them makes calls on the
	// descriptor return EAGAIN instead of blocking.
	status atomic.Int32
	// epolls are the epoll registrations of this descriptor (epoll.go).
	epolls epollLinks
}

// nonblocking reports whether O_NONBLOCK is set on the descriptor.
func (e *fdEntry) nonblocking() bool { return e.status.Load()&unix.O_NONBLOCK != 0 }

// fdTable maps descriptor numbers to files, handing out the lowest free
// number first as Linux does.
type fdTable struct {
	mu      sync.Mutex
	entries []*fdEntry // guarded by mu; index is the descriptor, nil is free
	// lowFree is guarded by mu: no entry below it is free, so install
	// need not scan from 0 (10,000 descriptors made each Socket a
	// 10,000-step scan).
	lowFree int
}

// install gives f the lowest free descriptor.
func (t *fdTable) install(f file) int { return t.installFlags(f, 0) }

// installFlags is install with the SOCK_NONBLOCK and SOCK_CLOEXEC flags
// of socket(2), accept4(2) and epoll_create1(2) applied.
func (t *fdTable) installFlags(f file, flags int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &fdEntry{f: f, closed: make(chan struct{})}
	e.cloexec.Store(flags&unix.SOCK_CLOEXEC != 0)
	if flags&unix.SOCK_NONBLOCK != 0 {
		e.status.Store(unix.O_NONBLOCK)
	}
	for i := t.lowFree; i < len(t.entries); i++ {
		if t.entries[i] == nil {
			t.entries[i] = e
			t.lowFree = i + 1
			return i
		}
	}
	t.entries = append(t.entries, e)
	t.lowFree = len(t.entries)
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
	t.lowFree = min(t.lowFree, fd)
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
	t.lowFree = 0
	return all
}
