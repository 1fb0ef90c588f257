//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// tally counts each operation's successes and failures.
type tally struct {
	mu   sync.Mutex
	ok   map[string]int
	fail map[string]int
	last map[string]string // last error per operation
}

func newTally() *tally {
	return &tally{ok: map[string]int{}, fail: map[string]int{}, last: map[string]string{}}
}

func (t *tally) add(op string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.fail[op]++
		t.last[op] = err.Error()
		return
	}
	t.ok[op]++
}

func (t *tally) print(w io.Writer, who string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ops []string
	for op := range t.ok {
		ops = append(ops, op)
	}
	for op := range t.fail {
		if _, ok := t.ok[op]; !ok {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	for _, op := range ops {
		fmt.Fprintf(w, "%s: %-16s ok %7d  failed %5d", who, op, t.ok[op], t.fail[op])
		if e := t.last[op]; e != "" {
			fmt.Fprintf(w, "  (last: %s)", e)
		}
		fmt.Fprintln(w)
	}
}

// op is one kind of client operation, chosen with its weight.
type op struct {
	name   string
	weight int
	do     func(ctx context.Context) error
}

// runOps runs workers that each take a token from tokens and run one op
// chosen by weight, until tokens is closed.
func runOps(ctx context.Context, workers int, tokens <-chan struct{}, ops []op, t *tally) {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				o := pick(ops, total)
				octx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := o.do(octx)
				cancel()
				if ctx.Err() != nil && err != nil {
					return // cut short by the end of the load, not a failure
				}
				t.add(o.name, err)
			}
		}()
	}
	wg.Wait()
}

func pick(ops []op, total int) op {
	n := randInt(total)
	for _, o := range ops {
		if n < o.weight {
			return o
		}
		n -= o.weight
	}
	return ops[len(ops)-1]
}

func randInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

var dialer net.Dialer

func dialTCP(ctx context.Context, addr string) (*net.TCPConn, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return c.(*net.TCPConn), nil
}

// tcpEcho sends 1..maxBytes random bytes to an echo server and checks
// they come back.
func tcpEcho(ctx context.Context, addr string, maxBytes int) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, 1+randInt(maxBytes))
	rand.Read(msg)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo: data differs")
	}
	return nil
}

// tcpResetMidway writes to an echo server, reads part of the answer, and
// closes with SO_LINGER 0: a client that vanishes with a reset.
func tcpResetMidway(ctx context.Context, addr string) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	msg := make([]byte, 64<<10)
	go c.Write(msg) // ends with the connection
	if _, err := io.ReadFull(c, make([]byte, 1+randInt(8<<10))); err != nil {
		c.Close()
		return err
	}
	c.SetLinger(0)
	return c.Close()
}

// tcpReadSome reads n bytes from a server that keeps sending (chargen),
// then closes with data unread (the kernel then resets).
func tcpReadSome(ctx context.Context, addr string, n int) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.ReadFull(c, make([]byte, n))
	return err
}

// tcpSlowReader reads 512 bytes every 20 ms for about half a second.
func tcpSlowReader(ctx context.Context, addr string) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 512)
	for range 25 {
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// tcpReadAll reads a server's answer to EOF (daytime).
func tcpReadAll(ctx context.Context, addr string) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err == nil && len(b) == 0 {
		err = errors.New("empty answer")
	}
	return err
}

// tcpSend writes n bytes and closes (discard).
func tcpSend(ctx context.Context, addr string, n int) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(make([]byte, n))
	return err
}

// tcpVanish opens an echo connection, round-trips a few bytes, then
// closes it in TCP_REPAIR mode, which sends nothing: to the server the
// peer has vanished, as when a host loses power (needs CAP_NET_ADMIN).
func tcpVanish(ctx context.Context, addr string) error {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		return err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_REPAIR, 1)
	})
	return serr
}

// tcpRefused connects to a port nothing listens on and expects a refusal.
func tcpRefused(ctx context.Context, addr string) error {
	c, err := dialTCP(ctx, addr)
	if err == nil {
		c.Close()
		return errors.New("connected to a port that should be closed")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	return nil
}

// udpEcho sends one datagram from a fresh socket (a new source port) and
// waits for the echo.
func udpEcho(ctx context.Context, addr string) error {
	c, err := dialer.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, 1+randInt(1200))
	rand.Read(msg)
	for try := range 3 { // datagrams may be lost; that is not a leak
		c.SetDeadline(time.Now().Add(time.Duration(300*(try+1)) * time.Millisecond))
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, 2048)
		n, err := c.Read(got)
		if err == nil {
			if !bytes.Equal(got[:n], msg) {
				return errors.New("udp echo: data differs")
			}
			return nil
		}
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return err
		}
	}
	return errors.New("udp echo: no answer in 3 tries")
}

// udpSendOnly sends a datagram from a fresh socket and expects nothing
// (discard) or any answer (daytime), reading with a short deadline.
func udpSendOnly(ctx context.Context, addr string, wantAnswer bool) error {
	c, err := dialer.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	if !wantAnswer {
		return nil
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 512))
	return err
}

// dnsQuery asks server for name's A record over network (udp or tcp) and
// expects at least one answer.
func dnsQuery(ctx context.Context, network, server, name string) error {
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: uint16(randInt(65536)), RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		return err
	}
	c, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var reply []byte
	if network == "tcp" {
		if _, err := c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
			return err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		reply = make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(c, reply); err != nil {
			return err
		}
	} else {
		if _, err := c.Write(b); err != nil {
			return err
		}
		reply = make([]byte, 1500)
		n, err := c.Read(reply)
		if err != nil {
			return err
		}
		reply = reply[:n]
	}
	var m dnsmessage.Message
	if err := m.Unpack(reply); err != nil {
		return err
	}
	if m.ID != q.ID || len(m.Answers) == 0 {
		return fmt.Errorf("dns: id %d (want %d), %d answers", m.ID, q.ID, len(m.Answers))
	}
	return nil
}

// pingLoop runs ping against each address in turn until ctx is done.
func pingLoop(ctx context.Context, t *tally, addrs ...string) {
	for i := 0; ctx.Err() == nil; i++ {
		a := addrs[i%len(addrs)]
		cmd := exec.CommandContext(ctx, "ping", "-q", "-c", "10", "-i", "0.05", "-W", "1", a)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		t.add("ping", err)
	}
}

// waitSignal blocks until SIGTERM or SIGINT.
func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
}
