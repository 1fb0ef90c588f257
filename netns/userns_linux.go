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
//
// keep are descriptors the copy inherits at their own numbers (a
// container engine's --ready-fd, say), where exec would pass only the
// standard streams. RunInUserNS owns them: it closes them here once the
// copy has started (or failed to), so the copy holds the only ones.
func RunInUserNS(keep []*os.File) (int, error) {
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
	cmd.ExtraFiles = atOwnNumbers(keep)
	return supervise(cmd, keep)
}

// RunInUserNSOf re-executes this program with the same arguments inside
// the user namespace that owns the network namespace at nsPath (say, a
// rootless container's), so that it may give that namespace its network.
// A Go program cannot join a user namespace itself (setns(2) refuses
// multithreaded callers), so nsenter(1) joins it and executes the program,
// which holds every capability there when our uid is root there. keep is
// as for RunInUserNS.
func RunInUserNSOf(nsPath string, keep []*os.File) (int, error) {
	defer closeAll(keep) // when we return early; supervise closed them otherwise
	f, err := os.Open(nsPath)
	if err != nil {
		return 0, fmt.Errorf("netns: %w", err)
	}
	defer f.Close()
	ufd, err := unix.IoctlRetInt(int(f.Fd()), nsGetUserNS)
	if err != nil {
		return 0, fmt.Errorf("netns: owner of %s: %w", nsPath, err)
	}
	userns := os.NewFile(uintptr(ufd), "userns")
	defer userns.Close()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return 0, fmt.Errorf("netns: joining the user namespace of %s needs nsenter(1) (util-linux): %w", nsPath, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("netns: %w", err)
	}
	// nsenter opens our descriptor through /proc, so it needs no fd of
	// its own (and leaks none into the program).
	// --preserve-credentials: keep our uid, which the namespace's owner
	// (we) mapped to root there; nsenter's default setgroups fails in
	// namespaces that deny it, as `unshare -r` makes them.
	args := append([]string{fmt.Sprintf("--user=/proc/%d/fd/%d", os.Getpid(), userns.Fd()), "--preserve-credentials", "--", exe}, os.Args[1:]...)
	cmd := exec.Command(nsenter, args...)
	cmd.Env = append(withoutEnv(os.Environ(), usernsEnv), usernsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// nsenter leaves inherited descriptors alone, so they reach the
	// program at the same numbers.
	cmd.ExtraFiles = atOwnNumbers(keep)
	return supervise(cmd, keep)
}

// atOwnNumbers returns the ExtraFiles that give a child each of files at
// its own descriptor number (ExtraFiles[i] becomes descriptor 3+i; the
// nil entries between are closed in the child).
func atOwnNumbers(files []*os.File) []*os.File {
	var extra []*os.File
	for _, f := range files {
		fd := int(f.Fd())
		if fd < 3 {
			continue // the standard streams are passed anyway
		}
		for len(extra) < fd-2 {
			extra = append(extra, nil)
		}
		extra[fd-3] = f
	}
	return extra
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// nsGetUserNS is NS_GET_USERNS from <linux/nsfs.h>, _IO(0xb7, 0x1): it
// returns a descriptor of the user namespace owning a namespace.
const nsGetUserNS = 0xb701

// supervise starts cmd from a locked thread that lives until it is
// reaped (its Pdeathsig follows that thread), passes the forwarded
// signals on to it and returns its shell-style exit status. It closes
// handOver once cmd has started (or failed to start).
func supervise(cmd *exec.Cmd, handOver []*os.File) (int, error) {
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
	err := <-started
	closeAll(handOver)
	if err != nil {
		if cmd.SysProcAttr.Cloneflags&unix.CLONE_NEWUSER != 0 {
			return 0, userNSError(err)
		}
		return 0, fmt.Errorf("netns: %w", err)
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
