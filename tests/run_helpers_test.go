package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
)

// runAsHelper makes the test binary double as a program that tests run
// inside `ustack run`: with the environment variable env set, it calls
// run with its value and the binary's arguments, then exits (1, the error
// on stderr, if run fails). Called from init, which runs before TestMain,
// so no test runs in that process.
func runAsHelper(env string, run func(mode string, args []string) error) {
	mode := os.Getenv(env)
	if mode == "" {
		return
	}
	if err := run(mode, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runBinary returns the ustack binary the package builds once (see
// ustackBinary), after checking for root.
func runBinary(t *testing.T) string {
	t.Helper()
	roottest.Require(t)
	return ustackBinary(t)
}

// runPublicBinary copies the binary into a fresh directory anyone may read
// and execute, for tests that run it as another user.
func runPublicBinary(t *testing.T) string {
	t.Helper()
	src := runBinary(t)
	dir, err := os.MkdirTemp("", "run-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ustack")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runResult is how a finished `ustack run` went.
type runResult struct {
	stdout, stderr string
	status         int
}

// runUstack runs the binary with args and waits up to two minutes.
func runUstack(t *testing.T, bin string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.status = runStatus(ee.ProcessState)
	default:
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish in time\nstdout: %s\nstderr: %s", bin, args, res.stdout, res.stderr)
	}
	return res
}

func runStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// runStart starts the binary in the background; the test ends it (or the
// cleanup kills it).
func runStart(t *testing.T, bin string, args ...string) (*exec.Cmd, *runOutput) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	return cmd, runStartCmd(t, cmd)
}

// runStartCmd starts cmd in the background with its output collected, as
// runStart does, for a test that sets up cmd further (its ExtraFiles).
func runStartCmd(t *testing.T, cmd *exec.Cmd) *runOutput {
	t.Helper()
	// Do not wait forever for output from processes ustack failed to end.
	cmd.WaitDelay = 5 * time.Second
	out := &runOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return out
}

// runOutput collects a background command's output; the test may read it
// while the command still writes.
type runOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *runOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *runOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// runStop sends SIGTERM and returns the exit status.
func runStop(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if !runWaitWithin(cmd, 30*time.Second) {
		t.Fatalf("ustack did not exit within 30s of SIGTERM")
	}
	return runStatus(cmd.ProcessState)
}

// runWaitWithin waits up to d for cmd to exit; if it has not by then, it
// kills cmd, waits for it, and returns false.
func runWaitWithin(cmd *exec.Cmd, d time.Duration) bool {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return false
	}
}

// runHTTPServer serves handler on host loopback (IPv4) until the test ends
// and returns its port.
func runHTTPServer(t *testing.T, network, addr string, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// runUDPEcho echoes datagrams on addr until the test ends; it returns the
// port.
func runUDPEcho(t *testing.T, network, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return port
}

// runFreePort returns a TCP or UDP port free on host loopback a moment ago.
func runFreePort(t *testing.T, network, addr string) string {
	t.Helper()
	var a net.Addr
	if strings.HasPrefix(network, "udp") {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		a = pc.LocalAddr()
		pc.Close()
	} else {
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		a = ln.Addr()
		ln.Close()
	}
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// runEventually retries fn until it succeeds or 20 seconds pass.
func runEventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runRandomName returns "run-" and 8 hex digits, for namespaces the test
// creates.
func runRandomName() string {
	var b [4]byte
	rand.Read(b[:])
	return "run-" + hex.EncodeToString(b[:])
}

// runDialExpect connects to addr with d, reads to EOF and checks that
// what arrived contains want (runExpect).
func runDialExpect(d *net.Dialer, network, addr, want string) error {
	c, err := d.Dial(network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := runReadAll(c)
	if err != nil {
		return err
	}
	return runExpect(got, want)
}

// runReadAll reads c to EOF with a deadline.
func runReadAll(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}
