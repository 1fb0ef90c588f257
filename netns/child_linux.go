package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// ChildMain is the namespace child's side of Start; call it first in main
// when IsChild reports true. It waits for Release, makes its mount
// namespace private, bind-mounts the generated resolv.conf over
// /etc/resolv.conf and executes the command in place, so the command
// keeps the child's PID (signals and exit status are its own). It never
// returns: on a failure before the command runs it prints the reason and
// exits with 127 (command not found) or 126 (anything else), as shells do.
func ChildMain() {
	resolv := os.Getenv(childEnv)
	ready := os.NewFile(readyFD, "ready")
	var b [1]byte
	n, _ := ready.Read(b[:])
	ready.Close()
	if n != 1 {
		os.Exit(126) // the parent gave up before releasing us; stay silent
	}
	if err := setupMounts(resolv); err != nil {
		fmt.Fprintf(os.Stderr, "ustack: %v\n", err)
		os.Exit(126)
	}
	path, err := exec.LookPath(os.Args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "ustack: %s: command not found\n", os.Args[0])
		os.Exit(127)
	}
	env := withoutEnv(os.Environ(), childEnv)
	err = unix.Exec(path, os.Args, env)
	fmt.Fprintf(os.Stderr, "ustack: exec %s: %v\n", path, err)
	if errors.Is(err, unix.ENOENT) {
		os.Exit(127)
	}
	os.Exit(126)
}

// setupMounts gives the child its own view of /etc/resolv.conf. The mount
// namespace is already the child's own (CLONE_NEWNS); making it private
// first keeps the bind mount from propagating back to the host's shared
// mounts (mount_namespaces(7)).
func setupMounts(resolv string) error {
	if resolv == "" {
		return nil
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount(resolv, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s over /etc/resolv.conf: %w", resolv, err)
	}
	return nil
}
