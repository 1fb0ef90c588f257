package tun

import (
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestDeviceStats: Device.Stats reports what either driver's endpoint
// counted and dropped.
func TestDeviceStats(t *testing.T) {
	leakcheck.Check(t)
	f, _ := packetPair(t, 0)
	vep, err := NewVnetEndpoint(f, 1500)
	if err != nil {
		t.Fatal(err)
	}
	vep.Malformed.Add(3)
	vep.BadChecksum.Add(2)
	vep.TxDropped.Add(1)
	if got, want := (&Device{ep: vep}).Stats(), (Stats{Malformed: 3, BadChecksum: 2, TxDropped: 1}); got != want {
		t.Errorf("vnet Device.Stats() = %+v, want %+v", got, want)
	}
	g, _ := packetPair(t, 0)
	pep := NewPacketEndpoint(g, 1500)
	pep.Malformed.Add(4)
	if got, want := (&Device{ep: pep}).Stats(), (Stats{Malformed: 4}); got != want {
		t.Errorf("water Device.Stats() = %+v, want %+v", got, want)
	}
}
