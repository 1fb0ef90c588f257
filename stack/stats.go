package stack

import (
	"sort"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Stats is a point-in-time copy of the stack's counters.
type Stats struct {
	NICs []NICStats
	IP   IPStats
	ICMP ICMPStats
	TCP  TCPStats
	UDP  UDPStats
}

// NICStats counts one interface's traffic.
type NICStats struct {
	Name                string
	RxPackets, RxBytes  uint64
	TxPackets, TxBytes  uint64
	MalformedRxPackets  uint64 // L4 headers that did not parse
	TxDroppedNoBufSpace uint64
	UnknownL3RxPackets  uint64
}

// IPStats counts IPv4 and IPv6 together.
type IPStats struct {
	PacketsReceived, PacketsDelivered, PacketsSent uint64
	MalformedPackets, InvalidDestination           uint64
	InvalidSource                                  uint64 // own, loopback, broadcast or multicast source: dropped
	OutgoingErrors                                 uint64
}

// ICMPStats counts ICMPv4 and ICMPv6 together.
type ICMPStats struct {
	Invalid uint64 // too short, bad checksum: dropped
}

// TCPStats mirrors the TCP counters of /proc/net/snmp.
type TCPStats struct {
	ActiveOpens, PassiveOpens      uint64
	CurrentEstablished             uint64
	CurrentConnected               uint64
	EstablishedResets              uint64
	FailedConnectionAttempts       uint64
	SegmentsReceived, SegmentsSent uint64
	Retransmits                    uint64
	ResetsSent, ResetsReceived     uint64
	ListenOverflowSynDrop          uint64
	ChecksumErrors                 uint64
}

// UDPStats mirrors the UDP counters of /proc/net/snmp.
type UDPStats struct {
	PacketsReceived, PacketsSent uint64
	UnknownPortErrors            uint64
	ReceiveBufferErrors          uint64
	MalformedPackets             uint64
	ChecksumErrors               uint64
}

// Stats returns a snapshot of the stack's counters.
func (s *Stack) Stats() Stats {
	gs := s.s.Stats()
	st := Stats{
		IP: IPStats{
			PacketsReceived:    gs.IP.PacketsReceived.Value(),
			PacketsDelivered:   gs.IP.PacketsDelivered.Value(),
			PacketsSent:        gs.IP.PacketsSent.Value(),
			MalformedPackets:   gs.IP.MalformedPacketsReceived.Value(),
			InvalidDestination: gs.IP.InvalidDestinationAddressesReceived.Value(),
			InvalidSource:      gs.IP.InvalidSourceAddressesReceived.Value(),
			OutgoingErrors:     gs.IP.OutgoingPacketErrors.Value(),
		},
		ICMP: ICMPStats{
			Invalid: gs.ICMP.V4.PacketsReceived.Invalid.Value() + gs.ICMP.V6.PacketsReceived.Invalid.Value(),
		},
		TCP: TCPStats{
			ActiveOpens:              gs.TCP.ActiveConnectionOpenings.Value(),
			PassiveOpens:             gs.TCP.PassiveConnectionOpenings.Value(),
			CurrentEstablished:       gs.TCP.CurrentEstablished.Value(),
			CurrentConnected:         gs.TCP.CurrentConnected.Value(),
			EstablishedResets:        gs.TCP.EstablishedResets.Value(),
			FailedConnectionAttempts: gs.TCP.FailedConnectionAttempts.Value(),
			SegmentsReceived:         gs.TCP.ValidSegmentsReceived.Value(),
			SegmentsSent:             gs.TCP.SegmentsSent.Value(),
			Retransmits:              gs.TCP.Retransmits.Value(),
			ResetsSent:               gs.TCP.ResetsSent.Value(),
			ResetsReceived:           gs.TCP.ResetsReceived.Value(),
			ListenOverflowSynDrop:    gs.TCP.ListenOverflowSynDrop.Value(),
			ChecksumErrors:           gs.TCP.ChecksumErrors.Value(),
		},
		UDP: UDPStats{
			PacketsReceived:     gs.UDP.PacketsReceived.Value(),
			PacketsSent:         gs.UDP.PacketsSent.Value(),
			UnknownPortErrors:   gs.UDP.UnknownPortErrors.Value(),
			ReceiveBufferErrors: gs.UDP.ReceiveBufferErrors.Value(),
			MalformedPackets:    gs.UDP.MalformedPacketsReceived.Value(),
			ChecksumErrors:      gs.UDP.ChecksumErrors.Value(),
		},
	}
	for _, info := range s.s.NICInfo() {
		ns := info.Stats
		st.NICs = append(st.NICs, NICStats{
			Name:                info.Name,
			RxPackets:           ns.Rx.Packets.Value(),
			RxBytes:             ns.Rx.Bytes.Value(),
			TxPackets:           ns.Tx.Packets.Value(),
			TxBytes:             ns.Tx.Bytes.Value(),
			MalformedRxPackets:  ns.MalformedL4RcvdPackets.Value(),
			TxDroppedNoBufSpace: ns.TxPacketsDroppedNoBufferSpace.Value(),
			UnknownL3RxPackets:  sumCounts(ns.UnknownL3ProtocolRcvdPacketCounts),
		})
	}
	sort.Slice(st.NICs, func(i, j int) bool { return st.NICs[i].Name < st.NICs[j].Name })
	return st
}

func sumCounts(m *tcpip.IntegralStatCounterMap) uint64 {
	if m == nil {
		return 0
	}
	var n uint64
	for _, k := range m.Keys() {
		if c, ok := m.Get(k); ok {
			n += c.Value()
		}
	}
	return n
}
