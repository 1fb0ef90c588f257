package tests

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

// devName is the TUN device the tests have serve create in their
// namespace.
const devName = "ustk0"

// serveProc is a running `ustack serve` subprocess. It runs in the test's
// own network namespace (it puts only the device into ns).
type serveProc struct {
	ns     *roottest.NS
	cmd    *exec.Cmd
	out    lockedBuffer  // stdout and stderr
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result, set before exited is closed
}

// startServe starts `ustack serve --netns ns --tun ustk0 args...`, waits
// for it to say it is ready, and stops it with SIGTERM when the test ends
// if the test has not stopped it itself.
func startServe(t *testing.T, ns *roottest.NS, args ...string) *serveProc {
	t.Helper()
	p := runServe(t, ns, args...)
	deadline := time.After(60 * time.Second) // a -race binary starts slowly on a busy machine
	for !strings.Contains(p.out.String(), "ustack serve: ready") {
		select {
		case <-p.exited:
			t.Fatalf("ustack serve %q exited before it was ready: %v\n%s", args, p.err, p.out.String())
		case <-deadline:
			t.Fatalf("ustack serve %q not ready after 60s:\n%s", args, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM)
		}
	})
	return p
}

// runServe starts the subprocess without waiting for it; it is killed when
// the test ends if still running.
func runServe(t *testing.T, ns *roottest.NS, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{ns: ns, exited: make(chan struct{})}
	argv := append([]string{"serve", "--netns", ns.Path, "--tun", devName}, args...)
	p.cmd = exec.Command(ustackBinary(t), argv...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ustack %q: %v", argv, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait waits for the subprocess to exit by itself and returns its exit
// status.
func (p *serveProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("ustack serve still running after %v:\n%s", timeout, p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("ustack serve: %v", p.err)
	}
	return 0
}

// stop sends sig and checks what a user relies on: exit status 0 within a
// few seconds, and the device gone from the namespace.
func (p *serveProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal ustack serve: %v", err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("ustack serve after %v exited %d, want 0:\n%s", sig, code, p.out.String())
	}
	if !strings.Contains(p.out.String(), "ustack serve: stopping") {
		t.Errorf("ustack serve after %v did not say it was stopping:\n%s", sig, p.out.String())
	}
	err := netns.Do(p.ns.Path, func() error {
		_, err := net.InterfaceByName(devName)
		return err
	})
	if err == nil {
		t.Errorf("device %s still in %s after ustack serve exited", devName, p.ns.Name)
	}
}

// lockedBuffer is a bytes.Buffer that the subprocess's output copier and
// the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
