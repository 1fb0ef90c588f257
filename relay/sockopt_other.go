//go:build !linux

package relay

const (
	msgMore  = 0 // no MSG_MORE: every write is pushed
	ioctlInq = 0 // not known here: no directIn
)
