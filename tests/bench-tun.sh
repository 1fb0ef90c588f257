#!/usr/bin/env bash
# bench-tun.sh measures ustack on a TUN device against a kernel veth pair,
# side by side in one run, and prints a table with each figure's ratio to
# veth:
#   - bulk TCP, kernel -> ustack (client sends to discard) and
#     ustack -> kernel (client reads chargen), Gbit/s, for the vnet and
#     water drivers at MTU 1500 and 65520;
#   - 1-byte request/response round trip over TCP (echo), µs;
#   - connect + accept + close rate (daytime: connect, read to EOF, close),
#     connections/s, with 1 and 8 concurrent clients.
# The kernel-side client is the same Go program (tests/benchtun) in every
# case; the server is `ustack serve` (gVisor) over the TUN, and the same
# services on kernel sockets in a second namespace over veth. iperf3 over
# the veth pair is printed as a check that the Go client is not the limit.
#
# Each figure is the median of BENCH_REPS runs (default 3) of BENCH_TIME
# seconds (default 2; the round-trip and connection figures take 2/3 of it),
# because the machine is shared and single runs vary by 20% or more.
#
# Needs root, Go and iperf3. Creates namespaces serve-bench-<pid>-{tun,a,b}
# and removes them on exit.
#
# Usage: sudo tests/bench-tun.sh
set -euo pipefail
cd "$(dirname "$0")/.."

T=${BENCH_TIME:-2}
REPS=${BENCH_REPS:-3}
TS=$(awk -v t="$T" 'BEGIN{printf "%.1f", t*2/3}')
TI=$(awk -v t="$T" 'BEGIN{i=int(t); if (i<t) i++; if (i<1) i=1; print i}') # iperf3 -t takes whole seconds
tmp=$(mktemp -d)
NS_TUN=serve-bench-$$-tun
NS_A=serve-bench-$$-a
NS_B=serve-bench-$$-b
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for ns in "$NS_TUN" "$NS_A" "$NS_B"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building ustack and benchtun ..." >&2
go build -o "$tmp/ustack" ./cmd/ustack
go build -o "$tmp/benchtun" ./tests/benchtun

# A client namespace gets the whole port range and TIME_WAIT reuse so the
# connection-rate loops do not run out of ports.
mkns() {
	ip netns add "$1"
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
}

# measure NS MODE ADDR [ARGS...]: the median of REPS runs of one figure, or
# "nan" if a run failed.
measure() {
	local ns=$1 mode=$2 addr=$3 i v vs=()
	shift 3
	for ((i = 0; i < REPS; i++)); do
		v=$(ip netns exec "$ns" "$tmp/benchtun" "$mode" -addr "$addr" "$@" 2>"$tmp/err") || {
			echo "  $mode $addr failed: $(cat "$tmp/err")" >&2
			echo nan
			return
		}
		vs+=("$v")
	done
	printf '%s\n' "${vs[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}

declare -A R # R[figure,column] = value

# run_set NS COLUMN HOST MTU: the bulk figures, and at MTU 1500 the latency
# and connection-rate figures, against HOST from NS.
run_set() {
	local ns=$1 col=$2 host=$3 mtu=$4
	echo "  $col MTU $mtu ..." >&2
	R[send$mtu,$col]=$(measure "$ns" send "$host:9" -t "${T}s")
	R[recv$mtu,$col]=$(measure "$ns" recv "$host:19" -t "${T}s")
	if [ "$mtu" = 1500 ]; then
		R[rr,$col]=$(measure "$ns" rr "$host:7" -t "${TS}s")
		R[conn1,$col]=$(measure "$ns" conn "$host:13" -t "${TS}s" -c 1)
		R[conn8,$col]=$(measure "$ns" conn "$host:13" -t "${TS}s" -c 8)
	fi
}

# --- reference: kernel to kernel over a veth pair between two namespaces
echo "veth reference ..." >&2
mkns "$NS_A"
mkns "$NS_B"
ip link add sbench-a netns "$NS_A" type veth peer name sbench-b netns "$NS_B"
ip -n "$NS_A" addr add 10.97.0.1/24 dev sbench-a
ip -n "$NS_B" addr add 10.97.0.2/24 dev sbench-b
ip -n "$NS_A" link set sbench-a up
ip -n "$NS_B" link set sbench-b up
ip netns exec "$NS_B" "$tmp/benchtun" server -addr 10.97.0.2 >"$tmp/ref.out" 2>&1 &
pids+=($!)
ip netns exec "$NS_B" iperf3 -s -B 10.97.0.2 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -qs ready "$tmp/ref.out" && break; sleep 0.1; done
for mtu in 1500 65520; do
	ip -n "$NS_A" link set sbench-a mtu $mtu
	ip -n "$NS_B" link set sbench-b mtu $mtu
	run_set "$NS_A" veth 10.97.0.2 $mtu
	for dir in send recv; do
		rev=; [ $dir = recv ] && rev=-R
		R[iperf$dir$mtu,veth]=$(ip netns exec "$NS_A" iperf3 -c 10.97.0.2 -t "$TI" -f g $rev 2>/dev/null |
			awk '/receiver/{print $(NF-2)}' || echo nan)
	done
done

# --- ustack serve over the TUN device, per driver and MTU
mkns "$NS_TUN"
for drv in vnet water; do
	for mtu in 1500 65520; do
		rm -f "$tmp/serve.out" # the wait below must not see the last run's "ready"
		"$tmp/ustack" serve --netns "/run/netns/$NS_TUN" --tun sbench0 --tun-driver $drv --mtu $mtu >"$tmp/serve.out" 2>&1 &
		sp=$!
		pids+=($sp)
		for _ in $(seq 100); do grep -qs "ustack serve: ready" "$tmp/serve.out" && break; sleep 0.1; done
		grep -q "ustack serve: ready" "$tmp/serve.out" || { cat "$tmp/serve.out" >&2; exit 1; }
		run_set "$NS_TUN" $drv 10.99.0.2 $mtu
		kill -TERM $sp
		wait $sp || { echo "ustack serve exited $?" >&2; cat "$tmp/serve.out" >&2; exit 1; }
	done
done

# --- the table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="nan" || b=="nan" || b==0) print "-"; else printf "%.2f", a/b }'; }
row() { # row LABEL KEY UNIT
	local v=${R[$2,veth]} n=${R[$2,vnet]:-nan} w=${R[$2,water]:-nan}
	printf "%-40s %9s %9s %6s %9s %6s\n" "$1 ($3)" "$v" "$n" "$(ratio "$n" "$v")" "$w" "$(ratio "$w" "$v")"
}
echo
echo "ustack bench-tun: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), $(go version | cut -d' ' -f3), median of $REPS x ${T}s per bulk figure"
printf "%-40s %9s %9s %6s %9s %6s\n" "figure" "veth" "vnet" "ratio" "water" "ratio"
for mtu in 1500 65520; do
	row "bulk kernel->ustack, MTU $mtu" send$mtu "Gbit/s"
	row "bulk ustack->kernel, MTU $mtu" recv$mtu "Gbit/s"
done
row "1-byte round trip, MTU 1500" rr "us"
row "connect+accept+close, 1 client" conn1 "conn/s"
row "connect+accept+close, 8 clients" conn8 "conn/s"
echo
for mtu in 1500 65520; do
	echo "iperf3 over veth, MTU $mtu: A->B ${R[iperfsend$mtu,veth]} Gbit/s, B->A ${R[iperfrecv$mtu,veth]} Gbit/s"
done
echo "(veth columns: the same Go client against kernel sockets; ratio = ustack / veth, for the round trip lower is better)"
