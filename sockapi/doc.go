//go:build !linux

// Package sockapi gives programs the BSD socket calls over a userspace
// gVisor stack, with the Linux kernel's semantics and errno values, and the
// same calls over the host kernel.
//
// It implements the Linux socket ABI (Linux's constants and structures
// from golang.org/x/sys/unix), so it builds on Linux only; on other
// systems the package is empty.
package sockapi
