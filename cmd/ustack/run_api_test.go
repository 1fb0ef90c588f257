package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenControlReplacesStaleSocket: a control socket left by a
// ustack killed with SIGKILL (no cleanup unlinks it) made the next `ustack
// run --api-socket` on the same path fail with "address already in use".
// A socket nobody listens on is replaced; one in use, or a file that is
// not a socket, is left alone with an error.
func TestListenControlReplacesStaleSocket(t *testing.T) {
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // as SIGKILL leaves it: the file, no listener
	if ln, err := listenControl(stale); err != nil {
		t.Errorf("listenControl over a stale socket: %v, want it replaced", err)
	} else {
		ln.Close()
	}

	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ln, err := listenControl(live); err == nil {
		ln.Close()
		t.Errorf("listenControl took over a socket another process listens on")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("listenControl on a live socket: %v, want it to say the socket is in use", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ln, err := listenControl(file); err == nil {
		ln.Close()
		t.Errorf("listenControl replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("regular file at the path now holds %q", b)
	}
}
