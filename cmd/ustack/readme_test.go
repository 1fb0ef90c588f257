package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeFlagBlocks: the flag lists README.md prints for `ustack run`
// and `ustack serve` are what `-h` prints, line for line, so that the
// reference a user reads first cannot drift from the code (a default or
// a flag changed in one place only).
func TestReadmeFlagBlocks(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeFlagBlocks(string(readme))
	for _, cmd := range []string{"run", "serve"} {
		want, ok := blocks[cmd]
		if !ok {
			t.Errorf("README.md has no Flags: block under ## `ustack %s`", cmd)
			continue
		}
		var stdout, stderr bytes.Buffer
		if code := dispatch([]string{cmd, "-h"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("ustack %s -h = %d, stderr %q", cmd, code, stderr.String())
		}
		got := flagSection(stdout.String() + stderr.String())
		if got != want {
			t.Errorf("README.md's flags for `ustack %s` differ from `ustack %s -h`:\nREADME:\n%s\n-h:\n%s", cmd, cmd, want, got)
		}
	}
}

var readmeSection = regexp.MustCompile("^## `ustack ([a-z]+)`")

// readmeFlagBlocks returns, per "## `ustack CMD`" section of a README,
// the first fenced block's lines from "Flags:" to the fence's end.
func readmeFlagBlocks(readme string) map[string]string {
	blocks := map[string]string{}
	section, in := "", false
	var cur []string
	for _, line := range strings.Split(readme, "\n") {
		if m := readmeSection.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		switch {
		case line == "Flags:" && section != "":
			in, cur = true, []string{line}
		case in && strings.HasPrefix(line, "```"):
			if _, seen := blocks[section]; !seen {
				blocks[section] = strings.Join(cur, "\n")
			}
			in = false
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// flagSection is a help text's lines from "Flags:" up to the first blank
// line after it.
func flagSection(help string) string {
	var out []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		if line == "Flags:" {
			in = true
		}
		if in && strings.TrimSpace(line) == "" {
			break
		}
		if in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
