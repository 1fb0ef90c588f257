package tun

import (
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// failingDevice is a device whose every read fails with err, as a TUN
// fd's does (EBADFD) once `ip link del` removed its device.
type failingDevice struct {
	err   error
	reads atomic.Int64
}

func (d *failingDevice) Read([]byte) (int, error) {
	d.reads.Add(1)
	return 0, d.err
}

func (d *failingDevice) Write(b []byte) (int, error) { return 0, d.err }

// waitFailed waits for an endpoint's Failed channel and returns its Err.
func waitFailed(t *testing.T, ep interface {
	Failed() <-chan struct{}
	Err() error
}) error {
	t.Helper()
	select {
	case <-ep.Failed():
		return ep.Err()
	case <-time.After(5 * time.Second):
		t.Fatal("Failed() not closed 5s after the device failed")
		return nil
	}
}

// TestPacketReadErrorEndsLoop: a read error that is not transient (the
// device was deleted) ends the water endpoint's loop after one read,
// rather than spinning on it, and is reported through Failed and Err.
func TestPacketReadErrorEndsLoop(t *testing.T) {
	leakcheck.Check(t)
	dev := &failingDevice{err: &pathError{syscall.EBADFD}}
	ep := NewPacketEndpoint(dev, 1500)
	ep.Attach(nopDispatcher{})
	if err := waitFailed(t, ep); !errors.Is(err, syscall.EBADFD) {
		t.Errorf("Err() = %v, want EBADFD", err)
	}
	ep.Wait() // the loop has ended: Wait returns before any stop
	time.Sleep(50 * time.Millisecond)
	if n := dev.reads.Load(); n != 1 {
		t.Errorf("the loop read the failed device %d times, want 1", n)
	}
	ep.Close()
}

// pathError wraps an errno the way os.File's Read does.
type pathError struct{ errno syscall.Errno }

func (e *pathError) Error() string { return "read /dev/net/tun: " + e.errno.Error() }
func (e *pathError) Unwrap() error { return e.errno }

// TestVnetDeviceGoneReported: when the vnet endpoint's file fails (here
// the socketpair's peer closes, EOF), the loop ends and says so through
// Failed and Err.
func TestVnetDeviceGoneReported(t *testing.T) {
	leakcheck.Check(t)
	f, peer := packetPair(t, 0)
	ep, err := NewVnetEndpoint(f, 1500)
	if err != nil {
		t.Fatal(err)
	}
	ep.Attach(nopDispatcher{})
	peer.Close()
	if err := waitFailed(t, ep); !errors.Is(err, io.EOF) {
		t.Errorf("Err() = %v, want EOF", err)
	}
	ep.Close()
	ep.Wait()
}

// TestStopIsNotFailure: an endpoint stopped by its owner does not report
// a failure.
func TestStopIsNotFailure(t *testing.T) {
	leakcheck.Check(t)
	f, _ := packetPair(t, 0)
	vep, err := NewVnetEndpoint(f, 1500)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := packetPair(t, 0)
	pep := NewPacketEndpoint(g, 1500)
	vep.Attach(nopDispatcher{})
	pep.Attach(nopDispatcher{})
	vep.Close()
	vep.Wait()
	pep.Close()
	pep.Wait()
	for name, ep := range map[string]interface {
		Failed() <-chan struct{}
		Err() error
	}{"vnet": vep, "water": pep} {
		select {
		case <-ep.Failed():
			t.Errorf("%s: Failed() closed after Close, Err() = %v; want open", name, ep.Err())
		default:
		}
		if err := ep.Err(); err != nil {
			t.Errorf("%s: Err() after Close = %v, want nil", name, err)
		}
	}
}
