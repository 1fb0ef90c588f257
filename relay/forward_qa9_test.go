package relay

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestParseForwardZoneMessage: -p with a link-local host address and a
// zone ("[fe80::1%eth0]:8080:80") is refused, but the message said the
// address "is not an IP address", which it is; a user fixing the command
// line needs to know that the zone is what is not supported.
func TestParseForwardZoneMessage(t *testing.T) {
	for _, in := range []string{"[fe80::1%lo]:8080:80", "[fe80::1%eth0]:8080:80/udp"} {
		_, err := ParseForward(in)
		if err == nil {
			t.Fatalf("ParseForward(%q) = nil error, want one", in)
		}
		if strings.Contains(err.Error(), "not an IP address") || !strings.Contains(err.Error(), "zone") {
			t.Errorf("ParseForward(%q) = %v, want it to say the zone is not supported", in, err)
		}
	}
}

// TestForwardOtherFamilyFallback: `ustack run -p 8080:8000 -- python3 -m
// http.server 8000` serves on 0.0.0.0 only, and a host client coming over
// IPv6 (curl http://[::1]:8080/, or localhost where it resolves to ::1
// first) was reset: the relay only ever dialled fd00::100, and curl does
// not fall back after its connect to ustack's listener succeeded. As
// Docker's proxy and rootlesskit do, a connection the namespace refuses
// on the client's family is tried on the other one, from the gateway
// (the client's own address cannot be of the other family). Both
// directions; a port closed on both families is still reset.
func TestForwardOtherFamilyFallback(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	h.nsListen(t, netip.AddrPortFrom(DefaultGuest4, 80)) // IPv4 only
	h.nsListen(t, netip.AddrPortFrom(DefaultGuest6, 81)) // IPv6 only
	for _, tc := range []struct {
		hostIP, network string
		guestPort       uint16
		wantSrc         string
	}{
		{"::1", "tcp6", 80, DefaultGateway4.String()},
		{"127.0.0.1", "tcp4", 81, DefaultGateway6.String()},
	} {
		t.Run(tc.network, func(t *testing.T) {
			got, err := readThroughForward(t, h, tc.network, tc.hostIP, tc.guestPort)
			if err != nil || string(got) != tc.wantSrc {
				t.Errorf("%s client to a service listening on the other family only: got %q, %v; want it served, from %s", tc.network, got, err, tc.wantSrc)
			}
		})
	}
	if err := forwardToClosedPort(t, h, "tcp6", "::1", 82); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("forward to a port closed on both families: %v, want connection reset", err)
	}
	if st := h.r.Stats(); st.ForwardAccepted != 2 || st.ForwardFailed != 1 {
		t.Errorf("Stats() = %+v, want 2 forwarded, 1 failed", st)
	}
}
