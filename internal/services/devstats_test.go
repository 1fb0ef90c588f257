package services

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
)

// TestStatusDeviceCounters: packets the TUN device's endpoint drops
// (malformed, bad checksum) never reach the stack, so no stack counter
// moves; the status page and /stats.json must show the device's own.
func TestStatusDeviceCounters(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	dev := tun.Stats{Malformed: 3, BadChecksum: 2, TxDropped: 1}
	srv, err := Start(Config{Stack: st, Addrs: []netip.Addr{lo4}, Now: func() time.Time { return fixedNow }, Version: "test",
		DeviceStats: func() tun.Stats { return dev }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hc := httpClient(st)

	var got struct {
		Device map[string]uint64 `json:"device"`
	}
	getStatus(t, hc, []string{`(?m)^Device\.Malformed +3$`, `(?m)^Device\.BadChecksum +2$`, `(?m)^Device\.TxDropped +1$`}, &got)
	if got.Device["malformed"] != 3 || got.Device["bad_checksum"] != 2 || got.Device["tx_dropped"] != 1 {
		t.Errorf("stats.json device = %v, want malformed 3, bad_checksum 2, tx_dropped 1", got.Device)
	}
}

// getStatus fetches the status page, which must match every regexp in
// wants, and decodes /stats.json into stats.
func getStatus(t *testing.T, hc *http.Client, wants []string, stats any) {
	t.Helper()
	resp, err := hc.Get("http://127.0.0.1/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range wants {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("GET / does not match %s:\n%s", want, body)
		}
	}
	resp, err = hc.Get("http://127.0.0.1/stats.json")
	if err != nil {
		t.Fatalf("GET /stats.json: %v", err)
	}
	err = json.NewDecoder(resp.Body).Decode(stats)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode /stats.json: %v", err)
	}
}
