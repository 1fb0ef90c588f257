package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted, as by `ip netns add`.
const RunDir = "/run/netns"

// Do runs fn on a new OS thread inside the network namespace at path
// (/run/netns/NAME, /proc/PID/ns/net, ...) and returns fn's error. The
// thread is discarded afterwards. An empty path runs fn in the current
// namespace, still on a thread of its own.
func Do(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread dies with this goroutine.
		runtime.LockOSThread()
		if path != "" {
			if err := enter(path); err != nil {
				errc <- err
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

func enter(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: enter %s: %w", path, err)
	}
	return nil
}

// CreateNamed creates a new network namespace and bind-mounts it at
// RunDir/name, as `ip netns add name` does, and returns that path. Its
// loopback interface is down, as in any new namespace. Needs CAP_SYS_ADMIN.
func CreateNamed(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("netns: invalid name %q", name)
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return "", fmt.Errorf("netns: %w", err)
	}
	path := filepath.Join(RunDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("netns: create %s: %w", path, err)
	}
	f.Close()
	err = Do("", func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("netns: bind-mount %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// DeleteNamed unmounts and removes RunDir/name, as `ip netns del name`.
// The namespace itself goes away when nothing else holds it.
func DeleteNamed(name string) error {
	path := filepath.Join(RunDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// DeleteStale deletes the named namespaces called prefix, the decimal PID
// of the process that made them, "-" and anything, whose maker no longer
// exists, killing first whatever still runs in them. A test harness or
// driver that names its namespaces so cleans up after a predecessor that
// was killed before its own cleanup could run.
func DeleteStale(prefix string) {
	ents, _ := os.ReadDir(RunDir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		if f, err := os.Open(filepath.Join(RunDir, e.Name())); err == nil {
			KillAll(f)
			f.Close()
		}
		DeleteNamed(e.Name())
	}
}
