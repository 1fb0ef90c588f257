package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ControlRequest is one line a control client sends.
//
//	{"op":"add","forward":"8080:80/tcp"}
//	{"op":"remove","forward":"8080:80/tcp"}
//	{"op":"list"}
//	{"op":"stats"}
//	{"op":"info"}
type ControlRequest struct {
	Op      string `json:"op"`
	Forward string `json:"forward,omitempty"`
}

// ControlResponse is the line answering each request. OK is false exactly
// when Error is set.
type ControlResponse struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Forwards []string `json:"forwards,omitzero"` // omitzero: "list" sends [] when there are none; nil is left out
	Stats    *Stats   `json:"stats,omitempty"`
	Info     *Info    `json:"info,omitempty"`
}

// Info is what the namespace was given, for an engine that did not choose
// it (or writes it into the container's /etc/hosts): its own addresses,
// the gateway and DNS addresses, and the outbound source addresses, if
// any.
type Info struct {
	Guest4    netip.Addr `json:"guest4"`
	Gateway4  netip.Addr `json:"gateway4"`
	DNS4      netip.Addr `json:"dns4"`
	Guest6    netip.Addr `json:"guest6"`
	Gateway6  netip.Addr `json:"gateway6"`
	DNS6      netip.Addr `json:"dns6"`
	Outbound4 netip.Addr `json:"outbound4,omitzero"`
	Outbound6 netip.Addr `json:"outbound6,omitzero"`
}

// maxControlLine bounds one request line.
const maxControlLine = 64 << 10

// ServeControl answers JSON-lines requests on ln (a unix socket, say)
// until ln is closed, which the caller does before Close. Each connection
// may send any number of requests; each gets one response line.
func (r *Relay) ServeControl(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !r.goTracked(func() { r.serveControlConn(c) }) {
			c.Close()
			return nil
		}
	}
}

func (r *Relay) serveControlConn(c net.Conn) {
	if !r.track(c) {
		return
	}
	defer r.untrack(c)
	var refused error
	if r.cfg.ControlRefuse != nil {
		refused = r.cfg.ControlRefuse(c)
	}
	rd := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	for {
		line, tooLong, err := readControlLine(rd)
		if len(line) == 0 && !tooLong && err != nil {
			return // EOF, or the connection closed
		}
		var resp ControlResponse
		var req ControlRequest
		if refused != nil {
			// Answered like any request, so a client reads why.
			resp.Error = refused.Error()
		} else if tooLong {
			// Answered, as every line is; the rest of it was skipped
			// and the connection stays usable.
			resp.Error = fmt.Sprintf("bad request: line longer than %d bytes", maxControlLine)
		} else if uerr := json.Unmarshal(line, &req); uerr != nil {
			resp.Error = fmt.Sprintf("bad request: %v", uerr)
		} else {
			resp = r.control(req)
		}
		if enc.Encode(resp) != nil || err != nil {
			return // the client is gone, or that was its last line
		}
	}
}

// readControlLine reads one request line without its newline. A line
// longer than maxControlLine is read to its end and dropped (tooLong), so
// a client cannot make the relay hold more than that. err is set at the
// end of input; line may then hold a last line without a newline.
func readControlLine(rd *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := rd.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxControlLine+1 { // +1: the newline
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}

// control carries out one request.
func (r *Relay) control(req ControlRequest) ControlResponse {
	fail := func(err error) ControlResponse { return ControlResponse{Error: err.Error()} }
	switch req.Op {
	case "add", "remove":
		f, err := ParseForward(req.Forward)
		if err != nil {
			return fail(err)
		}
		if req.Op == "add" {
			err = r.AddForward(f)
		} else {
			err = r.RemoveForward(f)
		}
		if err != nil {
			return fail(err)
		}
		return ControlResponse{OK: true, Forwards: []string{f.String()}}
	case "list":
		resp := ControlResponse{OK: true, Forwards: []string{}}
		for _, f := range r.Forwards() {
			resp.Forwards = append(resp.Forwards, f.String())
		}
		return resp
	case "stats":
		st := r.Stats()
		return ControlResponse{OK: true, Stats: &st}
	case "info":
		c := &r.cfg
		return ControlResponse{OK: true, Info: &Info{
			Guest4: c.guest4, Gateway4: c.gateway4, DNS4: c.dns4,
			Guest6: c.guest6, Gateway6: c.gateway6, DNS6: c.dns6,
			Outbound4: c.Outbound4, Outbound6: c.Outbound6,
		}}
	}
	return fail(fmt.Errorf("unknown op %q: want add, remove, list, stats or info", req.Op))
}
