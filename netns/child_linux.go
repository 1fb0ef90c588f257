package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ChildMain is the namespace child's side of Start; call it first in main
// when IsChild reports true. The child is PID 1 of a new PID namespace.
// It waits for Release, makes its mount namespace private, mounts a /proc
// of its own, bind-mounts the generated resolv.conf over /etc/resolv.conf
// and runs the command as its only child, as an init: it passes signals
// on to the command, reaps every orphan, and exits with the command's
// shell-style status. When it exits the kernel kills whatever the command
// left in the PID namespace, and when ustack dies, its parent-death signal
// kills it: nothing the command started can outlive the run. It never
// returns; a failure before the command runs exits 127 (command not found)
// or 126 (found but not runnable, or anything else), as shells do.
func ChildMain() {
	resolv := os.Getenv(childEnv)
	ready := os.NewFile(readyFD, "ready")
	var b [1]byte
	n, _ := ready.Read(b[:])
	ready.Close()
	if n != 1 {
		os.Exit(126) // the parent gave up before releasing us; stay silent
	}
	err := setupMounts(resolv)
	if resolv != "" {
		// The bind mount holds the file now; its name on the host goes.
		os.Remove(resolv)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ustack: %v\n", err)
		os.Exit(126)
	}
	argv := os.Args[1:] // os.Args[0] is initName
	if len(argv) == 0 {
		os.Exit(126)
	}
	path, status, msg := lookCommand(argv[0])
	if status != 0 {
		fmt.Fprintf(os.Stderr, "ustack: %s\n", msg)
		os.Exit(status)
	}
	os.Exit(runInit(path, argv, withoutEnv(os.Environ(), childEnv)))
}

// lookCommand finds the command as a shell does. When it cannot, it
// returns the message and the shell's status: 127 when there is no such
// command, 126 when there is one that cannot be run (a directory, a file
// without execute permission), as sh, env, unshare and podman report them.
func lookCommand(name string) (path string, status int, msg string) {
	path, err := exec.LookPath(name)
	if err == nil || errors.Is(err, exec.ErrDot) {
		return path, 0, "" // ErrDot: PATH names "."; a shell runs it too
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", 127, name + ": command not found"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "", 126, name + ": " + errno.Error() // "permission denied", "is a directory", ...
	}
	return "", 126, err.Error()
}

// runInit starts the command and serves as its init until it exits.
func runInit(path string, argv, env []string) int {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwardedSignals...)...)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ustack: exec %s: %v\n", path, err)
		if errors.Is(err, unix.ENOENT) {
			return 127
		}
		return 126
	}
	// SIGCHLD can coalesce or be dropped when the channel is full; the
	// ticker makes sure an exit is never missed.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			if s != unix.SIGCHLD {
				unix.Kill(pid, s.(syscall.Signal))
				continue
			}
		case <-tick.C:
		}
		if status, done := reap(pid); done {
			return status
		}
	}
}

// reap collects every exited child; it reports the command's status once
// the command (pid) is among them.
func reap(pid int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if wpid <= 0 || err != nil {
			return status, done
		}
		if wpid == pid {
			done = true
			status = ws.ExitStatus()
			if ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
		}
	}
}

// setupMounts gives the child its own view of /proc (its PID namespace)
// and of /etc/resolv.conf. The mount namespace is already the child's own
// (CLONE_NEWNS); making it private first keeps these mounts from
// propagating back to the host's shared mounts (mount_namespaces(7)).
func setupMounts(resolv string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		// A user namespace may not mount proc where the outer /proc has
		// hidden parts (containers mask some of its files); the command
		// still runs, seeing the outer PIDs under /proc.
		fmt.Fprintf(os.Stderr, "ustack: warning: /proc not remounted for the new PID namespace: %v\n", err)
	}
	if resolv == "" {
		return nil
	}
	// A host without the file (or whose file is a symlink to one that is
	// missing: systemd-resolved's stub when resolved is not running, as
	// in many containers) has nothing to mount over. The command runs
	// all the same, as on that host, where the resolver falls back to a
	// nameserver on loopback. Asked first (Stat follows the symlink):
	// mount's ENOENT does not say which side is missing, and a missing
	// source (the generated file) is an error.
	if _, err := os.Stat("/etc/resolv.conf"); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "ustack: warning: /etc/resolv.conf is missing (or a symlink to a missing file); the command's resolver is not pointed at the namespace's DNS forwarder\n")
		return nil
	}
	if err := unix.Mount(resolv, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s over /etc/resolv.conf: %w", resolv, err)
	}
	return nil
}
