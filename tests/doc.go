// Package tests holds ustack's end-to-end tests: the ustack binary and the
// userspace stack on real TUN devices, with the kernel of a network
// namespace the test creates as the peer (ping, curl, Go clients on kernel
// sockets). They need root and go through internal/roottest: outside CI
// they skip with the reason, with CI=true they fail instead.
//
// bench-tun.sh, beside them, measures the same paths against a kernel veth
// pair; it is a benchmark, not a test.
package tests
