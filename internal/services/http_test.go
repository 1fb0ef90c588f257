package services

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
)

// shortHTTPTimeouts makes the status page's timeouts short for one test.
func shortHTTPTimeouts(t *testing.T) {
	saved := httpTimeouts
	httpTimeouts.header = 300 * time.Millisecond
	httpTimeouts.read = 300 * time.Millisecond
	httpTimeouts.write = 300 * time.Millisecond
	httpTimeouts.idle = 300 * time.Millisecond
	t.Cleanup(func() { httpTimeouts = saved })
}

// TestHTTPClientsCannotHoldConnections: a client of the status page must
// not keep a connection (and its goroutine and buffers) open for as long
// as it likes. Only an unfinished request header was bounded before: a
// kept-alive connection left idle after a request, a request whose body
// trickles in (the handler answers and the server then waits to discard
// the body, with no deadline), and a client that pipelines requests and
// never reads the answers stayed open for ever, 200 of each from one
// kernel-side script.
func TestHTTPClientsCannotHoldConnections(t *testing.T) {
	leakcheck.Check(t)
	shortHTTPTimeouts(t)
	readResponse := func(t *testing.T, c net.Conn) {
		t.Helper()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read the response: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, tc := range []struct {
		name string
		// first is what the client does at once, again what it does
		// every 50 ms after that for as long as the connection is open.
		first func(t *testing.T, c net.Conn)
		again func(c net.Conn)
	}{
		{"idle keep-alive", func(t *testing.T, c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			readResponse(t, c)
		}, nil},
		{"trickled body", func(t *testing.T, c net.Conn) {
			// net/http reads what is left of a short body before it
			// answers, so there is no answer to read.
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
		}, func(c net.Conn) { io.WriteString(c, "z") }},
		{"pipelined, never read", func(t *testing.T, c net.Conn) {
			// More answers than the buffers hold; a write blocked on a
			// full window returns when the server closes.
			go c.Write([]byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5000)))
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Buffers of 64 KiB that do not grow: the answers fill them
			// after some 90 requests, not after the megabytes auto-tuning
			// would allow, which a loaded machine takes more than the 5 s
			// below to serve.
			small := stack.BufferRange{Min: 4096, Default: 64 << 10, Max: 64 << 10}
			st, srv := startWith(t, stack.Config{TCP: stack.TCPConfig{SendBuffer: small, ReceiveBuffer: small, DisableModerateReceiveBuffer: true}})
			c := dial(t, st, lo4, PortHTTP)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			tc.first(t, c)
			deadline := time.Now().Add(5 * time.Second)
			for {
				n := 0
				for _, ci := range srv.Conns() {
					if ci.Service == "http" {
						n++
					}
				}
				if n == 0 && time.Since(deadline.Add(-5*time.Second)) > 100*time.Millisecond {
					return // closed by the server
				}
				if time.Now().After(deadline) {
					t.Fatalf("the connection is still open after 5s (the timeouts are 300ms): %+v", srv.Conns())
				}
				time.Sleep(50 * time.Millisecond)
				if tc.again != nil {
					tc.again(c)
				}
			}
		})
	}
}
