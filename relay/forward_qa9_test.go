package relay

import (
	"strings"
	"testing"
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
