package tun

// Stats counts the packets a device's link endpoint dropped itself. They
// never reach the stack, so none of the stack's counters shows them.
type Stats struct {
	// Malformed: packets read from the device and dropped as neither
	// IPv4 nor IPv6, truncated, or (vnet) with a virtio-net header that
	// is short, inconsistent or unsupported.
	Malformed uint64 `json:"malformed"`
	// BadChecksum: packets read and dropped because a checksum the
	// kernel had not verified was wrong (vnet only).
	BadChecksum uint64 `json:"bad_checksum"`
	// TxDropped: packets the stack sent that were dropped before the
	// device because their GSO type cannot be expressed (vnet only).
	TxDropped uint64 `json:"tx_dropped"`
}

// Stats returns the endpoint's drop counters.
func (d *Device) Stats() Stats {
	if s, ok := d.ep.(interface{ Stats() Stats }); ok {
		return s.Stats()
	}
	return Stats{}
}

// Stats returns the endpoint's drop counters.
func (e *PacketEndpoint) Stats() Stats {
	return Stats{Malformed: e.Malformed.Load()}
}
