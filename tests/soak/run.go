//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ustack/ustack/netns"
)

// Inside `ustack run`: the gateway and DNS addresses, and the ports the
// client listens on for the port forwards.
const (
	runGW4, runGW6   = "10.0.2.2", "fd00::2"
	runDNS           = "10.0.2.3:53"
	runFwdTCP        = 8080
	runFwdUDP        = 8081
	runFwdPortsFirst = 17700 // host ports the forwards cycle through
	runFwdPortsCount = 50
)

// hostServers are the run mode's servers on the host's loopback: TCP and
// UDP echo on 127.0.0.1 and ::1, and a DNS server on 127.0.0.1.
type hostServers struct {
	tcp4, tcp6, udp4, udp6 int
	dns                    string
	closers                []io.Closer
	wg                     sync.WaitGroup
}

func startHostServers() (*hostServers, error) {
	h := &hostServers{}
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			h.close()
			return nil, err
		}
		h.closers = append(h.closers, l)
		h.wg.Add(1)
		go func() { defer h.wg.Done(); serveEcho(l) }()
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			h.close()
			return nil, err
		}
		h.closers = append(h.closers, pc)
		h.wg.Add(1)
		go func() { defer h.wg.Done(); serveUDPEcho(pc) }()
		if h.tcp4 == 0 {
			h.tcp4, h.udp4 = l.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
		} else {
			h.tcp6, h.udp6 = l.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
		}
	}
	dns, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		h.close()
		return nil, err
	}
	h.closers = append(h.closers, dns)
	h.dns = dns.LocalAddr().String()
	h.wg.Add(1)
	go func() { defer h.wg.Done(); serveDNS(dns, [4]byte{192, 0, 2, 7}) }()
	// The forwarder relays DNS over TCP to the same address and port.
	dnsTCP, err := net.Listen("tcp", h.dns)
	if err != nil {
		h.close()
		return nil, err
	}
	h.closers = append(h.closers, dnsTCP)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); serveDNSTCP(dnsTCP, [4]byte{192, 0, 2, 7}) }()
	return h, nil
}

// serveDNSTCP answers A queries over TCP (RFC 7766 framing), one query
// per connection, until l is closed.
func serveDNSTCP(l net.Listener, a [4]byte) {
	serveConns(l, 10*time.Second, func(c net.Conn) {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		req := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		if reply := dnsAnswer(req, a); reply != nil {
			c.Write(append([]byte{byte(len(reply) >> 8), byte(len(reply))}, reply...))
		}
	})
}

func (h *hostServers) close() {
	for _, c := range h.closers {
		c.Close()
	}
	h.wg.Wait()
}

// serveUDPEcho sends every datagram back to its sender, until pc is
// closed.
func serveUDPEcho(pc net.PacketConn) {
	servePackets(pc, 65536, func(req []byte) []byte { return req })
}

// apiClient talks to `ustack run --api-socket`.
type apiClient struct {
	c  net.Conn
	rd *bufio.Reader
}

type apiResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Stats *struct {
		TCPActive float64 `json:"tcp_active"`
		UDPActive float64 `json:"udp_active"`
	} `json:"stats"`
}

// apiOnce opens a control connection, lists the forwards and closes it,
// as a container engine's one-off command does.
func apiOnce(path string) error {
	a, err := dialAPI(path)
	if err != nil {
		return err
	}
	defer a.c.Close()
	_, err = a.do(map[string]string{"op": "list"})
	return err
}

func dialAPI(path string) (*apiClient, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &apiClient{c: c, rd: bufio.NewReader(c)}, nil
}

func (a *apiClient) do(req map[string]string) (apiResponse, error) {
	var r apiResponse
	b, _ := json.Marshal(req)
	a.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.c.Write(append(b, '\n')); err != nil {
		return r, err
	}
	line, err := a.rd.ReadBytes('\n')
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, err
	}
	if !r.OK {
		return r, fmt.Errorf("api %v: %s", req, r.Error)
	}
	return r, nil
}

// soakRun runs `ustack run -- soak client-run ...` against the host
// servers, and churns port forwards through the control socket.
func soakRun(ctx context.Context, o options) (bool, error) {
	netns.DeleteStale(nsPrefix) // left by a driver that was killed
	h, err := startHostServers()
	if err != nil {
		return false, err
	}
	defer h.close()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-run-", nsPrefix, os.Getpid()))
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	args := []string{"run", "--allow-host-loopback", "--dns-upstream", h.dns, "--api-socket", sock, "--",
		self, "client-run", "-duration", o.duration.String(), "-rate", strconv.Itoa(o.rate),
		"-workers", strconv.Itoa(o.workers),
		"-tcp4", strconv.Itoa(h.tcp4), "-tcp6", strconv.Itoa(h.tcp6),
		"-udp4", strconv.Itoa(h.udp4), "-udp6", strconv.Itoa(h.udp6)}
	p, err := startUstack(o.ustack, args, "client-run: ready", os.Stdout)
	if err != nil {
		return false, err
	}
	defer p.kill()
	api, err := dialAPI(sock)
	if err != nil {
		return false, err
	}
	defer api.c.Close()
	var apiMu sync.Mutex // the sampler and the forward churn share api
	rec := newRecorder(func() (map[string]float64, error) {
		v, err := ustackFigures(p)
		if err != nil {
			return nil, err
		}
		apiMu.Lock()
		r, err := api.do(map[string]string{"op": "stats"})
		apiMu.Unlock()
		if err != nil {
			return nil, err
		}
		v[mTCPActive.name], v[mUDPActive.name] = r.Stats.TCPActive, r.Stats.UDPActive
		return v, nil
	}, mGoroutines, mThreads, mFDs, mRSS, mHeap, mHeapObj, mEndpoints, mCleanup, mEstab, mTCPActive, mUDPActive)
	if err := rec.takeBaseline(); err != nil {
		return false, err
	}
	fmt.Printf("soak: run: pid %d, debug %s, load %v at %d op/s with %d workers, forwards on 127.0.0.1:%d-%d\n",
		p.cmd.Process.Pid, p.debug, o.duration, o.rate, o.workers, runFwdPortsFirst, runFwdPortsFirst+runFwdPortsCount-1)
	t := newTally()
	ok := phases(ctx, o, "ustack run", rec, func(ctx context.Context) {
		forwardChurn(ctx, api, sock, &apiMu, t)
	})
	t.print(os.Stdout, "host")
	// SIGTERM reaches client-run, which exits 0, and with it ustack.
	if err := p.stop(); err != nil {
		return false, fmt.Errorf("ustack run: %v\n%s", err, p.out.String())
	}
	return ok, nil
}

