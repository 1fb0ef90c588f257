package main

import "strings"

// badIfName says what is wrong with an interface name that Linux would
// refuse (dev_valid_name in net/core/dev.c: EINVAL, which reached the user
// as "tun: open: invalid argument"), or "" when there is nothing. The
// length (at most 15 bytes) is checked by the callers with their own
// messages.
func badIfName(name string) string {
	switch {
	case name == "." || name == "..":
		return `not an interface name ("." and ".." are reserved)`
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return "not an interface name (no '/', ':' or spaces)"
	}
	return ""
}
