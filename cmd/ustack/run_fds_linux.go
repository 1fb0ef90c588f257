package main

import "golang.org/x/sys/unix"

// oPath is O_PATH: a descriptor that names a file but can be neither read
// nor written (open(2)).
const oPath = unix.O_PATH
