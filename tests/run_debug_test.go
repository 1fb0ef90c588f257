package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
)

// TestRunRootlessDebugListener: USTACK_DEBUG_ADDR works for a rootless
// `ustack run`. The listener belongs in the process that holds the stack:
// started before the re-execution into the user namespace, the copy
// found its port taken and the run failed with status 2 ("address
// already in use"), and the parent's listener would have shown no stack.
func TestRunRootlessDebugListener(t *testing.T) {
	leakcheck.Check(t)
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv")
	runTunForAll(t)
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"env", "USTACK_DEBUG_ADDR=127.0.0.1:"+port, bin, "run", "--", "sh", "-c", "read line")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	runEventually(t, "the debug listener lists the run's stack", func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("ustack run ended early: %v, output %q", err, out.String())
		default:
		}
		resp, err := client.Get("http://127.0.0.1:" + port + "/debug/vars")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var v struct{ Stacks []json.RawMessage }
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
			return err
		}
		if len(v.Stacks) != 1 {
			return fmt.Errorf("/debug/vars lists %d stacks, want the run's one", len(v.Stacks))
		}
		return nil
	})
	io.WriteString(stdin, "done\n")
	stdin.Close()
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("ustack run: %v, output %q; want status 0", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ustack run did not end after CMD's input did; output %q", out.String())
	}
}
