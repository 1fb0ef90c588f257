package tests

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/internal/services"
)

// TestServeDeviceInUse starts a second serve on the first one's device
// name: it must say so and exit 1, and leave the first one working.
func TestServeDeviceInUse(t *testing.T) {
	roottest.RequireCommand(t, "ping")
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	first := startServe(t, ns)
	second := runServe(t, ns)
	if code := second.wait(t, 30*time.Second); code != 1 {
		t.Errorf("second ustack serve --tun %s exited %d, want 1:\n%s", devName, code, second.out.String())
	}
	if out := second.out.String(); !strings.Contains(out, `"`+devName+`": device name already in use`) {
		t.Errorf("second ustack serve output does not say the name is in use:\n%s", out)
	}
	ns.Run("ping", "-c", "1", "-W", "2", stackV4.Addr().String())
	first.stop(t, syscall.SIGTERM)
}

// TestServeOptions runs serve with non-default addresses (IPv4 only, the
// stack's address outside the kernel's subnet) and a pcap file, and checks
// the capture holds the traffic.
func TestServeOptions(t *testing.T) {
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	pcap := filepath.Join(t.TempDir(), "serve.pcap")
	stackAddr := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), services.PortEcho)
	p := startServe(t, ns, "--host-addr", "10.98.0.1/24", "--addr", stackAddr.Addr().String()+"/32",
		"--tun-driver", string(drivers[0]), "--pcap", pcap)
	if !strings.Contains(p.out.String(), "ustack:      192.0.2.7/32") {
		t.Errorf("serve did not report its address:\n%s", p.out.String())
	}
	// The kernel reaches 192.0.2.7 through the host route serve added,
	// from 10.98.0.1, which the stack reaches through its default route.
	checkEcho(t, dialIn(t, ns, "tcp", stackAddr), 1<<20, 30*time.Second)
	p.stop(t, syscall.SIGTERM)

	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readPcap(b)
	if err != nil {
		t.Fatalf("read %s: %v", pcap, err)
	}
	var syn, synAck bool
	for _, pk := range pkts {
		// IPv4, TCP, flags at 20+13 with a 20-byte IP header (no options
		// in either stack's SYNs).
		if len(pk) < 40 || pk[0] != 0x45 || pk[9] != 6 {
			continue
		}
		src, dst := netip.AddrFrom4([4]byte(pk[12:16])), netip.AddrFrom4([4]byte(pk[16:20]))
		flags := pk[33]
		syn = syn || src.String() == "10.98.0.1" && dst == stackAddr.Addr() && flags&0x12 == 0x02
		synAck = synAck || src == stackAddr.Addr() && dst.String() == "10.98.0.1" && flags&0x12 == 0x12
	}
	if !syn || !synAck {
		t.Errorf("capture of %d packets: SYN in %v, SYN-ACK out %v; want both", len(pkts), syn, synAck)
	}
}

// readPcap parses a little-endian pcap file with LINKTYPE_RAW (what
// gVisor's sniffer writes) and returns the packets.
func readPcap(b []byte) ([][]byte, error) {
	if len(b) < 24 {
		return nil, errShort
	}
	if m := binary.LittleEndian.Uint32(b); m != 0xa1b2c3d4 {
		return nil, errBadMagic
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 101 {
		return nil, errLinkType
	}
	var pkts [][]byte
	for b = b[24:]; len(b) > 0; {
		if len(b) < 16 {
			return nil, errShort
		}
		n := int(binary.LittleEndian.Uint32(b[8:]))
		if len(b) < 16+n {
			return nil, errShort
		}
		pkts = append(pkts, bytes.Clone(b[16:16+n]))
		b = b[16+n:]
	}
	return pkts, nil
}

var (
	errShort    = pcapError("truncated")
	errBadMagic = pcapError("not a little-endian microsecond pcap file")
	errLinkType = pcapError("link type is not LINKTYPE_RAW (101)")
)

type pcapError string

func (e pcapError) Error() string { return string(e) }

// TestServeWithoutPrivilege runs serve as nobody, with no capabilities:
// it must say what it needs and exit 1.
func TestServeWithoutPrivilege(t *testing.T) {
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	bin := ustackBinary(t)
	// MkdirTemp made the directory 0700; nobody must be able to run the binary.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "creating a TUN device needs CAP_NET_ADMIN"},
		{[]string{"--netns", ns.Path}, "entering --netns needs CAP_SYS_ADMIN"},
	} {
		cmd := exec.Command(bin, append([]string{"serve"}, tc.args...)...)
		// Changing the uid from 0 clears the capability sets (capabilities(7)).
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("ustack serve %q as nobody: %v, want exit status 1\n%s", tc.args, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("ustack serve %q as nobody printed %q, want it to contain %q", tc.args, out, tc.want)
		}
	}
}
