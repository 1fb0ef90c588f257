package netns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// childEnv marks a process re-executed by Start as the namespace child: it
// waits for Process.Release, sets up its mounts and then executes the
// command. The value is the resolv.conf file to bind-mount ("" for none).
const childEnv = "USTACK_NETNS_CHILD"

// initName is the child's argv[0]; the command's argv follows.
const initName = "ustack-init"

// readyFD is the descriptor on which the child reads Release's go-ahead.
const readyFD = 3

// ExecConfig describes a command to run in fresh namespaces.
type ExecConfig struct {
	// Argv is the command and its arguments. Required. Argv[0] is looked
	// up in PATH inside the new namespaces.
	Argv []string
	// Env is the command's environment; nil means this process's.
	Env []string
	// Stdin, Stdout and Stderr default to this process's.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ResolvConf, if set, is a file bind-mounted over /etc/resolv.conf in
	// the command's own mount namespace; the host's file is not touched.
	// The child removes the ResolvConf file as soon as it is mounted (the
	// mount keeps it), so that a generated file is not left behind even
	// when the caller is killed (SIGKILL runs no cleanup) once the
	// command runs: pass a file made for this command.
	ResolvConf string
}

// Process is a command started by Start in a new network namespace and a
// new mount namespace. It is paused until Release.
//
// Ownership: the Process owns the child and a descriptor of its network
// namespace (which keeps the namespace alive while held). Wait reaps the
// child; Close kills whatever is left in the namespace and drops the
// descriptor.
type Process struct {
	nsFile *os.File // the child's network namespace, held open
	ready  *os.File // write end of the go-ahead pipe; nil after Release
	pid    int
	done   chan struct{} // closed when the child is reaped
	state  *os.ProcessState
	err    error // from cmd.Wait
	proc   *os.Process
}

// IsChild reports whether this process is a namespace child that Start
// re-executed. A program that calls Start must call ChildMain first
// thing in main (or init) when IsChild is true.
func IsChild() bool {
	_, ok := os.LookupEnv(childEnv)
	return ok
}

// Start re-executes this program (/proc/self/exe) in a new network, mount
// and PID namespace, paused until Release, and returns once the child
// exists. The child is started from a locked OS thread that lives until
// the child is reaped, so its parent-death signal (SIGKILL) fires only
// when this process dies.
func Start(cfg ExecConfig) (*Process, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("netns: ExecConfig.Argv is empty")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", cfg.Argv...)
	cmd.Args[0] = initName // ps shows the init for what it is
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(withoutEnv(env, childEnv), childEnv+"="+cfg.ResolvConf)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orStdin(cfg.Stdin), orWriter(cfg.Stdout, os.Stdout), orWriter(cfg.Stderr, os.Stderr)
	cmd.ExtraFiles = []*os.File{r} // becomes readyFD
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A PID namespace too, whose init the child becomes (ChildMain):
		// everything the command starts dies with it.
		Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
	}
	p := &Process{ready: w, done: make(chan struct{})}
	started := make(chan error, 1)
	go p.own(cmd, started)
	if err := <-started; err != nil {
		w.Close()
		return nil, fmt.Errorf("netns: start %s in a new network namespace: %w", cfg.Argv[0], err)
	}
	p.pid = cmd.Process.Pid
	p.proc = cmd.Process
	f, err := os.Open(p.NetNS())
	if err != nil {
		p.Kill()
		<-p.done
		w.Close()
		return nil, fmt.Errorf("netns: %w", err)
	}
	p.nsFile = f
	return p, nil
}

// own starts cmd and reaps it, all on one locked thread that then dies:
// Pdeathsig belongs to the thread that forked the child, and the runtime
// may retire any other thread while the child still runs.
func (p *Process) own(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
	if err := cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	p.err = cmd.Wait()
	p.state = cmd.ProcessState
	close(p.done)
}

// Pid returns the child's process ID.
func (p *Process) Pid() int { return p.pid }

// NetNS returns the path of the child's network namespace.
func (p *Process) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", p.pid) }

// Release lets the child set up its mounts and execute the command.
func (p *Process) Release() error {
	if p.ready == nil {
		return errors.New("netns: already released")
	}
	_, err := p.ready.Write([]byte{1})
	p.ready.Close()
	p.ready = nil
	if err != nil {
		return fmt.Errorf("netns: release child: %w", err)
	}
	return nil
}

// Signal sends sig to the child, unless it has been reaped.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
		return p.proc.Signal(sig)
	}
}

// Kill kills the child.
func (p *Process) Kill() { p.Signal(syscall.SIGKILL) }

// Done is closed when the child has been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the child and returns its exit status the way a shell
// reports it: the exit code, or 128+N when signal N killed it.
func (p *Process) Wait() int {
	<-p.done
	return ExitStatus(p.state, p.err)
}

// ExitStatus turns a finished command's state into a shell-style status.
func ExitStatus(st *os.ProcessState, err error) int {
	if st == nil {
		if err != nil {
			return 127
		}
		return 0
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Close kills every process still in the child's network namespace (a
// command's background children included), waits for the child and drops
// the namespace descriptor, so the namespace goes away once the last
// descriptor to it (a TUN device's, say) is closed. Safe to call twice.
func (p *Process) Close() error {
	if p.ready != nil {
		p.ready.Close() // the child exits without running the command
		p.ready = nil
	}
	if p.nsFile == nil {
		return nil
	}
	KillAll(p.nsFile)
	p.Kill()
	<-p.done
	err := p.nsFile.Close()
	p.nsFile = nil
	return err
}

// KillAll sends SIGKILL to every process (but this one) whose network
// namespace is the one ns refers to, as `ip netns pids` would list them.
func KillAll(ns *os.File) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
		return
	}
	target := nsID{st.Dev, st.Ino}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if id, err := statNS("/proc/" + e.Name() + "/ns/net"); err == nil && id == target {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err == nil && pid != os.Getpid() {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
}

// withoutEnv is env without the variables names.
func withoutEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, name := range names {
			if strings.HasPrefix(kv, name+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func orStdin(r io.Reader) io.Reader {
	if r == nil {
		return os.Stdin
	}
	return r
}

func orWriter(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
