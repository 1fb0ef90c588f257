//go:build linux

package sockapi

import "strings"

// service is one line of an /etc/services-style table: a name, its
// aliases, a port and the protocol ("tcp" or "udp") it is registered for.
type service struct {
	name    string
	aliases []string
	port    int
	proto   string
}

// services is the built-in table of common services that Getaddrinfo and
// Getnameinfo use in place of /etc/services, so that both implementations
// of API give the same answers whatever the host's file says. Entries
// follow Debian 12's /etc/services (netbase), which takes them from the
// IANA registry: only the protocols listed there are listed here (ssh and
// http have no udp entry), and getservbyport(3) returns the first entry
// for a port, so order matters where two names share a port (514/tcp is
// shell, 514/udp syslog).
var services = []service{
	{"echo", nil, 7, "tcp"}, {"echo", nil, 7, "udp"},
	{"discard", []string{"sink", "null"}, 9, "tcp"},
	{"discard", []string{"sink", "null"}, 9, "udp"},
	{"daytime", nil, 13, "tcp"}, {"daytime", nil, 13, "udp"},
	{"chargen", []string{"ttytst", "source"}, 19, "tcp"},
	{"chargen", []string{"ttytst", "source"}, 19, "udp"},
	{"ftp-data", nil, 20, "tcp"}, {"ftp", nil, 21, "tcp"},
	{"ssh", nil, 22, "tcp"}, {"telnet", nil, 23, "tcp"},
	{"smtp", []string{"mail"}, 25, "tcp"},
	{"time", []string{"timserver"}, 37, "tcp"},
	{"time", []string{"timserver"}, 37, "udp"},
	{"whois", []string{"nicname"}, 43, "tcp"},
	{"domain", nil, 53, "tcp"}, {"domain", nil, 53, "udp"},
	{"bootps", nil, 67, "udp"}, {"bootpc", nil, 68, "udp"},
	{"tftp", nil, 69, "udp"}, {"gopher", nil, 70, "tcp"},
	{"finger", nil, 79, "tcp"},
	{"http", []string{"www"}, 80, "tcp"},
	{"kerberos", []string{"kerberos5", "krb5", "kerberos-sec"}, 88, "tcp"},
	{"kerberos", []string{"kerberos5", "krb5", "kerberos-sec"}, 88, "udp"},
	{"pop3", []string{"pop-3"}, 110, "tcp"},
	{"sunrpc", []string{"portmapper"}, 111, "tcp"},
	{"sunrpc", []string{"portmapper"}, 111, "udp"},
	{"nntp", []string{"readnews", "untp"}, 119, "tcp"},
	{"ntp", nil, 123, "udp"},
	{"netbios-ns", nil, 137, "udp"}, {"netbios-dgm", nil, 138, "udp"},
	{"netbios-ssn", nil, 139, "tcp"},
	{"imap2", []string{"imap"}, 143, "tcp"},
	{"snmp", nil, 161, "tcp"}, {"snmp", nil, 161, "udp"},
	{"snmp-trap", []string{"snmptrap"}, 162, "tcp"},
	{"snmp-trap", []string{"snmptrap"}, 162, "udp"},
	{"bgp", nil, 179, "tcp"},
	{"ldap", nil, 389, "tcp"}, {"ldap", nil, 389, "udp"},
	{"https", nil, 443, "tcp"}, {"https", nil, 443, "udp"},
	{"microsoft-ds", nil, 445, "tcp"},
	{"exec", nil, 512, "tcp"}, {"login", nil, 513, "tcp"},
	{"shell", []string{"cmd", "syslog"}, 514, "tcp"},
	{"syslog", nil, 514, "udp"},
	{"printer", []string{"spooler"}, 515, "tcp"},
	{"submission", nil, 587, "tcp"}, {"ipp", nil, 631, "tcp"},
	{"ldaps", nil, 636, "tcp"}, {"ldaps", nil, 636, "udp"},
	{"domain-s", nil, 853, "tcp"}, {"domain-s", nil, 853, "udp"},
	{"rsync", nil, 873, "tcp"}, {"ftps", nil, 990, "tcp"},
	{"telnets", nil, 992, "tcp"}, {"imaps", nil, 993, "tcp"},
	{"pop3s", nil, 995, "tcp"}, {"socks", nil, 1080, "tcp"},
	{"openvpn", nil, 1194, "tcp"}, {"openvpn", nil, 1194, "udp"},
	{"radius", nil, 1812, "tcp"}, {"radius", nil, 1812, "udp"},
	{"nfs", nil, 2049, "tcp"}, {"nfs", nil, 2049, "udp"},
	{"mysql", nil, 3306, "tcp"},
	{"sip", nil, 5060, "tcp"}, {"sip", nil, 5060, "udp"},
	{"mdns", nil, 5353, "udp"},
	{"postgresql", []string{"postgres"}, 5432, "tcp"},
	{"x11", []string{"x11-0"}, 6000, "tcp"},
	{"http-alt", []string{"webcache"}, 8080, "tcp"},
}

// serviceByName is getservbyname(3) over the built-in table: the port of
// name (or an alias) registered for proto. Names are case-sensitive, as
// in glibc's files backend.
func serviceByName(name, proto string) (int, bool) {
	for _, s := range services {
		if s.proto != proto {
			continue
		}
		if s.name == name {
			return s.port, true
		}
		for _, a := range s.aliases {
			if a == name {
				return s.port, true
			}
		}
	}
	return 0, false
}

// serviceByPort is getservbyport(3) over the built-in table.
func serviceByPort(port int, proto string) (string, bool) {
	for _, s := range services {
		if s.port == port && s.proto == proto {
			return s.name, true
		}
	}
	return "", false
}

// isSpace is C's isspace in the "C" locale, which strtoul skips.
func isSpace(c byte) bool { return strings.IndexByte(" \t\n\v\f\r", c) >= 0 }
