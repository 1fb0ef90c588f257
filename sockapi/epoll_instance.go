//go:build linux

package sockapi

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// epollPrivate are the control bits of an epoll registration; they are
// never reported as events (EP_PRIVATE_BITS in fs/eventpoll.c).
const epollPrivate = unix.EPOLLWAKEUP | unix.EPOLLONESHOT | unix.EPOLLET | unix.EPOLLEXCLUSIVE

// epollFile is an epoll instance. It is itself a file, so it can be
// polled and watched by another epoll instance, as on Linux.
//
// Lock order: fdTable.mu, then epollFile.mu (a parent instance's before a
// child's), then epollLinks.mu or epollNestMu, then a watched file's
// wait queue, then readyMu. Waiter callbacks run under the watched file's
// wait queue lock, so they take only readyMu.
type epollFile struct {
	// q holds the waiters on this instance: EpollWait and Poll callers and
	// the items of instances that watch this one.
	q waiter.Queue

	mu       sync.Mutex      // Linux's ep->mtx
	items    map[int]*epItem // guarded by mu; registrations by descriptor
	released bool            // guarded by mu
	again    []*epItem       // guarded by mu; collect's scratch list

	readyMu sync.Mutex  // Linux's ep->lock
	ready   epReadyList // guarded by readyMu; items that may be ready

	// children and parents count the registrations between epoll
	// instances, for the loop and depth checks of EPOLL_CTL_ADD.
	children map[*epollFile]int // guarded by epollNestMu
	parents  map[*epollFile]int // guarded by epollNestMu
}

var _ file = (*epollFile)(nil)

// epItem is one registration of a descriptor with an epoll instance.
type epItem struct {
	ep    *epollFile
	fd    int      // descriptor number, the registration's key
	entry *fdEntry // the descriptor; its links point back here
	f     file

	waiter waiter.Entry // registered with f; guarded by ep.mu
	// events is the registered EPOLL* mask with EPOLLERR|EPOLLHUP and the
	// control bits; written under ep.mu, read by the waiter callback too.
	events atomic.Uint32
	data   [2]int32 // guarded by ep.mu; epoll_event.data as registered
	gone   bool     // guarded by ep.mu; removed from ep

	onReady    bool    // guarded by ep.readyMu
	prev, next *epItem // guarded by ep.readyMu; links in ep.ready
}

// NotifyEvent is the waiter callback (ep_poll_callback): it queues the
// item as possibly ready and wakes the instance's waiters. A disarmed
// EPOLLONESHOT item stays quiet until EPOLL_CTL_MOD.
func (it *epItem) NotifyEvent(waiter.EventMask) {
	if it.events.Load()&^epollPrivate == 0 {
		return
	}
	ep := it.ep
	ep.readyMu.Lock()
	ep.ready.pushBack(it)
	ep.readyMu.Unlock()
	ep.q.Notify(waiter.ReadableEvents)
}

func newEpollFile() *epollFile {
	return &epollFile{items: make(map[int]*epItem)}
}

// Readiness reports the instance readable when an item on its ready list
// is really ready, dropping items that are not (ep_eventpoll_poll).
func (ep *epollFile) Readiness(mask waiter.EventMask) waiter.EventMask {
	if mask&waiter.ReadableEvents == 0 {
		return 0
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.readyMu.Lock()
	n := ep.ready.len
	ep.readyMu.Unlock()
	for ; n > 0; n-- {
		ep.readyMu.Lock()
		it := ep.ready.popFront()
		ep.readyMu.Unlock()
		if it == nil {
			break
		}
		if it.poll() != 0 {
			ep.readyMu.Lock()
			ep.ready.pushFront(it)
			ep.readyMu.Unlock()
			return waiter.ReadableEvents & mask
		}
	}
	return 0
}

// EventRegister adds a waiter on the instance itself.
func (ep *epollFile) EventRegister(e *waiter.Entry) error {
	ep.q.EventRegister(e)
	return nil
}

// EventUnregister removes a waiter added by EventRegister.
func (ep *epollFile) EventUnregister(e *waiter.Entry) {
	ep.q.EventUnregister(e)
}

// release drops every registration (the instance's last descriptor was
// closed) and wakes anyone polling the instance, so that they see EBADF.
func (ep *epollFile) release(bool) error {
	ep.mu.Lock()
	for _, it := range ep.items {
		ep.removeLocked(it)
	}
	ep.released = true
	ep.mu.Unlock()
	ep.q.Notify(waiter.EventHUp | waiter.ReadableEvents)
	return nil
}

// poll returns the registered events that are ready now (ep_item_poll).
func (it *epItem) poll() uint32 {
	return readiness(it.f) & it.events.Load() &^ epollPrivate
}

// collect moves ready items' events into out and returns how many
// (ep_send_events): level-triggered items go back on the ready list,
// edge-triggered ones wait for their next notification, EPOLLONESHOT ones
// are disarmed. Only items on the ready list are looked at, so the cost
// follows the number of ready descriptors, not registered ones.
func (ep *epollFile) collect(out []unix.EpollEvent) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.readyMu.Lock()
	todo := ep.ready.len
	ep.readyMu.Unlock()
	again := ep.again[:0]
	n := 0
	for ; todo > 0 && n < len(out); todo-- {
		ep.readyMu.Lock()
		it := ep.ready.popFront()
		ep.readyMu.Unlock()
		if it == nil {
			break
		}
		r := it.poll()
		if r == 0 {
			continue
		}
		out[n] = unix.EpollEvent{Events: r, Fd: it.data[0], Pad: it.data[1]}
		n++
		switch ev := it.events.Load(); {
		case ev&unix.EPOLLONESHOT != 0:
			it.events.Store(ev & epollPrivate)
		case ev&unix.EPOLLET == 0:
			again = append(again, it)
		}
	}
	if len(again) > 0 {
		ep.readyMu.Lock()
		for _, it := range again {
			ep.ready.pushBack(it)
		}
		ep.readyMu.Unlock()
		clear(again)
	}
	ep.again = again
	return n
}

// epReadyList is an intrusive FIFO of items that may be ready, linked
// through epItem.prev/next. An item is on it at most once.
type epReadyList struct {
	head, tail *epItem
	len        int
}

// pushBack queues it at the tail unless it is already queued.
func (l *epReadyList) pushBack(it *epItem) {
	if it.onReady {
		return
	}
	it.onReady, it.prev, it.next = true, l.tail, nil
	if l.tail != nil {
		l.tail.next = it
	} else {
		l.head = it
	}
	l.tail = it
	l.len++
}

// pushFront queues it at the head unless it is already queued.
func (l *epReadyList) pushFront(it *epItem) {
	if it.onReady {
		return
	}
	it.onReady, it.prev, it.next = true, nil, l.head
	if l.head != nil {
		l.head.prev = it
	} else {
		l.tail = it
	}
	l.head = it
	l.len++
}

// popFront removes and returns the head, or nil.
func (l *epReadyList) popFront() *epItem {
	it := l.head
	if it != nil {
		l.remove(it)
	}
	return it
}

// remove unlinks it if it is queued.
func (l *epReadyList) remove(it *epItem) {
	if !it.onReady {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		l.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		l.tail = it.prev
	}
	it.onReady, it.prev, it.next = false, nil, nil
	l.len--
}
