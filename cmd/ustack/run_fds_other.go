//go:build !linux

package main

import "golang.org/x/sys/unix"

// oPath is 0 where there is no O_PATH.
const oPath = 0

// stopPipe returns a close-on-exec pipe, read end first. Without pipe2
// the flag is set after pipe(2); ustack run is Linux-only anyway.
func stopPipe() (p [2]int, err error) {
	if err = unix.Pipe(p[:]); err != nil {
		return p, err
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return p, nil
}
