package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// --ready-fd and --exit-fd are the descriptors through which a container
// engine drives `ustack run` without polling, with slirp4netns's meaning
// (slirp4netns(1), "--ready-fd" and "--exit-fd"): ustack writes "1" to the
// ready descriptor and closes it once the namespace's network is up, and
// tears everything down and exits 0 when the exit descriptor reaches end
// of file (the engine closed its write end, or died).
//
// Both are descriptors the engine's exec left open in ustack. ustack owns
// them from the start: it marks them close-on-exec, so that neither the
// namespace's init nor CMD inherits them (a CMD holding the ready pipe's
// write end would keep the engine from ever seeing its end of file), and
// closes them itself.

// parseFD reads the value of a descriptor flag and checks that it names a
// descriptor ustack inherited, open for writing (ready) or for reading
// (exit). Standard streams are refused: they belong to CMD in create mode.
func parseFD(flag, s string, write bool) (int, error) {
	fd, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a descriptor number", flag, s)
	}
	if fd < 0 {
		return 0, fmt.Errorf("%s %d: not a descriptor number", flag, fd)
	}
	if fd <= 2 {
		return 0, fmt.Errorf("%s %d: a standard stream; pass a descriptor of its own (3 or more)", flag, fd)
	}
	return fd, checkFD(flag, fd, write)
}

// checkFD checks that fd is open, inherited and open in the wanted
// direction.
func checkFD(flag string, fd int, write bool) error {
	fdFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return fmt.Errorf("%s %d: not an open descriptor: %v", flag, fd, err)
	}
	// Every descriptor the Go runtime or ustack opens is close-on-exec;
	// one the engine passed through exec cannot be. So a close-on-exec
	// descriptor is ustack's own (the netpoller's, say), not the engine's.
	if fdFlags&unix.FD_CLOEXEC != 0 {
		return fmt.Errorf("%s %d: not an open descriptor ustack inherited", flag, fd)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("%s %d: %v", flag, fd, err)
	}
	mode := fl & unix.O_ACCMODE
	switch {
	case write && mode != unix.O_WRONLY && mode != unix.O_RDWR:
		return fmt.Errorf("%s %d: not open for writing", flag, fd)
	case !write && mode != unix.O_RDONLY && mode != unix.O_RDWR:
		return fmt.Errorf("%s %d: not open for reading", flag, fd)
	case fl&oPath != 0:
		return fmt.Errorf("%s %d: an O_PATH descriptor cannot be read or written", flag, fd)
	}
	return nil
}

// engineFDs are the --ready-fd and --exit-fd descriptors; 0 when not
// given (a standard stream is never accepted), so the zero value has none.
type engineFDs struct {
	ready, exit int
}

// own marks the descriptors close-on-exec (see the comment at the top).
func (e engineFDs) own() {
	for _, fd := range []int{e.ready, e.exit} {
		if fd > 0 {
			unix.CloseOnExec(fd)
		}
	}
}

// files returns the descriptors as files, to pass on unchanged to the
// copy of ustack that runs in a user namespace.
func (e engineFDs) files() []*os.File {
	var fs []*os.File
	for _, fd := range []int{e.ready, e.exit} {
		if fd > 0 {
			fs = append(fs, os.NewFile(uintptr(fd), "engine-fd"))
		}
	}
	return fs
}

// signalReady writes "1" to the ready descriptor, if any, and closes it.
// A write that fails (the engine closed its end: EPIPE) is reported and
// changes nothing else: the network is up either way.
func (e *engineFDs) signalReady() error {
	if e.ready <= 0 {
		return nil
	}
	fd := e.ready
	e.ready = 0
	defer unix.Close(fd)
	for {
		_, err := unix.Write(fd, []byte("1"))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("--ready-fd %d: %w", fd, err)
		}
		return nil
	}
}

// closeReady closes the ready descriptor without writing to it, if
// signalReady has not: deferred by whoever may fail before the network
// is up, so the engine reads end of file without a "1" at once, not only
// when the process exits.
func (e *engineFDs) closeReady() {
	if e.ready > 0 {
		unix.Close(e.ready)
		e.ready = 0
	}
}

// exitWatch waits for end of file on the --exit-fd descriptor. Its
// goroutine polls the descriptor and a private pipe, so that close can
// stop it without touching the descriptor's flags (O_NONBLOCK would be
// shared with the engine's own copy of the file description).
//
// The stop pipe is a raw pipe2(2) pair, not an os.Pipe: the goroutine
// blocks in poll(2) on it, so it must stay blocking and out of the Go
// netpoller (os.File.Fd would switch it back to blocking mode).
type exitWatch struct {
	fd        int
	eof       chan struct{} // closed at end of file, hangup or error
	stopR     int           // -1 with no fd; polled by the goroutine
	stopW     int           // closing it (hangup on stopR) stops the goroutine
	done      chan struct{} // closed when the goroutine has returned
	closeOnce sync.Once
}

// watchExit starts watching fd; fd 0 (none) gives a watch that never
// fires. The watch owns fd and closes it in close.
func watchExit(fd int) (*exitWatch, error) {
	w := &exitWatch{fd: fd, eof: make(chan struct{}), stopR: -1, stopW: -1, done: make(chan struct{})}
	if fd <= 0 {
		close(w.done)
		return w, nil
	}
	p, err := stopPipe()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("--exit-fd: stop pipe: %w", err)
	}
	w.stopR, w.stopW = p[0], p[1]
	go w.loop()
	return w, nil
}

func (w *exitWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 512)
	pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.stopR), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			close(w.eof)
			return
		}
		if pfd[1].Revents != 0 {
			return // stopped
		}
		if pfd[0].Revents&unix.POLLIN != 0 {
			// Whatever the engine writes is not a request; only end of
			// file is.
			n, err := unix.Read(w.fd, buf)
			if err == unix.EINTR || err == unix.EAGAIN || n > 0 {
				continue
			}
			close(w.eof)
			return
		}
		if pfd[0].Revents != 0 { // POLLHUP, POLLERR, POLLNVAL
			close(w.eof)
			return
		}
	}
}

// EOF is closed when the exit descriptor reached end of file.
func (w *exitWatch) EOF() <-chan struct{} { return w.eof }

// close stops the goroutine, waits for it and closes the descriptors.
// Safe to call twice.
func (w *exitWatch) close() {
	w.closeOnce.Do(func() {
		if w.stopW < 0 {
			return
		}
		unix.Close(w.stopW)
		<-w.done
		unix.Close(w.stopR)
		unix.Close(w.fd)
	})
}
