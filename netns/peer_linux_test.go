package netns

import (
	"bufio"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestGuardListenerRefusesPeersInside: a connection from a process in the
// guarded namespace (here this process, guarding its own) gets the
// refusal line and never reaches Accept; the same connection is let
// through when the guarded namespace is another one. No root needed.
func TestGuardListenerRefusesPeersInside(t *testing.T) {
	for _, tc := range []struct {
		name, nsPath string
		refused      bool
	}{
		{"own namespace", "/proc/self/ns/net", true},
		// Any other namespace will do for the comparison; a UTS one is
		// never the same file as a network one.
		{"another namespace", "/proc/self/ns/uts", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			g, err := GuardListener(ln, tc.nsPath, `{"ok":false,"error":"refused"}`)
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := g.Accept(); err == nil {
					accepted <- c
				}
			}()
			c, err := net.Dial("unix", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			line, _ := bufio.NewReader(c).ReadString('\n')
			select {
			case a := <-accepted:
				a.Close()
				if tc.refused {
					t.Fatalf("GuardListener(%s) accepted a peer in that namespace", tc.nsPath)
				}
			case <-time.After(time.Second):
				if !tc.refused {
					t.Fatalf("GuardListener(%s) refused a peer outside it (read %q)", tc.nsPath, line)
				}
				if line != `{"ok":false,"error":"refused"}`+"\n" {
					t.Errorf("refused peer read %q, want the refusal line", line)
				}
			}
		})
	}
}
