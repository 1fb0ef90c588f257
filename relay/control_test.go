package relay

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestControlListAlwaysHasForwards: "list" answers with a "forwards" key
// even when there are none (a client reads the list, not the absence of
// a key), while answers that carry no list (stats, errors) have none.
func TestControlListAlwaysHasForwards(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	for _, tc := range []struct {
		req  ControlRequest
		want string
		not  string
	}{
		{ControlRequest{Op: "list"}, `{"ok":true,"forwards":[]}`, ""},
		{ControlRequest{Op: "stats"}, `"stats":{`, `"forwards"`},
		{ControlRequest{Op: "frob"}, `"error":`, `"forwards"`},
	} {
		b, err := json.Marshal(h.r.control(tc.req))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || tc.not != "" && strings.Contains(string(b), tc.not) {
			t.Errorf("control(%+v) = %s, want it to contain %s and not %q", tc.req, b, tc.want, tc.not)
		}
	}
}
