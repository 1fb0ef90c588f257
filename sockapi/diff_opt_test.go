//go:build linux

package sockapi

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Scenarios for setsockopt(2)/getsockopt(2): defaults, round trips, the
// values Linux rejects, and the options and levels it does not know.

// optCase reads an option's default, then sets each value in order and
// reads it back.
type optCase struct {
	name        string
	domain, typ int
	level, opt  int
	sets        []int
}

func optionScenarios() []scenario {
	tcp4, tcp6 := unix.AF_INET, unix.AF_INET6
	cases := []optCase{
		{"so-reuseaddr", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_REUSEADDR, []int{1, 0, 5}},
		{"so-reuseport", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_REUSEPORT, []int{1, 0}},
		{"so-keepalive", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_KEEPALIVE, []int{1, 0}},
		{"so-keepalive-udp", tcp4, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_KEEPALIVE, []int{1}},
		{"so-broadcast-udp", tcp4, unix.SOCK_DGRAM, unix.SOL_SOCKET, unix.SO_BROADCAST, []int{1, 0}},
		{"so-broadcast-tcp", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_BROADCAST, []int{1}},
		{"so-type-readonly", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_TYPE, []int{2}},
		{"so-domain-readonly", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_DOMAIN, []int{10}},
		{"so-protocol-readonly", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_PROTOCOL, []int{17}},
		{"so-acceptconn-readonly", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ACCEPTCONN, []int{1}},
		{"so-error-readonly", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_ERROR, []int{1}},
		{"tcp-nodelay", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, []int{1, 0, 7}},
		{"tcp-keepidle", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, []int{60, 0, -1, 32767, 32768}},
		{"tcp-keepintvl", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, []int{10, 0, 32767, 32768}},
		{"tcp-keepcnt", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, []int{3, 0, 127, 128}},
		{"tcp-maxseg-unconnected", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_MAXSEG, []int{1000, 10, 65536}},
		{"tcp-user-timeout", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, []int{5000, 0, -1}},
		{"tcp-nodelay-on-udp", tcp4, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.TCP_NODELAY, []int{1}},
		{"ip-ttl-tcp", tcp4, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TTL, []int{10, 255, 256, 0, -1, -2}},
		{"ip-ttl-udp", tcp4, unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_TTL, []int{1, -1}},
		{"ip-tos-tcp", tcp4, unix.SOCK_STREAM, unix.IPPROTO_IP, unix.IP_TOS, []int{0x10, 0xff, 0}},
		{"ip-tos-udp", tcp4, unix.SOCK_DGRAM, unix.IPPROTO_IP, unix.IP_TOS, []int{0x10, 0xff}},
		{"ipv6-unicast-hops", tcp6, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, []int{10, 255, 256, -1, -2}},
		{"ipv6-unicast-hops-udp", tcp6, unix.SOCK_DGRAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, []int{1, 0}},
		{"ipv6-v6only", tcp6, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, []int{1, 0}},
		{"ipv6-v6only-on-v4", tcp4, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, []int{1}},
		{"ipv6-hops-on-v4", tcp4, unix.SOCK_STREAM, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, []int{5}},
		{"unknown-sol-socket-option", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, 9999, []int{1}},
		{"unknown-tcp-option", tcp4, unix.SOCK_STREAM, unix.IPPROTO_TCP, 9999, []int{1}},
		{"unknown-ip-option", tcp4, unix.SOCK_STREAM, unix.IPPROTO_IP, 9999, []int{1}},
		{"unknown-level", tcp4, unix.SOCK_STREAM, 9999, 1, []int{1}},
		{"unknown-level-udp", tcp4, unix.SOCK_DGRAM, 9999, 1, []int{1}},
		{"so-rcvlowat", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVLOWAT, []int{10, 0, -1, 1}},
		{"so-rcvtimeo-as-int", tcp4, unix.SOCK_STREAM, unix.SOL_SOCKET, unix.SO_RCVTIMEO, []int{1}},
	}
	var out []scenario
	for _, c := range cases {
		c := c
		out = append(out, sc("opt/"+c.name, func(r *rec) {
			fd := r.Socket(c.domain, c.typ, 0)
			r.GetInt(fd, c.level, c.opt)
			for _, v := range c.sets {
				r.SetInt(fd, c.level, c.opt, v)
				r.GetInt(fd, c.level, c.opt)
			}
		}))
	}
	for _, b := range []struct {
		name string
		opt  int
		min  int // Linux's floor: SOCK_MIN_RCVBUF / SOCK_MIN_SNDBUF
	}{{"so-rcvbuf", unix.SO_RCVBUF, 2048}, {"so-sndbuf", unix.SO_SNDBUF, 4096}} {
		b := b
		out = append(out, sc("opt/"+b.name+"-doubled", func(r *rec) {
			// Linux stores twice the value asked for, for bookkeeping
			// overhead (socket(7)), and never less than its floor. The
			// default depends on the host's sysctls, so only its
			// sanity is compared.
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.GetIntBy(fd, unix.SOL_SOCKET, b.opt, "default positive", func(v int) bool { return v > 0 })
			r.SetInt(fd, unix.SOL_SOCKET, b.opt, 32768)
			r.GetInt(fd, unix.SOL_SOCKET, b.opt)
			r.SetInt(fd, unix.SOL_SOCKET, b.opt, 1)
			r.GetIntBy(fd, unix.SOL_SOCKET, b.opt, fmt.Sprintf("floor >= %d", b.min), func(v int) bool { return v >= b.min && v < 8192 })
			r.SetInt(fd, unix.SOL_SOCKET, b.opt, -1)
			// A negative size is taken as unsigned, so huge, and
			// clamped to the host's maximum.
			r.GetIntBy(fd, unix.SOL_SOCKET, b.opt, "negative clamps to the maximum", func(v int) bool { return v > 65536 })
		}))
	}
	out = append(out,
		sc("opt/so-linger-roundtrip", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_LINGER)
			r.SetLinger(fd, 1, 5)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_LINGER)
			r.SetLinger(fd, 0, 5)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_LINGER)
		}),
		sc("opt/so-linger-as-int", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(fd, unix.SOL_SOCKET, unix.SO_LINGER, 1)
		}),
		sc("opt/timeval-roundtrips", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetTimeval(fd, unix.SO_RCVTIMEO, 1500*time.Millisecond)
			r.SetTimeval(fd, unix.SO_SNDTIMEO, 2*time.Second)
			r.SetTimeval(fd, unix.SO_RCVTIMEO, 0)
		}),
		sc("opt/timeval-bad-usec", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetTimevalRaw(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: 1, Usec: 1000000})
			r.SetTimevalRaw(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, unix.Timeval{Sec: 0, Usec: -1})
		}),
		sc("opt/timeval-negative-sec", func(r *rec) {
			// A negative timeout is stored as zero jiffies
			// (sock_set_timeout), so a blocking read gives up at once.
			_, c, _ := r.pair(v4)
			r.SetTimevalRaw(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: -1})
			r.Read(c, 1)
		}),
		sc("opt/timeval-on-wrong-level", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetTimevalRaw(fd, 9999, unix.SO_RCVTIMEO, unix.Timeval{Sec: 1})
		}),
		sc("opt/tcp-maxseg-connected", func(r *rec) {
			// Once connected the MSS comes from the route's MTU, not the
			// 536-byte default (Linux on lo says 32741); the exact
			// figure depends on the loopback MTU and TCP options.
			_, c, s := r.pair(v4)
			r.GetIntBy(c, unix.IPPROTO_TCP, unix.TCP_MAXSEG, "within (536, 65536)", func(v int) bool { return v > 536 && v < 65536 })
			r.GetIntBy(s, unix.IPPROTO_TCP, unix.TCP_MAXSEG, "within (536, 65536)", func(v int) bool { return v > 536 && v < 65536 })
		}),
		sc("opt/ip-ttl-on-v6-socket", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 9)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
		}),
		sc("opt/v6only-after-bind", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(fd, v6.any(0))
			r.SetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		}),
		sc("opt/keepalive-settings-on-connected", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.SetInt(c, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
			r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 1)
			r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 1)
			r.SetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 1)
			r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
			r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
			r.GetInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		}),
	)
	return out
}
