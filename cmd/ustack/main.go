// Command ustack puts the userspace TCP/IP stack to work: `ustack serve`
// answers on a TUN device from the userspace stack; `ustack run` gives a
// network namespace its network from userspace.
//
// This package parses flags and wires the parts together; it holds no
// protocol logic. Each subcommand registers itself from its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// Exit statuses, as the brief fixes them.
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure, e.g. missing privilege
	exitUsage   = 2 // a bad flag, argument or address
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

// command is one subcommand. run gets the arguments after its name and
// returns the process exit status.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func init() {
	register(command{name: "version", summary: "print the version", run: runVersion})
	register(command{name: "help", summary: "show help for ustack or a subcommand", run: runHelp})
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		usage(stdout)
		return exitOK
	case "-v", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "ustack: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ustack COMMAND [FLAGS]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'ustack COMMAND -h' for a command's flags.")
}

// isHelp reports whether arg asks for a command's help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" }

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(stdout, "Usage: ustack version\n\nPrints the version of ustack.")
			return exitOK
		}
		fmt.Fprintf(stderr, "ustack version: unexpected argument %q\n", args[0])
		return exitUsage
	}
	fmt.Fprintf(stdout, "ustack %s\n", version)
	return exitOK
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage: ustack help [COMMAND]\n\nShows the commands, or COMMAND's flags (the same as 'ustack COMMAND -h').")
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ustack help: unknown command %q\n", args[0])
		return exitUsage
	}
	if len(args) > 1 {
		fmt.Fprintf(stderr, "ustack help: unexpected argument %q\n", args[1])
		return exitUsage
	}
	return c.run([]string{"-h"}, stdout, stderr)
}
