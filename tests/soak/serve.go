//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/stack"
)

// Serve's addresses (its defaults) and the device the driver names.
const (
	serveV4  = "10.99.0.2"
	serveV6  = "fd00:99::2"
	serveTun = "soak0"
)

// nsPrefix starts every namespace the driver makes; the driver's PID
// follows, so that a later run removes what a killed one left.
const nsPrefix = "soak-"

// makeNS creates a namespace soak-PID-what with lo up and returns its
// path and the function that kills what runs in it and removes it.
func makeNS(what string) (string, func(), error) {
	netns.DeleteStale(nsPrefix) // left by a driver that was killed
	name := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), what)
	path, err := netns.CreateNamed(name)
	if err != nil {
		return "", nil, err
	}
	remove := func() {
		if f, err := os.Open(path); err == nil {
			netns.KillAll(f)
			f.Close()
		}
		if err := netns.DeleteNamed(name); err != nil {
			fmt.Fprintf(os.Stderr, "soak: remove namespace %s: %v\n", name, err)
		}
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		remove()
		return "", nil, fmt.Errorf("lo up in %s: %v: %s", name, err, out)
	}
	return path, remove, nil
}

// freeLoopbackPort returns a TCP port free on 127.0.0.1 now.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ustackProc is a ustack subprocess with its debug listener.
type ustackProc struct {
	cmd    *exec.Cmd
	debug  string // USTACK_DEBUG_ADDR
	out    *lockedLog
	exited chan struct{}
	err    error
}

