package relay

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// ControlRequest is one line a control client sends.
//
//	{"op":"add","forward":"8080:80/tcp"}
//	{"op":"remove","forward":"8080:80/tcp"}
//	{"op":"list"}
//	{"op":"stats"}
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
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxControlLine)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req ControlRequest
		resp := ControlResponse{}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("bad request: %v", err)
		} else {
			resp = r.control(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
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
	}
	return fail(fmt.Errorf("unknown op %q: want add, remove, list or stats", req.Op))
}
