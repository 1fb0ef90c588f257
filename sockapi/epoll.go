//go:build linux

package sockapi

import (
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// epollMaxNests is how deep epoll instances may watch one another
// (EP_MAX_NESTS in fs/eventpoll.c); deeper nesting or a cycle is ELOOP.
const epollMaxNests = 4

// epollNestMu guards every epollFile's children and parents, so that the
// loop check of one EPOLL_CTL_ADD sees a stable graph (Linux's
// epnested_mutex).
var epollNestMu sync.Mutex

// epollLinks lists the epoll registrations of one descriptor, so that
// closing the descriptor removes it from every epoll set, as epoll(7)
// says. It lives in fdEntry; fdTable.remove calls detach.
type epollLinks struct {
	mu     sync.Mutex
	items  []*epItem // guarded by mu
	closed bool      // guarded by mu; the descriptor is gone
}

// add links it, or fails with EBADF once the descriptor is closed.
func (l *epollLinks) add(it *epItem) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return unix.EBADF
	}
	l.items = append(l.items, it)
	return nil
}

// drop unlinks it.
func (l *epollLinks) drop(it *epItem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.items {
		if x == it {
			l.items = append(l.items[:i], l.items[i+1:]...)
			return
		}
	}
}

// detach removes every registration of the closed descriptor from its
// epoll instance (eventpoll_release).
func (l *epollLinks) detach() {
	l.mu.Lock()
	items := l.items
	l.items, l.closed = nil, true
	l.mu.Unlock()
	for _, it := range items {
		it.ep.mu.Lock()
		it.ep.removeLocked(it)
		it.ep.mu.Unlock()
	}
}

// removeLocked takes it out of ep: off the file's wait queue, the ready
// list, the descriptor's links and the nesting graph. It is idempotent.
func (ep *epollFile) removeLocked(it *epItem) {
	if it.gone {
		return
	}
	it.gone = true
	delete(ep.items, it.fd)
	it.f.EventUnregister(&it.waiter)
	ep.readyMu.Lock()
	ep.ready.remove(it)
	ep.readyMu.Unlock()
	it.entry.epolls.drop(it)
	if child, ok := it.f.(*epollFile); ok {
		epollNestMu.Lock()
		unnest(ep, child)
		epollNestMu.Unlock()
	}
}

// EpollCreate1 creates an epoll instance, as epoll_create1(2). The only
// flag is EPOLL_CLOEXEC; anything else is EINVAL.
func (s *Sockets) EpollCreate1(flag int) (fd int, err error) {
	if flag&^unix.EPOLL_CLOEXEC != 0 {
		return -1, unix.EINVAL
	}
	// EPOLL_CLOEXEC is O_CLOEXEC, as is SOCK_CLOEXEC.
	return s.fds.installFlags(newEpollFile(), flag), nil
}

