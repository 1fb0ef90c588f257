//go:build linux

package sockapi

import (
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rec runs a scenario's calls against one API and records a transcript
// of every call and its results. Descriptor numbers and ports are written
// as names given in first-seen order (fd0, fd1, p0, p1, ...), so that the
// kernel's fd 7 and the userspace table's fd 0 read alike, and so do two
// different ephemeral ports. Everything else is written as it came back:
// errno names, byte counts, data, addresses, event masks.
//
// Scenarios call rec's methods from one goroutine. A scenario that needs a
// second goroutine calls r.api directly there and logs the results with
// r.logf after joining it, so the transcript's order never depends on the
// scheduler.
type rec struct {
	t   testing.TB
	api API

	mu    sync.Mutex // guards lines and open, read by the watchdog when a scenario hangs
	lines []string
	open  map[int]bool // descriptors to close when the scenario ends
	fds   map[int]string
	ports map[int]string
}

func newRec(t testing.TB, api API) *rec {
	return &rec{t: t, api: api, fds: map[int]string{}, ports: map[int]string{}, open: map[int]bool{}}
}

func (r *rec) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// transcript returns a copy of the lines logged so far.
func (r *rec) transcript() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// openFDs returns the descriptors the scenario has open, in order.
func (r *rec) openFDs() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	fds := make([]int, 0, len(r.open))
	for fd := range r.open {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	return fds
}

// closeAll closes, unlogged, every descriptor the scenario left open.
func (r *rec) closeAll() {
	for _, fd := range r.openFDs() {
		r.api.Close(fd)
	}
	r.mu.Lock()
	r.open = map[int]bool{}
	r.mu.Unlock()
}

// shutdownAll shuts every open descriptor down, which wakes calls blocked
// on them on Linux too (Close would not).
func (r *rec) shutdownAll() {
	for _, fd := range r.openFDs() {
		r.api.Shutdown(fd, unix.SHUT_RDWR)
	}
}

// keep marks fd as open, to be closed when the scenario ends.
func (r *rec) keep(fd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[fd] = true
}

// fd names a descriptor by first appearance.
func (r *rec) fd(fd int) string {
	if fd < 0 {
		return fmt.Sprint(fd)
	}
	if n, ok := r.fds[fd]; ok {
		return n
	}
	n := fmt.Sprintf("fd%d", len(r.fds))
	r.fds[fd] = n
	return n
}

// port names a port by first appearance; 0 and the well-known ports below
// 1024 stay numbers.
func (r *rec) port(p int) string {
	if p < 1024 {
		return fmt.Sprint(p)
	}
	if n, ok := r.ports[p]; ok {
		return n
	}
	n := fmt.Sprintf("p%d", len(r.ports))
	r.ports[p] = n
	return n
}

func (r *rec) sa(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case nil:
		return "nil"
	case *unix.SockaddrInet4:
		if a == nil {
			return "(*SockaddrInet4)(nil)"
		}
		return fmt.Sprintf("%v:%s", netip.AddrFrom4(a.Addr), r.port(a.Port))
	case *unix.SockaddrInet6:
		if a == nil {
			return "(*SockaddrInet6)(nil)"
		}
		z := ""
		if a.ZoneId != 0 {
			z = fmt.Sprintf("%%%d", a.ZoneId)
		}
		return fmt.Sprintf("[%v%s]:%s", netip.AddrFrom16(a.Addr), z, r.port(a.Port))
	default:
		return fmt.Sprintf("%T", sa)
	}
}

// errs writes an error as the API promises it: a bare unix.Errno by name.
// Anything else (a wrapped errno, another type) is written so that it
// differs from the bare errno.
func errs(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno(%d)", int(e))
	}
	if e, ok := err.(*AddrinfoError); ok {
		return fmt.Sprintf("EAI(%d)", e.Code)
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return fmt.Sprintf("WRAPPED(%T:%s)", err, unix.ErrnoName(e))
	}
	return fmt.Sprintf("OTHER(%T:%v)", err, err)
}

