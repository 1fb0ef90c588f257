package main

import "golang.org/x/sys/unix"

// oPath is O_PATH: a descriptor that names a file but can be neither read
// nor written (open(2)).
const oPath = unix.O_PATH

// stopPipe returns a close-on-exec pipe, read end first, created so in
// one call (pipe2(2)): no CMD started meanwhile can inherit it.
func stopPipe() (p [2]int, err error) {
	err = unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p, err
}
