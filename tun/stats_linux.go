package tun

// Stats returns the endpoint's drop counters.
func (e *VnetEndpoint) Stats() Stats {
	return Stats{Malformed: e.Malformed.Load(), BadChecksum: e.BadChecksum.Load(), TxDropped: e.TxDropped.Load()}
}
