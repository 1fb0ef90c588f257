package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// usernsEnv marks a process that RunInUserNS re-executed inside its new
// user namespace.
const usernsEnv = "USTACK_USERNS"

// ErrUserNSDenied is wrapped by RunInUserNS's error when the kernel refuses
// an unprivileged user namespace.
var ErrUserNSDenied = errors.New("the kernel does not allow unprivileged user namespaces here " +
	"(check sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, " +
	"kernel.apparmor_restrict_unprivileged_userns=0, or run as root)")

// InUserNS reports whether this process is the copy RunInUserNS started.
func InUserNS() bool {
	_, ok := os.LookupEnv(usernsEnv)
	return ok
}

// RunInUserNS re-executes this program with the same arguments in a new
// user namespace that maps the caller's uid and gid to root, as `unshare
// -r` does, so the copy holds every capability over the namespaces it
// creates (but none over the host's). The copy stays in the host's network
// namespace, so its sockets are ordinary host sockets of the caller.
// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to it.
// It returns the copy's shell-style exit status.
func RunInUserNS() (int, error) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(withoutEnv(os.Environ(), usernsEnv), usernsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		// An unprivileged process may write a gid map only after denying
		// setgroups (user_namespaces(7), "The /proc/[pid]/setgroups file").
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	type result struct {
		state *os.ProcessState
		err   error
	}
	res := make(chan result, 1)
	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the forking thread; keep it until the copy is
		// reaped, then let it die.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		res <- result{cmd.ProcessState, err}
	}()
	if err := <-started; err != nil {
		return 0, userNSError(err)
	}
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case r := <-res:
			return ExitStatus(r.state, r.err), nil
		}
	}
}

// forwardedSignals are the signals passed on to a command we supervise.
var forwardedSignals = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2,
}

// ForwardedSignals returns the signals a supervisor passes on to its
// command.
func ForwardedSignals() []os.Signal { return append([]os.Signal(nil), forwardedSignals...) }

func userNSError(err error) error {
	// clone(2): EPERM when the sysctls or an LSM forbid it, ENOSPC when
	// user.max_user_namespaces is reached or 0, EINVAL on kernels built
	// without CONFIG_USER_NS, EACCES when writing the maps is refused.
	for _, e := range []error{unix.EPERM, unix.ENOSPC, unix.EINVAL, unix.EACCES} {
		if errors.Is(err, e) {
			return fmt.Errorf("netns: create a user namespace: %w: %w", ErrUserNSDenied, err)
		}
	}
	return fmt.Errorf("netns: create a user namespace: %w", err)
}
