package netns

import (
	"net"
	"path/filepath"
	"testing"
)

// TestPeerInNetNS: a connection from a process in the namespace (here
// this process, checking against its own) is inside; the same
// connection checked against another namespace is not. No root needed.
func TestPeerInNetNS(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		nsPath string
		want   bool
	}{
		{"/proc/self/ns/net", true},
		// Any other namespace will do for the comparison; a UTS one is
		// never the same file as a network one.
		{"/proc/self/ns/uts", false},
	} {
		in, err := PeerInNetNS(tc.nsPath)
		if err != nil {
			t.Fatal(err)
		}
		if got := in(s); got != tc.want {
			t.Errorf("PeerInNetNS(%s)(a connection from this process) = %v, want %v", tc.nsPath, got, tc.want)
		}
	}
	if _, err := PeerInNetNS("/nonexistent"); err == nil {
		t.Error("PeerInNetNS(/nonexistent) succeeded")
	}
}
