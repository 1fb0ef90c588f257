package netns_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"testing"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
	"golang.org/x/sys/unix"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestCreateDoDelete(t *testing.T) {
	roottest.Require(t)
	var b [4]byte
	rand.Read(b[:])
	name := "ustack-netns-" + hex.EncodeToString(b[:])
	path, err := netns.CreateNamed(name)
	if err != nil {
		t.Fatalf("netns.CreateNamed(%q) = %v", name, err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	if _, err := netns.CreateNamed(name); err == nil {
		t.Errorf("netns.CreateNamed(%q) twice = nil error, want one", name)
	}
	// Compare this thread's namespace, not /proc/self's: that is the main
	// thread's, and a dying locked goroutine may have wedged the main
	// thread in another namespace (the runtime parks it rather than
	// reusing it).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	here := inode(t, "/proc/thread-self/ns/net")
	var inside uint64
	if err := netns.Do(path, func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatalf("Do(%s) = %v", path, err)
	}
	if inside != inode(t, path) || inside == here {
		t.Errorf("Do ran in namespace inode %d, want %d (and not ours, %d)", inside, inode(t, path), here)
	}
	// The calling thread never left our namespace.
	if now := inode(t, "/proc/thread-self/ns/net"); now != here {
		t.Errorf("after Do, this thread is in namespace %d, want %d", now, here)
	}
	if err := netns.DeleteNamed(name); err != nil {
		t.Fatalf("netns.DeleteNamed(%q) = %v", name, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after DeleteNamed, stat %s = %v, want not exist", path, err)
	}
	if err := netns.Do(path, func() error { return nil }); err == nil {
		t.Errorf("Do(deleted namespace) = nil, want an error")
	}
}

func TestCreateNamedRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a/b", "..", "."} {
		if _, err := netns.CreateNamed(name); err == nil {
			t.Errorf("netns.CreateNamed(%q) = nil error, want one", name)
		}
	}
}
