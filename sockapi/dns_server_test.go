//go:build linux

package sockapi

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// testDNS is a small authoritative DNS server for tests, running on a
// userspace stack through gonet, so the resolver under test reaches it
// over that same stack. Its zone answers from records and rcodes; hooks
// can replace whole replies.
type testDNS struct {
	addr netip.AddrPort

	udp *gonet.UDPConn
	tcp *gonet.TCPListener
	wg  sync.WaitGroup

	mu      sync.Mutex
	records map[string][]dnsmessage.Resource // by lower-case FQDN; guarded by mu
	rcodes  map[string]dnsmessage.RCode      // overrides; guarded by mu
	silent  bool                             // drop every UDP query; guarded by mu
	tcpMute bool                             // read TCP queries, answer none; guarded by mu
	udpRaw  func(req []byte) [][]byte        // replaces UDP replies; guarded by mu
	log     []string                         // "udp A name." per query; guarded by mu
	conns   map[net.Conn]bool                // open TCP connections; guarded by mu
}

// startDNS starts a server on st at addr; t's cleanup stops it and waits
// for its goroutines.
func startDNS(t testing.TB, st *gstack.Stack, addr string) *testDNS {
	t.Helper()
	d := &testDNS{
		addr:    netip.MustParseAddrPort(addr),
		records: map[string][]dnsmessage.Resource{},
		rcodes:  map[string]dnsmessage.RCode{},
		conns:   map[net.Conn]bool{},
	}
	fa, proto := fullAddr(d.addr)
	var err error
	if d.udp, err = gonet.DialUDP(st, &fa, nil, proto); err != nil {
		t.Fatalf("DialUDP(%v) = %v", addr, err)
	}
	if d.tcp, err = gonet.ListenTCP(st, fa, proto); err != nil {
		d.udp.Close()
		t.Fatalf("ListenTCP(%v) = %v", addr, err)
	}
	d.wg.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	t.Cleanup(d.stop)
	return d
}

func (d *testDNS) stop() {
	d.udp.Close()
	d.tcp.Close()
	d.mu.Lock()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// add puts records for name: "A 1.2.3.4", "AAAA ::1", "CNAME x.", "PTR x.".
func (d *testDNS) add(name string, rrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.ToLower(name)
	for _, rr := range rrs {
		typ, val, _ := strings.Cut(rr, " ")
		h := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: 60}
		var body dnsmessage.ResourceBody
		switch typ {
		case "A":
			h.Type, body = dnsmessage.TypeA, &dnsmessage.AResource{A: netip.MustParseAddr(val).As4()}
		case "AAAA":
			h.Type, body = dnsmessage.TypeAAAA, &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(val).As16()}
		case "CNAME":
			h.Type, body = dnsmessage.TypeCNAME, &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(val)}
		case "PTR":
			h.Type, body = dnsmessage.TypePTR, &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(val)}
		default:
			panic("testDNS.add: unknown type " + typ)
		}
		d.records[key] = append(d.records[key], dnsmessage.Resource{Header: h, Body: body})
	}
}

func (d *testDNS) setRcode(name string, rc dnsmessage.RCode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcodes[strings.ToLower(name)] = rc
}

// setRcodeFor answers queries of one type for name with rc.
func (d *testDNS) setRcodeFor(name string, t dnsmessage.Type, rc dnsmessage.RCode) {
	d.setRcode(name+"/"+t.String(), rc)
}

func (d *testDNS) setSilent(b bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.silent = b
}

// setTCPMute makes the server take TCP queries and never answer them.
func (d *testDNS) setTCPMute(b bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tcpMute = b
}

func (d *testDNS) setUDPRaw(f func(req []byte) [][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.udpRaw = f
}

// queries returns the log of queries received, and clears it.
func (d *testDNS) queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.log
	d.log = nil
	return q
}

func (d *testDNS) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		d.mu.Lock()
		silent, raw := d.silent, d.udpRaw
		d.mu.Unlock()
		var replies [][]byte
		switch {
		case silent:
			d.answer(buf[:n], "udp") // logs it
		case raw != nil:
			d.answer(buf[:n], "udp")
			replies = raw(append([]byte(nil), buf[:n]...))
		default:
			if r := d.answer(buf[:n], "udp"); r != nil {
				replies = [][]byte{r}
			}
		}
		for _, r := range replies {
			d.udp.WriteTo(r, from)
		}
	}
}

func (d *testDNS) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns[c] = true
		d.mu.Unlock()
		d.wg.Add(1)
		go d.serveConn(c)
	}
}

func (d *testDNS) serveConn(c net.Conn) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		c.Close()
	}()
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		d.mu.Lock()
		mute := d.tcpMute
		d.mu.Unlock()
		if mute {
			io.Copy(io.Discard, c) // until the client or stop closes it
			return
		}
		r := d.answer(req, "tcp")
		if r == nil {
			return
		}
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...))
	}
}

// answer logs req and builds the zone's reply; over UDP a reply longer
// than 512 bytes is cut to its header and question with TC set, as a
// server without EDNS0 does.
func (d *testDNS) answer(req []byte, transport string) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(req); err != nil || len(m.Questions) != 1 {
		return nil
	}
	q := m.Questions[0]
	key := strings.ToLower(q.Name.String())
	d.mu.Lock()
	d.log = append(d.log, transport+" "+strings.TrimPrefix(q.Type.String(), "Type")+" "+q.Name.String())
	rc, hasRC := d.rcodes[key]
	if trc, ok := d.rcodes[key+"/"+strings.ToLower(q.Type.String())]; ok {
		rc, hasRC = trc, true
	}
	known := len(d.records[key]) > 0
	var ans []dnsmessage.Resource
	for name := key; ; {
		next := ""
		for _, rr := range d.records[name] {
			if rr.Header.Type == q.Type || rr.Header.Type == dnsmessage.TypeCNAME {
				ans = append(ans, rr)
			}
			if c, ok := rr.Body.(*dnsmessage.CNAMEResource); ok {
				next = strings.ToLower(c.CNAME.String())
			}
		}
		if next == "" || len(ans) > 16 {
			break
		}
		name = next
	}
	d.mu.Unlock()
	if !hasRC && !known {
		rc = dnsmessage.RCodeNameError
	}
	resp := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: m.ID, Response: true, Authoritative: true, RecursionDesired: m.RecursionDesired, RCode: rc},
		Questions: m.Questions,
	}
	if rc == dnsmessage.RCodeSuccess {
		resp.Answers = ans
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	if transport == "udp" && len(out) > 512 {
		resp.Answers, resp.Truncated = nil, true
		out, _ = resp.Pack()
	}
	return out
}