func data(p []byte) string {
	if len(p) <= 64 {
		return fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("<%d bytes crc %08x>", len(p), crc32.ChecksumIEEE(p))
}

// countOrErr writes a byte count, or only the error: the count that
// comes with an error is not specified (x/sys returns 0 or -1).
func countOrErr(n int, err error) string {
	if err != nil {
		return errs(err)
	}
	return fmt.Sprint(n)
}

func (r *rec) track(fd int, err error) int {
	if err == nil {
		r.keep(fd)
	}
	return fd
}

// fdOrErr writes a call's new descriptor, or its error.
func (r *rec) fdOrErr(fd int, err error) string {
	if err != nil {
		return errs(err)
	}
	return r.fd(fd)
}

func (r *rec) Socket(domain, typ, proto int) int {
	fd, err := r.api.Socket(domain, typ, proto)
	r.logf("socket(%s, %s, %d) = %s", domName(domain), typName(typ), proto, r.fdOrErr(fd, err))
	if err != nil {
		return -1
	}
	return r.track(fd, err)
}

func (r *rec) Bind(fd int, sa unix.Sockaddr) error {
	err := r.api.Bind(fd, sa)
	r.logf("bind(%s, %s) = %s", r.fd(fd), r.sa(sa), errs(err))
	return err
}

func (r *rec) Listen(fd, backlog int) error {
	err := r.api.Listen(fd, backlog)
	r.logf("listen(%s, %d) = %s", r.fd(fd), backlog, errs(err))
	return err
}

func (r *rec) Accept(fd int) int {
	nfd, sa, err := r.api.Accept(fd)
	r.logf("accept(%s) = %s %s", r.fd(fd), r.fdOrErr(nfd, err), r.sa(sa))
	if err != nil {
		return -1
	}
	return r.track(nfd, err)
}

func (r *rec) Accept4(fd, flags int) int {
	nfd, sa, err := r.api.Accept4(fd, flags)
	r.logf("accept4(%s, %#x) = %s %s", r.fd(fd), flags, r.fdOrErr(nfd, err), r.sa(sa))
	if err != nil {
		return -1
	}
	return r.track(nfd, err)
}

func (r *rec) Connect(fd int, sa unix.Sockaddr) error {
	err := r.api.Connect(fd, sa)
	r.logf("connect(%s, %s) = %s", r.fd(fd), r.sa(sa), errs(err))
	return err
}

func (r *rec) Read(fd, size int) []byte {
	p := make([]byte, size)
	n, err := r.api.Read(fd, p)
	return r.logRead("read", fd, size, 0, n, err, p)
}

func (r *rec) Recv(fd, size, flags int) []byte {
	p := make([]byte, size)
	n, err := r.api.Recv(fd, p, flags)
	return r.logRead("recv", fd, size, flags, n, err, p)
}

func (r *rec) logRead(call string, fd, size, flags, n int, err error, p []byte) []byte {
	if err != nil {
		r.logf("%s(%s, %d, %s) = %s", call, r.fd(fd), size, msgName(flags), errs(err))
		return nil
	}
	got := p[:min(max(n, 0), len(p))]
	r.logf("%s(%s, %d, %s) = %d %s", call, r.fd(fd), size, msgName(flags), n, data(got))
	return got
}

func (r *rec) Write(fd int, p []byte) int {
	n, err := r.api.Write(fd, p)
	r.logf("write(%s, %s) = %s", r.fd(fd), data(p), countOrErr(n, err))
	return n
}

func (r *rec) Send(fd int, p []byte, flags int) int {
	n, err := r.api.Send(fd, p, flags)
	r.logf("send(%s, %s, %s) = %s", r.fd(fd), data(p), msgName(flags), countOrErr(n, err))
	return n
}

func (r *rec) Sendto(fd int, p []byte, flags int, to unix.Sockaddr) error {
	err := r.api.Sendto(fd, p, flags, to)
	r.logf("sendto(%s, %s, %s, %s) = %s", r.fd(fd), data(p), msgName(flags), r.sa(to), errs(err))
	return err
}

func (r *rec) Recvfrom(fd, size, flags int) ([]byte, unix.Sockaddr) {
	p := make([]byte, size)
	n, from, err := r.api.Recvfrom(fd, p, flags)
	if err != nil {
		r.logf("recvfrom(%s, %d, %s) = %s", r.fd(fd), size, msgName(flags), errs(err))
		return nil, nil
	}
	got := p[:min(max(n, 0), len(p))]
	r.logf("recvfrom(%s, %d, %s) = %d %s from %s", r.fd(fd), size, msgName(flags), n, data(got), r.sa(from))
	return got, from
}

func (r *rec) Shutdown(fd, how int) error {
	err := r.api.Shutdown(fd, how)
	r.logf("shutdown(%s, %s) = %s", r.fd(fd), howName(how), errs(err))
	return err
}

func (r *rec) Close(fd int) error {
	err := r.api.Close(fd)
	r.logf("close(%s) = %s", r.fd(fd), errs(err))
	if err == nil {
		r.mu.Lock()
		delete(r.open, fd)
		r.mu.Unlock()
		// A closed number is free for reuse; it keeps its name, as both
		// implementations hand out the lowest free number.
	}
	return err
}

func (r *rec) Getsockname(fd int) unix.Sockaddr {
	sa, err := r.api.Getsockname(fd)
	r.logf("getsockname(%s) = %s %s", r.fd(fd), r.sa(sa), errs(err))
	return sa
}

func (r *rec) Getpeername(fd int) unix.Sockaddr {
	sa, err := r.api.Getpeername(fd)
	r.logf("getpeername(%s) = %s %s", r.fd(fd), r.sa(sa), errs(err))
	return sa
}

func (r *rec) SetInt(fd, level, opt, v int) error {
	err := r.api.SetsockoptInt(fd, level, opt, v)
	r.logf("setsockopt(%s, %s, %d) = %s", r.fd(fd), optName(level, opt), v, errs(err))
	return err
}

func (r *rec) GetInt(fd, level, opt int) int {
	v, err := r.api.GetsockoptInt(fd, level, opt)
	if err != nil {
		r.logf("getsockopt(%s, %s) = %s", r.fd(fd), optName(level, opt), errs(err))
		return -1
	}
	r.logf("getsockopt(%s, %s) = %d", r.fd(fd), optName(level, opt), v)
	return v
}

// GetIntBy logs only what f says of the value, for values that differ
// between hosts (buffer sizes) while their properties do not.
func (r *rec) GetIntBy(fd, level, opt int, what string, f func(int) bool) {
	v, err := r.api.GetsockoptInt(fd, level, opt)
	if err != nil {
		r.logf("getsockopt(%s, %s) = %s", r.fd(fd), optName(level, opt), errs(err))
		return
	}
	r.logf("getsockopt(%s, %s): %s = %v", r.fd(fd), optName(level, opt), what, f(v))
}

func (r *rec) SetLinger(fd, onoff, secs int) error {
	err := r.api.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: int32(onoff), Linger: int32(secs)})
	r.logf("setsockopt(%s, SO_LINGER, {%d %d}) = %s", r.fd(fd), onoff, secs, errs(err))
	return err
}

