//go:build linux

package sockapi

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	pingRangePath = "/proc/sys/net/ipv4/ping_group_range"
	// pingLockPath coordinates test processes that widen the range; the
	// saved file keeps the value to restore.
	pingLockPath  = "/tmp/ustack-ping-group-range.lock"
	pingSavedPath = "/tmp/ustack-ping-group-range.saved"
)

// pingAllowed reports whether the kernel lets this process open ICMP echo
// ("ping") sockets. Linux allows them only to groups inside
// net.ipv4.ping_group_range (icmp(7)); the default "1 0" allows none, root
// included. As root, the test widens the range to its own group while it
// runs and restores it after; otherwise the kernel side of the ping
// scenarios cannot run and they are skipped, saying why.
//
// Several test processes may run at once (each branch runs these tests),
// and one must not restore the range under another. Each holds a shared
// flock on pingLockPath while it needs the range; whoever widens saves the
// old value in pingSavedPath, and the last holder to leave restores it.
func pingAllowed(t *testing.T) (bool, string) {
	gid := os.Getgid()
	lo, hi, err := readPingRange()
	if err != nil {
		return false, "kernel ping sockets: " + err.Error()
	}
	if lo <= gid && gid <= hi {
		if _, err := os.Stat(pingSavedPath); err != nil {
			return true, "" // the host allows it: nothing to widen or restore
		}
	}
	if os.Geteuid() != 0 {
		return false, fmt.Sprintf("kernel ping sockets: gid %d is outside net.ipv4.ping_group_range (%d %d) and only root may widen it", gid, lo, hi)
	}
	lock, err := os.OpenFile(pingLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false, "kernel ping sockets: " + err.Error()
	}
	if err := widenPingRange(lock, gid); err != nil {
		lock.Close()
		return false, "kernel ping sockets: cannot widen net.ipv4.ping_group_range: " + err.Error()
	}
	t.Cleanup(func() {
		if err := releasePingRange(lock); err != nil {
			t.Errorf("restoring net.ipv4.ping_group_range: %v", err)
		}
	})
	return true, ""
}

func readPingRange() (lo, hi int, err error) {
	b, err := os.ReadFile(pingRangePath)
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(string(b), &lo, &hi)
	return lo, hi, err
}

// widenPingRange takes a shared lock and, if the range does not yet
// include gid, an exclusive one under which it saves the range (unless an
// earlier process did) and widens it; it returns holding the shared lock.
func widenPingRange(lock *os.File, gid int) error {
	fd := int(lock.Fd())
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		return err
	}
	if lo, hi, err := readPingRange(); err == nil && lo <= gid && gid <= hi {
		return nil // widened by another process, which we keep from restoring
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	if _, err := os.Stat(pingSavedPath); err != nil {
		old, err := os.ReadFile(pingRangePath)
		if err != nil {
			return err
		}
		if err := os.WriteFile(pingSavedPath, old, 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(pingRangePath, []byte(fmt.Sprintf("%d %d", gid, gid)), 0o644); err != nil {
		return err
	}
	return unix.Flock(fd, unix.LOCK_SH)
}

// releasePingRange drops this process's shared lock; if no other process
// holds one, it restores the saved range.
func releasePingRange(lock *os.File) error {
	defer lock.Close()
	fd := int(lock.Fd())
	if err := unix.Flock(fd, unix.LOCK_UN); err != nil {
		return err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another process still needs the range; it restores
	}
	old, err := os.ReadFile(pingSavedPath)
	if err != nil {
		return nil // restored already
	}
	if err := os.WriteFile(pingRangePath, old, 0o644); err != nil {
		return err
	}
	return os.Remove(pingSavedPath)
}
