package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
)

func TestStartDebugRefusesNonLoopback(t *testing.T) {
	leakcheck.Check(t)
	for _, addr := range []string{"0.0.0.0:6060", "[::]:6060", "10.0.0.1:6060", "localhost:6060", "127.0.0.1", "unix:"} {
		if _, err := startDebug(addr); err == nil {
			t.Errorf("startDebug(%q) = nil, want an error", addr)
		}
	}
	if srv, err := startDebug(""); srv != nil || err != nil {
		t.Errorf(`startDebug("") = %v, %v; want nil, nil (off)`, srv, err)
	}
}

// TestStartDebugUnixSocketIsPrivate: unix:PATH serves the pages on a
// socket only its owner can open, for a machine whose other users (or a
// `ustack run` CMD with --allow-host-loopback) must not read the
// profiles or start one.
func TestStartDebugUnixSocketIsPrivate(t *testing.T) {
	leakcheck.Check(t)
	path := filepath.Join(t.TempDir(), "debug.sock")
	srv, err := startDebug("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "unix", path)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://debug/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v debugVars
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Goroutines <= 0 {
		t.Errorf("/debug/vars over the socket = %+v, %v; want the process's figures", v, err)
	}
}

// TestDebugVarsListsTrackedStacks checks /debug/vars, what tests/soak
// samples: the process's figures and one entry per live stack.
func TestDebugVarsListsTrackedStacks(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(debugMux())
	defer srv.Close()
	get := func() debugVars {
		t.Helper()
		resp, err := http.Get(srv.URL + "/debug/vars")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v debugVars
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("decode /debug/vars: %v", err)
		}
		return v
	}
	before := len(get().Stacks)
	untrack := trackStack(st)
	v := get()
	if len(v.Stacks) != before+1 || v.Goroutines <= 0 || v.HeapAlloc == 0 || v.FDs <= 0 {
		t.Errorf("/debug/vars with a tracked stack = %+v, want %d stacks and nonzero figures", v, before+1)
	}
	untrack()
	if n := len(get().Stacks); n != before {
		t.Errorf("after untrack: %d stacks, want %d", n, before)
	}
	http.DefaultClient.CloseIdleConnections()
}