func (r *rec) SetTimeval(fd, opt int, d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	err := r.api.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv)
	r.logf("setsockopt(%s, %s, %v) = %s", r.fd(fd), optName(unix.SOL_SOCKET, opt), d, errs(err))
	return err
}

func (r *rec) SetTimevalRaw(fd, level, opt int, tv unix.Timeval) error {
	err := r.api.SetsockoptTimeval(fd, level, opt, &tv)
	r.logf("setsockopt(%s, %s, {%d %d}) = %s", r.fd(fd), optName(level, opt), tv.Sec, tv.Usec, errs(err))
	return err
}

func (r *rec) SetNonblock(fd int, nb bool) error {
	err := r.api.SetNonblock(fd, nb)
	r.logf("setnonblock(%s, %v) = %s", r.fd(fd), nb, errs(err))
	return err
}

func (r *rec) Fcntl(fd, cmd, arg int) int {
	v, err := r.api.Fcntl(fd, cmd, arg)
	if err != nil {
		r.logf("fcntl(%s, %d, %#x) = %s", r.fd(fd), cmd, arg, errs(err))
		return -1
	}
	r.logf("fcntl(%s, %d, %#x) = %#x", r.fd(fd), cmd, arg, v)
	return v
}

// pq is one poll request: a descriptor and the events asked for.
type pq struct {
	fd     int
	events int16
}

func (r *rec) Poll(timeout int, reqs ...pq) []int16 {
	pfds := make([]unix.PollFd, len(reqs))
	for i, q := range reqs {
		pfds[i] = unix.PollFd{Fd: int32(q.fd), Events: q.events}
	}
	n, err := r.api.Poll(pfds, timeout)
	if err != nil {
		r.logf("poll(%d) = %s", timeout, errs(err))
		return make([]int16, len(reqs))
	}
	var b strings.Builder
	revs := make([]int16, len(reqs))
	for i, p := range pfds {
		revs[i] = p.Revents
		fmt.Fprintf(&b, " %s{%s}=%s", r.fd(int(p.Fd)), pollName(uint32(uint16(p.Events))), pollName(uint32(uint16(p.Revents))))
	}
	r.logf("poll(%d) = %d;%s", timeout, n, b.String())
	return revs
}

// waitFor polls fd until every event of want is reported, for up to five
// seconds, and logs only whether that happened: how long it took is the
// one thing allowed to differ.
func (r *rec) waitFor(fd int, want int16) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: want}}
		_, err := r.api.Poll(pfd, 20)
		ok := err == nil && pfd[0].Revents&want == want
		if ok || time.Now().After(deadline) {
			r.logf("wait(%s, %s) = %v", r.fd(fd), pollName(uint32(uint16(want))), ok)
			return ok
		}
	}
}

// settle gives asynchronous work (a peer's ACK, an ICMP error) time to
// land before a check that must see no change.
func settle() { time.Sleep(50 * time.Millisecond) }

