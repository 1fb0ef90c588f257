package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		status   int
		contains string
	}{
		{nil, exitUsage, "Usage: ustack"},
		{[]string{"version"}, exitOK, "ustack devel"},
		{[]string{"--version"}, exitOK, "ustack devel"},
		{[]string{"help"}, exitOK, "Commands:"},
		{[]string{"-h"}, exitOK, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"version", "extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var out bytes.Buffer
			if got := dispatch(tc.args, &out, &out); got != tc.status {
				t.Errorf("dispatch(%q) = %d, want %d; output %q", tc.args, got, tc.status, out.String())
			}
			if !strings.Contains(out.String(), tc.contains) {
				t.Errorf("dispatch(%q) output = %q, want it to contain %q", tc.args, out.String(), tc.contains)
			}
		})
	}
}

// TestHelpEverywhere: `-h` on every command, and `ustack help COMMAND`
// for every command, print that command's usage on stdout and exit 0,
// as the README promises; extra arguments to help are a usage error.
func TestHelpEverywhere(t *testing.T) {
	for name := range commands {
		for _, args := range [][]string{{name, "-h"}, {name, "--help"}, {"help", name}} {
			t.Run(strings.Join(args, "_"), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if got := dispatch(args, &stdout, &stderr); got != exitOK {
					t.Fatalf("dispatch(%q) = %d, want 0; stderr %q", args, got, stderr.String())
				}
				if want := "Usage: ustack " + name; !strings.Contains(stdout.String(), want) {
					t.Errorf("dispatch(%q) stdout = %q, want it to contain %q", args, stdout.String(), want)
				}
			})
		}
	}
	var stdout, stderr bytes.Buffer
	if got := dispatch([]string{"help", "version", "extra"}, &stdout, &stderr); got != exitUsage ||
		!strings.Contains(stderr.String(), `unexpected argument "extra"`) {
		t.Errorf("dispatch(help version extra) = %d, stderr %q; want %d naming \"extra\"", got, stderr.String(), exitUsage)
	}
}
