#!/usr/bin/env bash
# serve-demo.sh shows `ustack serve` end to end with nothing but Go, bash
# and iproute2: it builds ustack, creates a network namespace, lets ustack
# create a TUN device in it and answer from its userspace stack, talks to
# each service from the namespace's kernel, then stops ustack with SIGTERM
# and shows the device gone. Uses ping and curl where installed, bash's
# /dev/tcp otherwise. Run as root; removes everything it made on exit.
#
# Usage: sudo tests/serve-demo.sh [--tun-driver vnet|water] [other serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
ns=serve-demo-$$
serve_pid=
cleanup() {
	[ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/ustack" ./cmd/ustack
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

"$tmp/ustack" serve --netns "/run/netns/$ns" --tun ustack0 "$@" >"$tmp/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -qs "ustack serve: ready" "$tmp/serve.out" && break; sleep 0.1; done
cat "$tmp/serve.out"

step() { printf '\n$ %s\n' "$*"; }
step ip -n "$ns" -br addr show ustack0
ip -n "$ns" -br addr show ustack0
if command -v ping >/dev/null; then
	step ping -c 2 10.99.0.2 '&&' ping -c 2 fd00:99::2
	in_ns ping -c 2 -i 0.2 10.99.0.2 | tail -2
	in_ns ping -c 2 -i 0.2 fd00:99::2 | tail -2
fi
step "daytime: exec 3<>/dev/tcp/10.99.0.2/13; cat <&3"
in_ns bash -c 'exec 3<>/dev/tcp/10.99.0.2/13; cat <&3'
step "echo over IPv6: exec 3<>/dev/tcp/fd00:99::2/7; echo hello >&3; head -1 <&3"
in_ns bash -c 'exec 3<>/dev/tcp/fd00:99::2/7; echo "hello from the kernel" >&3; head -1 <&3'
step "chargen: first two lines"
in_ns bash -c 'exec 3<>/dev/tcp/10.99.0.2/19; head -2 <&3' || true
step "HTTP status page: GET http://10.99.0.2/"
if command -v curl >/dev/null; then
	in_ns curl -sS http://10.99.0.2/
else
	in_ns bash -c 'exec 3<>/dev/tcp/10.99.0.2/80; printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3'
fi

step kill -TERM "$serve_pid"
kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=
tail -1 "$tmp/serve.out"
echo "ustack serve exited $status"
step ip -n "$ns" -br link
ip -n "$ns" -br link
