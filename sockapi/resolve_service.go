//go:build linux

package sockapi

import "golang.org/x/sys/unix"

// svcSpec is a getaddrinfo service argument after parsing.
type svcSpec struct {
	present bool   // a service was given
	named   bool   // look name up in the services table
	name    string // the service as given
	port    int    // the port, when not named
}

// parseService reads service as glibc does: strtoul in base 10, and the
// service is numeric when strtoul consumed all of it. The number is then
// truncated to a C int and a negative one is looked up by name (so "-1"
// is EAI_SERVICE), else truncated to 16 bits by htons ("65536" is port 0).
// A named service with AI_NUMERICSERV is EAI_NONAME.
func parseService(service string, flags int) (svcSpec, error) {
	if service == "" {
		return svcSpec{}, nil
	}
	s := svcSpec{present: true, name: service}
	v, whole := strtoul(service)
	if !whole {
		if flags&AI_NUMERICSERV != 0 {
			return s, eai(EAI_NONAME)
		}
		s.named = true
		return s, nil
	}
	if n := int32(uint32(v)); n < 0 {
		s.named = true
	} else {
		s.port = int(uint16(n))
	}
	return s, nil
}

// typeProto is one row of glibc's gaih_inet_typeproto table.
type typeProto struct {
	socktype, protocol int
	protoAny           bool   // any protocol goes with this socket type
	noService          bool   // a service may not be given
	isDefault          bool   // listed when neither type nor protocol is
	name               string // protocol name in the services table
}

// typeProtos is glibc's table, in its order, which is the order of the
// results when the hints leave the socket type open.
var typeProtos = []typeProto{
	{unix.SOCK_STREAM, unix.IPPROTO_TCP, false, false, true, "tcp"},
	{unix.SOCK_DGRAM, unix.IPPROTO_UDP, false, false, true, "udp"},
	{unix.SOCK_DCCP, unix.IPPROTO_DCCP, false, false, false, "dccp"},
	{unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, false, false, false, "udplite"},
	{unix.SOCK_STREAM, unix.IPPROTO_SCTP, false, false, false, "sctp"},
	{unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP, false, false, false, "sctp"},
	{unix.SOCK_RAW, 0, true, true, true, "raw"},
}

func (t *typeProto) matches(socktype, protocol int) bool {
	return (socktype == 0 || socktype == t.socktype) &&
		(protocol == 0 || t.protoAny || protocol == t.protocol)
}

// protocolFor is the result's protocol: the hint's for a protoAny row.
func (t *typeProto) protocolFor(protocol int) int {
	if t.protoAny {
		return protocol
	}
	return t.protocol
}

// servTuple is one (socket type, protocol, port) a result is made for.
type servTuple struct {
	socktype, protocol, port int
}

// serviceTuples implements the service half of glibc's gaih_inet: pick
// the table row the hints name (EAI_SOCKTYPE for an unknown socket type,
// EAI_SERVICE for an unknown protocol), look the service up for it, or
// for every row when the hints leave type and protocol open.
func serviceTuples(svc svcSpec, socktype, protocol int) ([]servTuple, error) {
	var tp *typeProto
	if socktype != 0 || protocol != 0 {
		for i := range typeProtos {
			if typeProtos[i].matches(socktype, protocol) {
				tp = &typeProtos[i]
				break
			}
		}
		if tp == nil {
			if socktype != 0 {
				return nil, eai(EAI_SOCKTYPE)
			}
			return nil, eai(EAI_SERVICE)
		}
	}
	if svc.present && tp != nil && tp.noService {
		return nil, eai(EAI_SERVICE)
	}
	if svc.named {
		return namedServiceTuples(svc.name, tp, protocol)
	}
	if tp != nil {
		return []servTuple{{tp.socktype, tp.protocolFor(protocol), svc.port}}, nil
	}
	var out []servTuple
	for _, t := range typeProtos {
		if t.isDefault {
			out = append(out, servTuple{t.socktype, t.protocol, svc.port})
		}
	}
	return out, nil
}

// namedServiceTuples looks name up for the row tp, or for every row that
// takes services when tp is nil; EAI_SERVICE when it is found for none.
func namedServiceTuples(name string, tp *typeProto, protocol int) ([]servTuple, error) {
	if tp != nil {
		port, ok := serviceByName(name, tp.name)
		if !ok {
			return nil, eai(EAI_SERVICE)
		}
		return []servTuple{{tp.socktype, tp.protocolFor(protocol), port}}, nil
	}
	var out []servTuple
	for _, t := range typeProtos {
		if t.noService {
			continue
		}
		if port, ok := serviceByName(name, t.name); ok {
			out = append(out, servTuple{t.socktype, t.protocol, port})
		}
	}
	if len(out) == 0 {
		return nil, eai(EAI_SERVICE)
	}
	return out, nil
}
