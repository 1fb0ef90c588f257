package netns

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCheck: Check accepts a network namespace and refuses, without
// blocking, whatever else a user may pass as one: a regular file, a
// directory, a FIFO (which an open would block on), another kind of
// namespace, a missing path.
func TestCheck(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/proc/self/ns/net", nil},
		{"/proc/self/ns/uts", ErrNotNetNS},
		{"/etc/passwd", ErrNotNetNS},
		{"/", ErrNotNetNS},
		{fifo, ErrNotNetNS},
		{"/nonexistent/netns", fs.ErrNotExist},
	} {
		if err := Check(tc.path); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Check(%q) = %v, want %v", tc.path, err, tc.want)
		}
	}
}
