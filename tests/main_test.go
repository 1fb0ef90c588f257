package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binDir string // removed by TestMain

	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	// The Go runtime opens its netpoller's epoll fd and wakeup eventfd on
	// first use, and keeps them; open them now, so that the first test to
	// use the network does not count them as its leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ustackBinary builds cmd/ustack once per test run (with -race when the
// tests run with it) and returns its path.
func ustackBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ustack-tests-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ustack")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/ustack/ustack/cmd/ustack")
		// go test puts its own GOROOT/bin first on PATH (Go 1.19+).
		cmd := exec.Command("go", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %v: %v\n%s", args, err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build ustack: %v", buildErr)
	}
	return binPath
}
