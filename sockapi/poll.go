//go:build linux

package sockapi

// This file holds Poll and what Poll, Select and Epoll share: the one
// mapping between gVisor's waiter.EventMask and the POLL*/EPOLL* bits
// (which Linux numbers identically), and the one way they block.

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// pollBits pairs each readiness event a file can report with its Linux
// poll(2) bit. EPOLL* bits have the same values (eventpoll.h), and x/sys/unix
// names the band bits only as EPOLL*.
var pollBits = [...]struct {
	ev    waiter.EventMask
	linux uint32
}{
	{waiter.EventIn, unix.POLLIN},
	{waiter.EventPri, unix.POLLPRI},
	{waiter.EventOut, unix.POLLOUT},
	{waiter.EventErr, unix.POLLERR},
	{waiter.EventHUp, unix.POLLHUP},
	{waiter.EventRdNorm, unix.EPOLLRDNORM},
	{waiter.EventWrNorm, unix.EPOLLWRNORM},
	{waiter.EventRdHUp, unix.POLLRDHUP},
}

// alwaysPolled are reported whether or not the caller asked for them
// (poll(2): "ignored in events"; epoll_ctl(2): "always wait for").
const alwaysPolled = unix.POLLERR | unix.POLLHUP

// toLinux converts ready events to poll bits. Linux sockets and epoll
// always report POLLIN with POLLRDNORM and POLLOUT with POLLWRNORM
// (tcp_poll, datagram_poll, ep_eventpoll_poll), so either one implies both.
func toLinux(m waiter.EventMask) uint32 {
	var r uint32
	for _, b := range pollBits {
		if m&b.ev != 0 {
			r |= b.linux
		}
	}
	if r&(unix.POLLIN|unix.EPOLLRDNORM) != 0 {
		r |= unix.POLLIN | unix.EPOLLRDNORM
	}
	if r&(unix.POLLOUT|unix.EPOLLWRNORM) != 0 {
		r |= unix.POLLOUT | unix.EPOLLWRNORM
	}
	return r
}

// notifyMask is the waiter mask under which a caller interested in the
// poll bits events must be woken. Error and hang-up are always included.
// gVisor endpoints announce FIN, urgent data and connection state changes
// as readable or writable events, so the side bits imply those.
func notifyMask(events uint32) waiter.EventMask {
	events |= alwaysPolled
	var m waiter.EventMask
	for _, b := range pollBits {
		if events&b.linux != 0 {
			m |= b.ev
		}
	}
	if events&(unix.POLLRDHUP|unix.POLLPRI|unix.EPOLLRDBAND) != 0 {
		m |= waiter.ReadableEvents
	}
	if events&unix.EPOLLWRBAND != 0 {
		m |= waiter.WritableEvents
	}
	return m
}

// readiness returns every poll bit f reports now, as Linux's f_op->poll
// does; callers filter the result by what was asked for. Sockets follow
// tcp_poll and datagram_poll in their Readiness (readiness.go), except
// for POLLWRBAND, which waiter.EventMask cannot express: datagram_poll
// reports it with every POLLOUT, tcp_poll never.
func readiness(f file) uint32 {
	m := toLinux(f.Readiness(waiter.AllEvents))
	if sk, ok := f.(*socket); ok && !sk.stream() && m&unix.POLLOUT != 0 {
		m |= unix.EPOLLWRBAND
	}
	return m
}

// deadline is the timeout of one Poll, Select or EpollWait call.
type deadline struct {
	immediate bool             // timeout 0: check once, never block
	timer     *time.Timer      // nil when blocking without a limit
	expired   <-chan time.Time // timer's channel, or nil
}

// newDeadline starts the clock for a call that waits at most d, or without
// limit when infinite is set.
func newDeadline(d time.Duration, infinite bool) *deadline {
	switch {
	case infinite:
		return &deadline{}
	case d <= 0:
		return &deadline{immediate: true}
	}
	t := time.NewTimer(d)
	return &deadline{timer: t, expired: t.C}
}