func (r *rec) fdSet(fds []int) *unix.FdSet {
	if fds == nil {
		return nil
	}
	s := new(unix.FdSet)
	for _, fd := range fds {
		if fd >= 0 && fd < 1024 {
			s.Set(fd)
		}
	}
	return s
}

func (r *rec) setNames(s *unix.FdSet, fds []int) string {
	if s == nil {
		return "nil"
	}
	var names []string
	for _, fd := range fds {
		if fd >= 0 && fd < 1024 && s.IsSet(fd) {
			names = append(names, r.fd(fd))
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

// Select builds the sets from the descriptors given, with nfd one more
// than the largest, and logs which are left set.
func (r *rec) Select(rd, wr, ex []int, tv *unix.Timeval) int {
	nfd := 0
	for _, l := range [][]int{rd, wr, ex} {
		for _, fd := range l {
			nfd = max(nfd, fd+1)
		}
	}
	return r.SelectN(nfd, rd, wr, ex, tv)
}

func (r *rec) SelectN(nfd int, rd, wr, ex []int, tv *unix.Timeval) int {
	rs, ws, es := r.fdSet(rd), r.fdSet(wr), r.fdSet(ex)
	n, err := r.api.Select(nfd, rs, ws, es, tv)
	if err != nil {
		// The sets are unspecified after an error.
		r.logf("select(nfd, %s, %s, %s) = %s", r.names(rd), r.names(wr), r.names(ex), errs(err))
		return -1
	}
	r.logf("select(nfd, %s, %s, %s) = %d; r=%s w=%s e=%s", r.names(rd), r.names(wr), r.names(ex),
		n, r.setNames(rs, rd), r.setNames(ws, wr), r.setNames(es, ex))
	return n
}

func (r *rec) names(fds []int) string {
	if fds == nil {
		return "nil"
	}
	var names []string
	for _, fd := range fds {
		names = append(names, r.fd(fd))
	}
	return "[" + strings.Join(names, " ") + "]"
}

func (r *rec) EpollCreate1(flag int) int {
	fd, err := r.api.EpollCreate1(flag)
	r.logf("epoll_create1(%#x) = %s", flag, r.fdOrErr(fd, err))
	if err != nil {
		return -1
	}
	return r.track(fd, err)
}

// EpollCtl registers fd with its own number as the event's data, so that
// EpollWait can name it.
func (r *rec) EpollCtl(epfd, op, fd int, events uint32) error {
	ev := &unix.EpollEvent{Events: events, Fd: int32(fd)}
	err := r.api.EpollCtl(epfd, op, fd, ev)
	r.logf("epoll_ctl(%s, %s, %s, %s) = %s", r.fd(epfd), epollOpName(op), r.fd(fd), pollName(events), errs(err))
	return err
}

// EpollWait logs the events sorted by descriptor name: the order of the
// ready list is not something callers rely on.
func (r *rec) EpollWait(epfd, maxEvents, msec int) int {
	evs := make([]unix.EpollEvent, maxEvents)
	n, err := r.api.EpollWait(epfd, evs, msec)
	if err != nil {
		r.logf("epoll_wait(%s, %d, %d) = %s", r.fd(epfd), maxEvents, msec, errs(err))
		return -1
	}
	var got []string
	for i := 0; i < n && i < len(evs); i++ {
		got = append(got, fmt.Sprintf("%s=%s", r.fd(int(evs[i].Fd)), pollName(evs[i].Events)))
	}
	sort.Strings(got)
	r.logf("epoll_wait(%s, %d, %d) = %d %v", r.fd(epfd), maxEvents, msec, n, got)
	return n
}

func (r *rec) Getaddrinfo(node, service string, hints *AddrInfo) []AddrInfo {
	res, err := r.api.Getaddrinfo(node, service, hints)
	h := "nil"
	if hints != nil {
		h = fmt.Sprintf("{flags=%#x fam=%d type=%d proto=%d}", hints.Flags, hints.Family, hints.Socktype, hints.Protocol)
	}
	var b strings.Builder
	for _, ai := range res {
		fmt.Fprintf(&b, "\n    fam=%d type=%d proto=%d %s", ai.Family, ai.Socktype, ai.Protocol, r.sa(ai.Addr))
		if ai.Canonname != "" {
			fmt.Fprintf(&b, " canon=%q", ai.Canonname)
		}
	}
	r.logf("getaddrinfo(%q, %q, %s) = %d %s%s", node, service, h, len(res), errs(err), b.String())
	return res
}

func (r *rec) Getnameinfo(sa unix.Sockaddr, flags int) {
	host, svc, err := r.api.Getnameinfo(sa, flags)
	r.logf("getnameinfo(%s, %#x) = %q %q %s", r.sa(sa), flags, host, svc, errs(err))
}
