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
