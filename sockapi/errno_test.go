//go:build linux

package sockapi

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// TestErrnoTableComplete parses gVisor's tcpip/errors.go and fails if any
// Err* type there is missing from errnoTable, so a gVisor upgrade cannot
// silently turn a new error into EINVAL.
func TestErrnoTableComplete(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "gvisor.dev/gvisor/pkg/tcpip").Output()
	if err != nil {
		t.Fatalf("go list gvisor.dev/gvisor/pkg/tcpip: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "errors.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	mapped := map[string]bool{}
	for typ := range errnoTable {
		mapped[typ.Elem().Name()] = true
	}
	var found int
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			name := ts.Name.Name
			if _, isStruct := ts.Type.(*ast.StructType); !isStruct || !strings.HasPrefix(name, "Err") {
				continue
			}
			found++
			if !mapped[name] {
				t.Errorf("errnoTable lacks tcpip.%s (declared in %s)", name, path)
			}
		}
	}
	if found < 40 {
		t.Errorf("found %d Err* types in %s, want at least 40: is the parser looking at the right file?", found, path)
	}
	if len(errnoTable) != found {
		t.Errorf("errnoTable has %d entries, errors.go declares %d Err* types", len(errnoTable), found)
	}
}

func TestErrnoOf(t *testing.T) {
	for _, tc := range []struct {
		in   tcpip.Error
		want error
	}{
		{nil, nil},
		{&tcpip.ErrWouldBlock{}, unix.EAGAIN},
		{&tcpip.ErrConnectionRefused{}, unix.ECONNREFUSED},
		{&tcpip.ErrPortInUse{}, unix.EADDRINUSE},
		{&tcpip.ErrClosedForSend{}, unix.EPIPE},
		{&tcpip.ErrUnknownProtocolOption{}, unix.ENOPROTOOPT},
	} {
		if got := errnoOf(tc.in); !errors.Is(got, tc.want) && got != tc.want {
			t.Errorf("errnoOf(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
