package relay

import (
	"context"
	"errors"
	"net"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// nsConn is a port forward's connection into the namespace with the
// endpoint behind it, which gonet.TCPConn does not give out: closeReset
// needs it to answer a client's reset with a reset.
type nsConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
	wq *waiter.Queue // ep's; nil where only closeReset uses the nsConn
}

// dialGuest connects from local to remote on s as gonet.DialTCPWithBind
// does, keeping the endpoint, and closing it when the bind fails too.
func dialGuest(ctx context.Context, s *gstack.Stack, local, remote tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (*nsConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if terr := ep.Bind(local); terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "bind", Net: "tcp", Err: errors.New(terr.String())}
	}
	terr = ep.Connect(remote)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "connect", Net: "tcp", Addr: &net.TCPAddr{IP: remote.Addr.AsSlice(), Port: int(remote.Port)}, Err: errors.New(terr.String())}
	}
	return &nsConn{TCPConn: gonet.NewTCPConn(&wq, ep), ep: ep, wq: &wq}, nil
}

// gonetReset reports whether err, from a gonet.TCPConn, says the
// namespace reset the connection. gonet flattens gVisor's errors to their
// text (errors.New(err.String())), so the text is all there is.
func gonetReset(err error) bool {
	return strings.HasSuffix(err.Error(), (&tcpip.ErrConnectionReset{}).String())
}

// dialRefused reports whether err, from dialGuest, says the namespace
// answered the SYN with a reset: nothing listens there. Like gonetReset,
// it has only gVisor's text to go by.
func dialRefused(err error) bool {
	return strings.HasSuffix(err.Error(), (&tcpip.ErrConnectionRefused{}).String())
}

// dialGuestUDP is gonet.DialUDP keeping the endpoint's queue, for the wait
// that lets an idle flow hold no buffer (readableWaiter).
func dialGuestUDP(s *gstack.Stack, local, remote tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (*gonet.UDPConn, readableWaiter, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, nil, errors.New(terr.String())
	}
	if terr := ep.Bind(local); terr != nil {
		ep.Close()
		return nil, nil, &net.OpError{Op: "bind", Net: "udp", Err: errors.New(terr.String())}
	}
	if terr := ep.Connect(remote); terr != nil {
		ep.Close()
		return nil, nil, &net.OpError{Op: "connect", Net: "udp", Err: errors.New(terr.String())}
	}
	return gonet.NewUDPConn(&wq, ep), endpointReadable(&wq, ep), nil
}
