package netns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLookCommand: a command that does not exist is 127 "command not
// found"; one that exists but cannot be run (a directory, a file without
// execute permission) is 126 with the reason, as sh, env and unshare say.
func TestLookCommand(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		status int
		msg    string
	}{
		{"sh", 0, ""},
		{"/bin/sh", 0, ""},
		{"no-such-command-ustack", 127, "no-such-command-ustack: command not found"},
		{"/nonexistent/command", 127, "/nonexistent/command: command not found"},
		{plain, 126, plain + ": permission denied"},
		{dir, 126, dir + ": is a directory"},
		{plain + "/x", 126, plain + "/x: not a directory"},
	} {
		path, status, msg := lookCommand(tc.name)
		if status != tc.status || msg != tc.msg || (status == 0) != (path != "") {
			t.Errorf("lookCommand(%q) = %q, %d, %q; want status %d, %q", tc.name, path, status, msg, tc.status, tc.msg)
		}
		if status == 0 && !strings.HasSuffix(path, "/sh") {
			t.Errorf("lookCommand(%q) = %q, want a path to sh", tc.name, path)
		}
	}
}
