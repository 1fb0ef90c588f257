//go:build !linux

package main

// oPath is 0 where there is no O_PATH.
const oPath = 0