// forwardChurn adds a port forward, uses it from a few host clients (TCP
// echo, UDP echo, a reset), removes it, and lists the forwards on a
// control connection of its own, over and over.
func forwardChurn(ctx context.Context, api *apiClient, sock string, mu *sync.Mutex, t *tally) {
	call := func(req map[string]string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := api.do(req)
		return err
	}
	for i := 0; ctx.Err() == nil; i++ {
		port := runFwdPortsFirst + i%runFwdPortsCount
		tcpSpec := fmt.Sprintf("127.0.0.1:%d:%d", port, runFwdTCP)
		udpSpec := fmt.Sprintf("127.0.0.1:%d:%d/udp", port, runFwdUDP)
		if err := call(map[string]string{"op": "add", "forward": tcpSpec}); err != nil {
			t.add("fwd-add", err)
			time.Sleep(time.Second)
			continue
		}
		if err := call(map[string]string{"op": "add", "forward": udpSpec}); err != nil {
			t.add("fwd-add", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for range 5 {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			t.add("fwd-tcp-echo", tcpEcho(octx, addr, 16<<10))
			t.add("fwd-udp-echo", udpEcho(octx, addr))
			cancel()
		}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.add("fwd-reset", tcpResetMidway(octx, addr))
		cancel()
		t.add("fwd-remove", call(map[string]string{"op": "remove", "forward": tcpSpec}))
		t.add("fwd-remove", call(map[string]string{"op": "remove", "forward": udpSpec}))
		t.add("api-conn", apiOnce(sock))
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clientRun is CMD inside `ustack run`: it serves the forwards' ports and
// churns connections, flows, DNS queries and pings through the relay
// until -duration, then idles until SIGTERM so that the driver can watch
// ustack settle.
func clientRun(args []string) int {
	fs := flag.NewFlagSet("client-run", flag.ExitOnError)
	duration := fs.Duration("duration", time.Minute, "how long")
	rate := fs.Int("rate", 200, "operations per second")
	workers := fs.Int("workers", 8, "concurrent clients")
	tcp4 := fs.Int("tcp4", 0, "host TCP echo port on 127.0.0.1")
	tcp6 := fs.Int("tcp6", 0, "host TCP echo port on ::1")
	udp4 := fs.Int("udp4", 0, "host UDP echo port on 127.0.0.1")
	udp6 := fs.Int("udp6", 0, "host UDP echo port on ::1")
	fs.Parse(args)

	l, err := net.Listen("tcp", fmt.Sprintf(":%d", runFwdTCP))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client-run:", err)
		return 1
	}
	pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", runFwdUDP))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client-run:", err)
		return 1
	}
	var servers sync.WaitGroup
	servers.Add(2)
	go func() { defer servers.Done(); serveEcho(l) }()
	go func() { defer servers.Done(); serveUDPEcho(pc) }()
	fmt.Println("client-run: ready")

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	sig := make(chan struct{})
	go func() { waitSignal(); close(sig); cancel() }()

	tcp := func(port int) string {
		if randInt(2) == 0 {
			return net.JoinHostPort(runGW4, strconv.Itoa(port))
		}
		return net.JoinHostPort(runGW6, strconv.Itoa(port))
	}
	either := func(p4, p6 int) string {
		if randInt(2) == 0 {
			return net.JoinHostPort(runGW4, strconv.Itoa(p4))
		}
		return net.JoinHostPort(runGW6, strconv.Itoa(p6))
	}
	ops := []op{
		{"tcp-echo", 35, func(ctx context.Context) error { return tcpEcho(ctx, either(*tcp4, *tcp6), 32<<10) }},
		{"tcp-reset", 8, func(ctx context.Context) error { return tcpResetMidway(ctx, either(*tcp4, *tcp6)) }},
		{"tcp-refused", 4, func(ctx context.Context) error { return tcpRefused(ctx, tcp(1)) }},
		{"udp-echo", 25, func(ctx context.Context) error { return udpEcho(ctx, either(*udp4, *udp6)) }},
		{"dns-udp", 15, func(ctx context.Context) error {
			return dnsQuery(ctx, "udp", runDNS, fmt.Sprintf("n%d.soak.", randInt(100000)))
		}},
		{"dns-tcp", 3, func(ctx context.Context) error {
			return dnsQuery(ctx, "tcp", runDNS, fmt.Sprintf("n%d.soak.", randInt(100000)))
		}},
	}
	t := newTally()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); pingLoop(ctx, t, runGW4, runGW6) }()
	runOps(ctx, *workers, pacer(ctx, *rate), ops, t)
	wg.Wait()
	t.print(os.Stdout, "client-run")
	fmt.Println("client-run: load done, idle until SIGTERM")
	<-sig
	l.Close()
	pc.Close()
	servers.Wait()
	return 0
}