// EpollCtl adds, modifies or removes the registration of fd with the
// epoll instance epfd, as epoll_ctl(2), with Linux's checks in Linux's
// order (do_epoll_ctl): EFAULT for a nil event with ADD or MOD, EBADF for
// a closed epfd or fd, EINVAL when epfd is not an epoll instance or is fd
// itself or for misused EPOLLEXCLUSIVE, ELOOP for a cycle or nesting
// deeper than 5 instances, then EEXIST (ADD) or ENOENT (MOD, DEL), and
// EINVAL for an unknown op. EPOLLERR and EPOLLHUP are always watched.
func (s *Sockets) EpollCtl(epfd int, op int, fd int, event *unix.EpollEvent) error {
	withEvent := op != unix.EPOLL_CTL_DEL
	if withEvent && event == nil {
		return unix.EFAULT
	}
	epe, err := s.fds.get(epfd)
	if err != nil {
		return err
	}
	te, err := s.fds.get(fd)
	if err != nil {
		return err
	}
	ep, ok := epe.f.(*epollFile)
	if !ok || epe.f == te.f {
		return unix.EINVAL
	}
	var ev unix.EpollEvent
	if withEvent {
		ev = *event
		// EPOLLWAKEUP needs CAP_BLOCK_SUSPEND and means nothing here;
		// Linux drops it silently without the capability.
		ev.Events &^= unix.EPOLLWAKEUP
		if err := checkExclusive(op, ev.Events, te.f); err != nil {
			return err
		}
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	it := ep.items[fd]
	if it != nil && it.entry != te {
		it = nil // fd was closed and reused; detach is removing it
	}
	switch op {
	case unix.EPOLL_CTL_ADD:
		if it != nil {
			return unix.EEXIST
		}
		return ep.insertLocked(fd, te, ev)
	case unix.EPOLL_CTL_MOD:
		if it == nil {
			return unix.ENOENT
		}
		if it.events.Load()&unix.EPOLLEXCLUSIVE != 0 {
			return unix.EINVAL
		}
		ep.modifyLocked(it, ev)
		return nil
	case unix.EPOLL_CTL_DEL:
		if it == nil {
			return unix.ENOENT
		}
		ep.removeLocked(it)
		return nil
	}
	return unix.EINVAL
}

// epollExclusiveOK are the only events EPOLLEXCLUSIVE may come with.
const epollExclusiveOK = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP |
	unix.EPOLLWAKEUP | unix.EPOLLET | unix.EPOLLEXCLUSIVE

// checkExclusive applies epoll_ctl(2)'s EPOLLEXCLUSIVE rules: ADD only,
// not on an epoll instance, and only with epollExclusiveOK events.
// Registrations marked exclusive then behave as ordinary ones: with one
// waiter per notification they are indistinguishable.
func checkExclusive(op int, events uint32, target file) error {
	if events&unix.EPOLLEXCLUSIVE == 0 {
		return nil
	}
	if op == unix.EPOLL_CTL_MOD {
		return unix.EINVAL
	}
	_, isEpoll := target.(*epollFile)
	if op == unix.EPOLL_CTL_ADD && (isEpoll || events&^epollExclusiveOK != 0) {
		return unix.EINVAL
	}
	return nil
}

// insertLocked registers the descriptor te (number fd) with ep and queues
// it at once if it is already ready (ep_insert).
func (ep *epollFile) insertLocked(fd int, te *fdEntry, ev unix.EpollEvent) error {
	it := &epItem{ep: ep, fd: fd, entry: te, f: te.f, data: [2]int32{ev.Fd, ev.Pad}}
	it.events.Store(ev.Events | alwaysPolled)
	if child, ok := te.f.(*epollFile); ok {
		if err := nest(ep, child); err != nil {
			return err
		}
	}
	if err := te.epolls.add(it); err != nil {
		if child, ok := te.f.(*epollFile); ok {
			epollNestMu.Lock()
			unnest(ep, child)
			epollNestMu.Unlock()
		}
		return err
	}
	it.waiter.Init(it, notifyMask(ev.Events))
	if err := it.f.EventRegister(&it.waiter); err != nil {
		it.gone = true
		te.epolls.drop(it)
		return unix.EPERM // the file cannot be polled (file_can_poll)
	}
	ep.items[fd] = it
	ep.queueIfReady(it)
	return nil
}

// modifyLocked replaces it's events and data and queues it if it is ready
// now (ep_modify); this also re-arms a disarmed EPOLLONESHOT item.
func (ep *epollFile) modifyLocked(it *epItem, ev unix.EpollEvent) {
	it.data = [2]int32{ev.Fd, ev.Pad}
	if mask := notifyMask(ev.Events); mask != it.waiter.Mask() {
		it.f.EventUnregister(&it.waiter)
		it.waiter.Init(it, mask)
		_ = it.f.EventRegister(&it.waiter) // it registered before
	}
	it.events.Store(ev.Events | alwaysPolled)
	ep.queueIfReady(it)
}

// queueIfReady puts it on the ready list and wakes waiters if it has an
// event now. Called after (re)registering, so no notification is lost.
func (ep *epollFile) queueIfReady(it *epItem) {
	if it.poll() == 0 {
		return
	}
	ep.readyMu.Lock()
	ep.ready.pushBack(it)
	ep.readyMu.Unlock()
	ep.q.Notify(waiter.ReadableEvents)
}

// EpollWait waits for events on the epoll instance epfd, as
// epoll_wait(2): it fills events with at most len(events) ready
// registrations, each with its data as registered. msec < 0 blocks
// without limit, 0 returns at once. Errors: EINVAL for an empty events
// slice or an epfd that is not an epoll instance, EBADF for a closed
// epfd, including one closed while the call waits.
func (s *Sockets) EpollWait(epfd int, events []unix.EpollEvent, msec int) (n int, err error) {
	if len(events) == 0 {
		return -1, unix.EINVAL
	}
	e, err := s.fds.get(epfd)
	if err != nil {
		return -1, err
	}
	ep, ok := e.f.(*epollFile)
	if !ok {
		return -1, unix.EINVAL
	}
	if n := ep.collect(events); n > 0 || msec == 0 {
		return n, nil
	}
	dl := msecDeadline(msec)
	defer dl.stop()
	w, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	ep.q.EventRegister(&w)
	defer ep.q.EventUnregister(&w)
	for {
		if n := ep.collect(events); n > 0 || dl.immediate {
			return n, nil
		}
		if !dl.wait(notify, e.closed) && !dl.immediate {
			return -1, unix.EBADF
		}
	}
}

// nest records that parent watches child, or returns ELOOP if that would
// close a cycle or nest instances more than epollMaxNests deep
// (ep_loop_check: depth below child + 1 + depth above parent).
func nest(parent, child *epollFile) error {
	epollNestMu.Lock()
	defer epollNestMu.Unlock()
	below := depth(child, parent, func(e *epollFile) map[*epollFile]int { return e.children }, map[*epollFile]int{})
	above := depth(parent, nil, func(e *epollFile) map[*epollFile]int { return e.parents }, map[*epollFile]int{})
	if below+1+above > epollMaxNests {
		return unix.ELOOP
	}
	if parent.children == nil {
		parent.children = make(map[*epollFile]int)
	}
	if child.parents == nil {
		child.parents = make(map[*epollFile]int)
	}
	parent.children[child]++
	child.parents[parent]++
	return nil
}

// unnest undoes one nest(parent, child). epollNestMu must be held.
func unnest(parent, child *epollFile) {
	if parent.children[child]--; parent.children[child] <= 0 {
		delete(parent.children, child)
	}
	if child.parents[parent]--; child.parents[parent] <= 0 {
		delete(child.parents, parent)
	}
}

// depth is the longest chain of edges (next) from e, or more than
// epollMaxNests if the chain reaches stop. memo keeps it linear in the
// graph's size. epollNestMu must be held.
func depth(e, stop *epollFile, next func(*epollFile) map[*epollFile]int, memo map[*epollFile]int) int {
	if e == stop {
		return epollMaxNests + 1
	}
	if d, ok := memo[e]; ok {
		return d
	}
	d := 0
	for n := range next(e) {
		d = max(d, 1+depth(n, stop, next, memo))
	}
	memo[e] = d
	return d
}
