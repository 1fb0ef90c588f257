package relay

import (
	"bufio"
	"io"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestControlInfo: "info" reports the addresses the relay was given,
// which are what the namespace was configured with, outbound ones only
// when set.
func TestControlInfo(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, `{"ok":true,"info":{"guest4":"10.0.2.100","gateway4":"10.0.2.2","dns4":"10.0.2.3","guest6":"fd00::100","gateway6":"fd00::2","dns6":"fd00::3"}}`},
		{Config{
			Network:   Network{Prefix4: netip.MustParsePrefix("10.0.3.0/24"), Prefix6: netip.MustParsePrefix("fd00:1::/64")},
			Outbound4: netip.MustParseAddr("192.0.2.9"), // only reported here: no traffic is sent
		}, `{"ok":true,"info":{"guest4":"10.0.3.100","gateway4":"10.0.3.2","dns4":"10.0.3.3","guest6":"fd00:1::100","gateway6":"fd00:1::2","dns6":"fd00:1::3","outbound4":"192.0.2.9"}}`},
	} {
		h := newHarness(t, tc.cfg)
		c := dialControl(t, h)
		io.WriteString(c, `{"op":"info"}`+"\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != tc.want+"\n" {
			t.Errorf("info = %q, %v; want %s", line, err, tc.want)
		}
	}
}
