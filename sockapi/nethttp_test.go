//go:build linux

package sockapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNetHTTP runs net/http's Server and Client, unchanged, over the
// adapters: several requests on kept-alive connections (each of which
// makes the server abort its background read with a deadline in the
// past), request and response bodies, and a graceful Shutdown.
func TestNetHTTP(t *testing.T) {
	forNetSetups(t, func(t *testing.T, server, client *Sockets, network, laddr string) {
		netTestHTTP(t, server, client, network, laddr)
	})
}

func netTestHTTP(t *testing.T, server, client *Sockets, network, laddr string) {
	l, err := (&ListenConfig{Sockets: server}).Listen(context.Background(), network, laddr)
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from %s", r.RemoteAddr, r.Host)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		// By now the server's background read is blocked; finishing the
		// request aborts it with SetReadDeadline(a time in the past), and
		// the connection goes idle only if that wakes the Read.
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	tr := &http.Transport{DialContext: (&Dialer{Sockets: client}).DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + l.Addr().String()
	for i := 0; i < 5; i++ {
		resp, err := hc.Get(base + "/hello")
		if err != nil {
			t.Fatalf("GET /hello #%d = %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasPrefix(string(body), "hello ") {
			t.Fatalf("GET /hello #%d body = %q, %v", i, body, err)
		}
	}
	big := strings.Repeat("ustack ", 100000)
	resp, err := hc.Post(base+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatalf("POST /echo = %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != big {
		t.Fatalf("POST /echo = %d bytes, %v; want %d bytes back", len(body), err, len(big))
	}

	// Last, so that no later request can be what wakes the server's read.
	resp, err = hc.Get(base + "/slow")
	if err != nil {
		t.Fatalf("GET /slow = %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	// Shutdown waits for connections to go idle, polling every 500ms.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want every connection idle", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	if c, err := (&Dialer{Sockets: client}).Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Errorf("Dial after Shutdown succeeded, want the listener closed")
	}
}