// stop releases the timer.
func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}

// wait blocks until notify fires (true), or the deadline passes or closed
// is closed (false). Callers register their waiters and re-check
// readiness before calling wait, so that no notification is lost.
func (d *deadline) wait(notify <-chan struct{}, closed <-chan struct{}) bool {
	if d.immediate {
		return false
	}
	select {
	case <-notify:
		return true
	case <-d.expired:
		d.immediate = true
		return false
	case <-closed:
		return false
	}
}

// msecDeadline converts a poll(2)/epoll_wait(2) timeout: negative blocks
// without limit, 0 returns at once.
func msecDeadline(msec int) *deadline {
	if int64(msec) >= math.MaxInt64/int64(time.Millisecond) {
		return newDeadline(0, true) // beyond time.Duration: never ends
	}
	return newDeadline(time.Duration(msec)*time.Millisecond, msec < 0)
}

// pollWaiter is one registration of a blocking Poll or Select call on a
// file.
type pollWaiter struct {
	f     file // file the entry is registered with, or nil
	entry waiter.Entry
}

// watch makes sure w is registered with f under mask, moving it from the
// file it was on before (a descriptor closed and reused meanwhile).
func (w *pollWaiter) watch(f file, mask waiter.EventMask, notify chan struct{}) {
	if w.f == f {
		return
	}
	w.unwatch()
	w.entry.Init(waiter.ChannelNotifier(notify), mask)
	if f.EventRegister(&w.entry) == nil {
		w.f = f
	}
}

// unwatch removes w from its file, if any.
func (w *pollWaiter) unwatch() {
	if w.f != nil {
		w.f.EventUnregister(&w.entry)
		w.f = nil
	}
}

// pollNofile is RLIMIT_NOFILE's soft limit, which bounds poll's nfds
// (fs/select.c do_sys_poll). It is read on every call, as Linux does.
func pollNofile() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return ^uint64(0)
	}
	return rl.Cur
}

// Poll waits until one of fds is ready for its requested events, as
// poll(2): entries with a negative Fd are ignored (Revents 0), unknown
// descriptors report POLLNVAL, POLLERR and POLLHUP are reported even when
// not requested. A negative timeout (milliseconds) blocks without limit;
// 0 returns at once. It returns the number of entries with Revents set.
func (s *Sockets) Poll(fds []unix.PollFd, timeout int) (n int, err error) {
	if uint64(len(fds)) > pollNofile() {
		return -1, unix.EINVAL
	}
	dl := msecDeadline(timeout)
	defer dl.stop()
	var waiters []pollWaiter // nil on the first, non-registering pass
	var notify chan struct{}
	defer func() {
		for i := range waiters {
			waiters[i].unwatch()
		}
	}()
	for {
		if n := s.pollOnce(fds, waiters, notify); n > 0 || dl.immediate {
			return n, nil
		}
		if waiters == nil {
			waiters, notify = make([]pollWaiter, len(fds)), make(chan struct{}, 1)
			continue
		}
		dl.wait(notify, nil)
	}
}

// pollOnce fills in every entry's Revents and returns how many are set.
// With waiters, it first registers a waiter on each file it checks.
func (s *Sockets) pollOnce(fds []unix.PollFd, waiters []pollWaiter, notify chan struct{}) int {
	n := 0
	for i := range fds {
		p := &fds[i]
		p.Revents = 0
		if p.Fd < 0 {
			continue
		}
		e, err := s.fds.get(int(p.Fd))
		if err != nil {
			p.Revents = unix.POLLNVAL
			n++
			continue
		}
		want := uint32(uint16(p.Events)) | alwaysPolled
		if waiters != nil {
			waiters[i].watch(e.f, notifyMask(want), notify)
		}
		if r := readiness(e.f) & want; r != 0 {
			p.Revents = int16(r)
			n++
		}
	}
	return n
}