type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startUstack starts ustack with args and USTACK_DEBUG_ADDR on a free
// loopback port, and waits until its output contains ready.
func startUstack(bin string, args []string, ready string, extraOut io.Writer) (*ustackProc, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	p := &ustackProc{debug: fmt.Sprintf("127.0.0.1:%d", port), out: &lockedLog{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "USTACK_DEBUG_ADDR="+p.debug)
	var w io.Writer = p.out
	if extraOut != nil {
		w = io.MultiWriter(p.out, extraOut)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(p.out.String(), ready) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("ustack %s exited before it was ready: %v\n%s", args[0], p.err, p.out.String())
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("ustack %s not ready after 30s:\n%s", args[0], p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := waitDebug(p.debug, p.exited); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

func waitDebug(addr string, exited <-chan struct{}) error {
	for range 250 {
		if _, err := readDebugVars(addr); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("ustack exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("USTACK_DEBUG_ADDR %s never answered", addr)
}

// stop sends SIGTERM and waits; it kills after 20 s.
func (p *ustackProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.kill()
		return fmt.Errorf("ustack did not stop within 20s of SIGTERM")
	}
	return p.err
}

func (p *ustackProc) kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// debugVars is the part of ustack's /debug/vars the driver reads.
type debugVars struct {
	Goroutines  int    `json:"goroutines"`
	HeapAlloc   uint64 `json:"heap_alloc"`
	HeapObjects uint64 `json:"heap_objects"`
	Stacks      []struct {
		TCP       struct{ CurrentEstablished uint64 }
		Endpoints stack.EndpointStats
	} `json:"stacks"`
}

var debugClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func readDebugVars(addr string) (debugVars, error) {
	var v debugVars
	resp, err := debugClient.Get("http://" + addr + "/debug/vars?gc=1")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v, err
}

// ustackFigures reads one sample of a ustack process: /proc and
// /debug/vars (which its own request adds a goroutine and a descriptor
// to, the same in every sample). It has ustack collect garbage first, so
// the heap figures are the live heap and RSS is not the GC floor's
// garbage (serveGCFloor lets 256 MiB pile up between collections).
func ustackFigures(p *ustackProc) (map[string]float64, error) {
	v, err := procFigures(p.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	dv, err := readDebugVars(p.debug)
	if err != nil {
		return nil, err
	}
	v[mGoroutines.name] = float64(dv.Goroutines)
	v[mHeap.name] = float64(dv.HeapAlloc)
	v[mHeapObj.name] = float64(dv.HeapObjects)
	for _, st := range dv.Stacks {
		v[mEndpoints.name] += float64(st.Endpoints.Registered)
		v[mCleanup.name] += float64(st.Endpoints.Cleanup)
		v[mEstab.name] += float64(st.TCP.CurrentEstablished)
	}
	return v, nil
}

// soakServe runs `ustack serve` into a namespace and the serve client
// inside it.
func soakServe(ctx context.Context, o options) (bool, error) {
	nsPath, removeNS, err := makeNS("serve")
	if err != nil {
		return false, err
	}
	defer removeNS()
	p, err := startUstack(o.ustack, []string{"serve", "--netns", nsPath, "--tun", serveTun}, "ustack serve: ready", nil)
	if err != nil {
		return false, err
	}
	defer p.kill()
	rec := newRecorder(func() (map[string]float64, error) { return ustackFigures(p) },
		mGoroutines, mThreads, mFDs, mRSS, mHeap, mHeapObj, mEndpoints, mCleanup, mEstab)
	if err := rec.takeBaseline(); err != nil {
		return false, err
	}
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	fmt.Printf("soak: serve: pid %d, debug %s, load %v at %d op/s with %d workers\n",
		p.cmd.Process.Pid, p.debug, o.duration, o.rate, o.workers)
	ok := phases(ctx, o, "ustack serve", rec, func(ctx context.Context) {
		cmd := exec.CommandContext(ctx, "nsenter", "--net="+nsPath, "--", self, "client-serve",
			"-duration", o.duration.String(), "-rate", strconv.Itoa(o.rate), "-workers", strconv.Itoa(o.workers))
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 15 * time.Second
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "soak: client-serve: %v\n", err)
		}
	})
	if err := p.stop(); err != nil {
		return false, fmt.Errorf("ustack serve: %v\n%s", err, p.out.String())
	}
	return ok, nil
}

// clientServe is the load inside serve's namespace: every service, both
// families, clients that finish, reset, vanish or read slowly, and pings.
func clientServe(args []string) int {
	fs := flag.NewFlagSet("client-serve", flag.ExitOnError)
	duration := fs.Duration("duration", time.Minute, "how long")
	rate := fs.Int("rate", 200, "operations per second")
	workers := fs.Int("workers", 8, "concurrent clients")
	vanishEvery := fs.Duration("vanish-every", 5*time.Second, "how often a client vanishes without FIN or RST")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	go func() { waitSignal(); cancel() }()

	v4 := func(port int) string { return net.JoinHostPort(serveV4, strconv.Itoa(port)) }
	v6 := func(port int) string { return net.JoinHostPort(serveV6, strconv.Itoa(port)) }
	either := func(port int) string {
		if randInt(2) == 0 {
			return v4(port)
		}
		return v6(port)
	}
	httpc := &http.Client{Timeout: 5 * time.Second}
	ops := []op{
		{"echo", 30, func(ctx context.Context) error { return tcpEcho(ctx, either(7), 32<<10) }},
		{"daytime", 10, func(ctx context.Context) error { return tcpReadAll(ctx, either(13)) }},
		{"discard", 8, func(ctx context.Context) error { return tcpSend(ctx, either(9), 64<<10) }},
		{"chargen-abandon", 8, func(ctx context.Context) error { return tcpReadSome(ctx, either(19), 1+randInt(64<<10)) }},
		{"slow-reader", 2, func(ctx context.Context) error { return tcpSlowReader(ctx, either(19)) }},
		{"reset-midway", 6, func(ctx context.Context) error { return tcpResetMidway(ctx, either(7)) }},
		{"http", 8, func(ctx context.Context) error { return httpGet(ctx, httpc, "http://"+either(80)+pickPath()) }},
		{"udp-echo", 20, func(ctx context.Context) error { return udpEcho(ctx, either(7)) }},
		{"udp-daytime", 4, func(ctx context.Context) error { return udpSendOnly(ctx, either(13), true) }},
		{"udp-discard", 4, func(ctx context.Context) error { return udpSendOnly(ctx, either(9), false) }},
		{"refused", 2, func(ctx context.Context) error { return tcpRefused(ctx, either(1)) }},
	}
	t := newTally()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pingLoop(ctx, t, serveV4, serveV6) }()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(*vanishEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.add("vanish", tcpVanish(ctx, either(7)))
			}
		}
	}()
	runOps(ctx, *workers, pacer(ctx, *rate), ops, t)
	wg.Wait()
	httpc.CloseIdleConnections()
	t.print(os.Stdout, "client-serve")
	return 0
}

func pickPath() string {
	if randInt(2) == 0 {
		return "/"
	}
	return "/stats.json"
}

// httpGet fetches url, reading the whole body; now and then it leaves the
// connection for the next request (keep-alive), else closes it.
func httpGet(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Close = randInt(4) != 0
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, bufio.NewReader(resp.Body)); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
