//go:build linux

package sockapi

import (
	"math"
	"math/bits"
	"time"

	"golang.org/x/sys/unix"
)

// Select's conditions, as fs/select.c defines them: what makes a
// descriptor count as readable, writable or exceptional.
const (
	selectIn  = unix.POLLIN | unix.EPOLLRDNORM | unix.EPOLLRDBAND | unix.POLLHUP | unix.POLLERR
	selectOut = unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND | unix.POLLERR
	selectEx  = unix.POLLPRI
)

// fdSetSize is FD_SETSIZE: the number of bits in a unix.FdSet.
const fdSetSize = len(unix.FdSet{}.Bits) * bits.UintSize

// selectMax is Linux's fdtable max_fds for a table this size: 64 entries
// at first, doubling as it grows (fs/file.c). select(2) silently clips
// nfd to it, so bits beyond it are ignored rather than EBADF.
func (t *fdTable) selectMax() int {
	t.mu.Lock()
	n := len(t.entries)
	t.mu.Unlock()
	m := 64
	for m < n {
		m *= 2
	}
	return m
}

// isOpen reports whether fd is an open descriptor.
func (t *fdTable) isOpen(fd int) bool {
	_, err := t.get(fd)
	return err == nil
}

// selectSets holds the three descriptor sets of one Select call.
type selectSets [3]*unix.FdSet

// any reports whether fd is in one of the sets.
func (ss *selectSets) any(fd int) bool {
	for _, s := range ss {
		if s != nil && s.IsSet(fd) {
			return true
		}
	}
	return false
}

// Select waits until a descriptor below nfd in r, w or e is readable,
// writable or has an exceptional condition, as select(2) via
// golang.org/x/sys/unix (pselect6): the sets are replaced by the ready
// descriptors, the result counts each (descriptor, set) pair, and timeout
// is not modified. A nil timeout blocks without limit; a zero one returns
// at once. Errors: EINVAL for a negative nfd or a timeout that is not a
// valid timespec; EBADF if a set names a descriptor that is not open.
//
// Like Linux, nfd above the table's size is clipped (not EINVAL), and so
// is nfd above FD_SETSIZE, the bits a unix.FdSet holds.
func (s *Sockets) Select(nfd int, r *unix.FdSet, w *unix.FdSet, e *unix.FdSet, timeout *unix.Timeval) (n int, err error) {
	dl, err := selectDeadline(timeout)
	if err != nil {
		return -1, err
	}
	defer dl.stop()
	if nfd < 0 {
		return -1, unix.EINVAL
	}
	nfd = min(nfd, s.fds.selectMax(), fdSetSize)
	in := selectSets{r, w, e}
	for fd := 0; fd < nfd; fd++ {
		if in.any(fd) && !s.fds.isOpen(fd) {
			return -1, unix.EBADF
		}
	}
	var want selectSets
	for i, set := range in {
		if set != nil {
			cp := *set
			want[i] = &cp
		}
	}
	return s.selectWait(nfd, &want, &in, dl), nil
}

// selectDeadline checks a Select timeout the way pselect6 does (the
// unix.Timeval becomes a timespec with Usec*1000 nanoseconds).
func selectDeadline(tv *unix.Timeval) (*deadline, error) {
	if tv == nil {
		return newDeadline(0, true), nil
	}
	if tv.Sec < 0 || tv.Usec < 0 || tv.Usec >= 1e6 {
		return nil, unix.EINVAL
	}
	if tv.Sec >= math.MaxInt64/int64(time.Second) {
		return newDeadline(0, true), nil // centuries: Linux clamps, we wait
	}
	d := time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
	return newDeadline(d, false), nil
}

// selectWait blocks until selectOnce finds a ready descriptor or dl
// passes, then writes the result into out.
func (s *Sockets) selectWait(nfd int, want, out *selectSets, dl *deadline) int {
	var got selectSets
	for i := range got {
		got[i] = new(unix.FdSet)
	}
	var waiters []pollWaiter // nil on the first, non-registering pass
	var notify chan struct{}
	defer func() {
		for i := range waiters {
			waiters[i].unwatch()
		}
	}()
	n := 0
	for {
		if n = s.selectOnce(nfd, want, &got, waiters, notify); n > 0 || dl.immediate {
			break
		}
		if waiters == nil {
			waiters, notify = make([]pollWaiter, nfd), make(chan struct{}, 1)
			continue
		}
		dl.wait(notify, nil)
	}
	for i, set := range out {
		if set != nil {
			copyFdBits(set, got[i], nfd)
		}
	}
	return n
}

// selectOnce records in got the descriptors of want that are ready now
// and returns how many (descriptor, set) pairs it recorded. Descriptors
// closed since the call began are skipped, as Linux's do_select does.
func (s *Sockets) selectOnce(nfd int, want, got *selectSets, waiters []pollWaiter, notify chan struct{}) int {
	n := 0
	conds := [3]uint32{selectIn, selectOut, selectEx}
	for fd := 0; fd < nfd; fd++ {
		var asked uint32
		for i, set := range want {
			if set != nil && set.IsSet(fd) {
				asked |= conds[i]
			}
		}
		if asked == 0 {
			continue
		}
		e, err := s.fds.get(fd)
		if err != nil {
			continue
		}
		if waiters != nil {
			waiters[fd].watch(e.f, notifyMask(asked), notify)
		}
		ready := readiness(e.f)
		for i, set := range want {
			if set != nil && set.IsSet(fd) && ready&conds[i] != 0 {
				got[i].Set(fd)
				n++
			}
		}
	}
	return n
}

// copyFdBits writes the words of src that cover descriptors below nfd
// into dst, leaving later words alone: Linux copies back only
// FDS_BYTES(nfd) bytes of each set.
func copyFdBits(dst, src *unix.FdSet, nfd int) {
	words := (nfd + bits.UintSize - 1) / bits.UintSize
	copy(dst.Bits[:words], src.Bits[:words])
}
