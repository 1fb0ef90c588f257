//go:build linux

package sockapi

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// TestCloseAllDoesNotLinger: CloseAll is the Sockets' exit, and Linux
// does not wait out SO_LINGER when a process's descriptors are closed at
// exit (inet_release skips the wait for PF_EXITING): it returns at once
// and the connection finishes in the background, its data and FIN still
// delivered. CloseAll waited out every lingering socket in turn, so one
// peer that stopped reading held the embedder's shutdown for the linger
// time of each such socket. A plain Close still lingers.
func TestCloseAllDoesNotLinger(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client, server := New(st), New(st)
	defer server.CloseAll()
	l, addr := listener(t, server, unix.AF_INET)
	const conns = 3
	var peers []int
	sent := make([]int, conns)
	for i := range conns {
		c := mustSocket(t, client, unix.AF_INET, unix.SOCK_STREAM, 0)
		if err := client.Connect(c, addr); err != nil {
			t.Fatal(err)
		}
		p, _, err := server.Accept(l)
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
		if err := client.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 3}); err != nil {
			t.Fatal(err)
		}
		// The peer does not read: fill what it and the send buffer take.
		client.SetNonblock(c, true)
		for {
			n, err := client.Write(c, make([]byte, 64<<10))
			if err != nil {
				break
			}
			sent[i] += n
		}
	}
	start := time.Now()
	if err := client.CloseAll(); err != nil {
		t.Errorf("CloseAll() = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("CloseAll took %v with %d sockets lingering 3s, want it not to wait", d, conns)
	}
	for i, p := range peers {
		got := 0
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(p, buf)
			if n <= 0 || err != nil {
				if err != nil {
					t.Errorf("peer %d: Read = %v after %d bytes, want EOF after %d", i, err, got, sent[i])
				}
				break
			}
			got += n
		}
		if got != sent[i] {
			t.Errorf("peer %d read %d bytes, want the %d sent before CloseAll", i, got, sent[i])
		}
	}
}
