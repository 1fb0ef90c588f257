//go:build linux

package sockapi

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limits glibc's resolver applies to resolv.conf (resolv/res_init.c and
// resolv.h): at most 3 nameservers and 6 search domains; ndots capped at
// 15 (RES_MAXNDOTS), timeout at 30s (RES_MAXRETRANS), attempts at 5
// (RES_MAXRETRY).
const (
	maxNameservers = 3
	maxSearch      = 6
	maxNdots       = 15
	maxTimeout     = 30 * time.Second
	maxAttempts    = 5
)

// ReadResolvConf reads the resolv.conf(5) file at path; see ParseResolvConf.
func ReadResolvConf(path string) (ResolverConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolverConfig{}, err
	}
	defer f.Close()
	return ParseResolvConf(f)
}

// ParseResolvConf reads a file in resolv.conf(5) format into a
// ResolverConfig, as glibc reads /etc/resolv.conf: "nameserver" lines
// (port 53, an IPv6 scope allowed, beyond the third ignored), "search" and
// "domain" (the last such line wins; "domain" sets a one-entry search
// list), and "options" ndots:N, timeout:N, attempts:N and rotate, each
// capped as glibc caps it. Comments start with '#' or ';'; unknown lines
// and options are ignored. HostsFile is left empty for the caller.
func ParseResolvConf(r io.Reader) (ResolverConfig, error) {
	var cfg ResolverConfig
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.FieldsFunc(sc.Text(), isCSpace)
		if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
			continue
		}
		switch args := f[1:]; f[0] {
		case "nameserver":
			if len(args) > 0 && len(cfg.Nameservers) < maxNameservers {
				if a, err := netip.ParseAddr(args[0]); err == nil {
					cfg.Nameservers = append(cfg.Nameservers, netip.AddrPortFrom(a, 53))
				}
			}
		case "domain":
			if len(args) > 0 {
				cfg.Search = []string{args[0]}
			}
		case "search":
			cfg.Search = append([]string(nil), args[:min(len(args), maxSearch)]...)
		case "options":
			for _, o := range args {
				applyResolvOption(&cfg, o)
			}
		}
	}
	return cfg, sc.Err()
}

// applyResolvOption applies one word of an "options" line.
func applyResolvOption(cfg *ResolverConfig, o string) {
	if o == "rotate" {
		cfg.Rotate = true
		return
	}
	name, val, ok := strings.Cut(o, ":")
	n, err := strconv.Atoi(val)
	if !ok || err != nil || n < 0 {
		return
	}
	switch name {
	case "ndots":
		cfg.Ndots = min(n, maxNdots)
	case "timeout":
		cfg.Timeout = min(time.Duration(n)*time.Second, maxTimeout)
	case "attempts":
		cfg.Attempts = min(n, maxAttempts)
	}
}
