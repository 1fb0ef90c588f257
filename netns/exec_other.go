//go:build !linux

package netns

import (
	"errors"
	"io"
	"os"
)

var errExecUnsupported = errors.New("netns: running commands in new namespaces needs Linux")

// ErrUserNSDenied is wrapped when the kernel refuses a user namespace.
var ErrUserNSDenied = errors.New("user namespaces need Linux")

// ExecConfig describes a command to run in fresh namespaces (Linux only).
type ExecConfig struct {
	Argv           []string
	Env            []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	ResolvConf     string
}

// Process is a command in new namespaces (Linux only).
type Process struct{}

// IsChild is always false off Linux.
func IsChild() bool { return false }

// ChildMain is never called off Linux.
func ChildMain() { os.Exit(126) }

// InUserNS is always false off Linux.
func InUserNS() bool { return false }

// Start is only supported on Linux.
func Start(ExecConfig) (*Process, error) { return nil, errExecUnsupported }

// RunInUserNS is only supported on Linux.
func RunInUserNS([]*os.File) (int, error) { return 0, errExecUnsupported }

// RunInUserNSOf is only supported on Linux.
func RunInUserNSOf(string, []*os.File) (int, error) { return 0, errExecUnsupported }

// SetLoopbackUp is only supported on Linux.
func SetLoopbackUp(string) error { return errExecUnsupported }

// ForwardedSignals returns the signals a supervisor passes on.
func ForwardedSignals() []os.Signal { return []os.Signal{os.Interrupt} }

// KillAll is a no-op off Linux.
func KillAll(*os.File) {}

// Pid is 0 off Linux.
func (*Process) Pid() int { return 0 }

// NetNS is empty off Linux.
func (*Process) NetNS() string { return "" }

// Release is only supported on Linux.
func (*Process) Release() error { return errExecUnsupported }

// Signal is only supported on Linux.
func (*Process) Signal(os.Signal) error { return errExecUnsupported }

// Kill is a no-op off Linux.
func (*Process) Kill() {}

// Done is closed at once off Linux.
func (*Process) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }

// Wait returns 127 off Linux.
func (*Process) Wait() int { return 127 }

// Close is a no-op off Linux.
func (*Process) Close() error { return nil }
