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
# because the machine is shared and single runs vary by 20% or more. The
# three columns take turns within each repetition (veth, vnet, water, then
# vnet, water, veth, ...), all servers running at once, so that a change in
# the machine's load during the run falls on every column alike instead of
# on whichever was measured at that moment.
#
# Needs root, Go and iperf3. Creates namespaces serve-bench-<pid>-{vnet,water,a,b}
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
NS_VNET=serve-bench-$$-vnet
NS_WATER=serve-bench-$$-water
NS_A=serve-bench-$$-a
NS_B=serve-bench-$$-b
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for ns in "$NS_VNET" "$NS_WATER" "$NS_A" "$NS_B"; do ip netns del "$ns" 2>/dev/null || true; done
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

# Where each column's client runs and which address it measures.
declare -A CNS=([veth]=$NS_A [vnet]=$NS_VNET [water]=$NS_WATER)
declare -A CHOST=([veth]=10.97.0.2 [vnet]=10.99.0.2 [water]=10.99.0.2)
COLS=(veth vnet water)

# once COL MODE PORT [ARGS...]: one run of one figure against COL, or "nan"
# if it failed.
once() {
	local col=$1 mode=$2 port=$3
	shift 3
	ip netns exec "${CNS[$col]}" "$tmp/benchtun" "$mode" -addr "${CHOST[$col]}:$port" "$@" 2>"$tmp/err" || {
		echo "  $mode $col failed: $(cat "$tmp/err")" >&2
		echo nan
	}
}

median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

declare -A R # R[figure,column] = value

# figure KEY MODE PORT [ARGS...]: REPS runs of one figure for every column,
# the columns rotating within each repetition; R[KEY,COL] = the median
# ("nan" if any run failed).
figure() {
	local key=$1 i j col v
	shift
	declare -A vals=()
	for ((i = 0; i < REPS; i++)); do
		for ((j = 0; j < ${#COLS[@]}; j++)); do
			col=${COLS[$(((i + j) % ${#COLS[@]}))]}
			v=$(once "$col" "$@")
			vals[$col]+="$v "
		done
	done
	for col in "${COLS[@]}"; do
		case " ${vals[$col]}" in
		*" nan "*) R[$key,$col]=nan ;;
		*) R[$key,$col]=$(printf '%s\n' ${vals[$col]} | median) ;;
		esac
	done
}

# start_serve DRIVER NS DEV MTU: ustack serve over a new TUN device in NS;
# waits until it is ready and leaves its PID in SERVE_PID.
start_serve() {
	local out=$tmp/serve-$1.out
	rm -f "$out" # the wait below must not see the last run's "ready"
	"$tmp/ustack" serve --netns "/run/netns/$2" --tun "$3" --tun-driver "$1" --mtu "$4" >"$out" 2>&1 &
	SERVE_PID=$!
	pids+=($SERVE_PID)
	for _ in $(seq 100); do grep -qs "ustack serve: ready" "$out" && break; sleep 0.1; done
	grep -q "ustack serve: ready" "$out" || { cat "$out" >&2; exit 1; }
}

# stop_serve PID DRIVER: SIGTERM, and it must exit 0.
stop_serve() {
	kill -TERM "$1"
	wait "$1" || { echo "ustack serve ($2) exited $?" >&2; cat "$tmp/serve-$2.out" >&2; exit 1; }
}

# --- the reference, kernel to kernel over a veth pair between two
# namespaces, and ustack serve over a TUN device per driver, each in a
# client namespace of its own
echo "setting up ..." >&2
mkns "$NS_A"
mkns "$NS_B"
mkns "$NS_VNET"
mkns "$NS_WATER"
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
	echo "  MTU $mtu ..." >&2
	ip -n "$NS_A" link set sbench-a mtu $mtu
	ip -n "$NS_B" link set sbench-b mtu $mtu
	start_serve vnet "$NS_VNET" sbench0 $mtu
	vp=$SERVE_PID
	start_serve water "$NS_WATER" sbench1 $mtu
	wp=$SERVE_PID
	figure send$mtu send 9 -t "${T}s"
	figure recv$mtu recv 19 -t "${T}s"
	if [ "$mtu" = 1500 ]; then
		figure rr rr 7 -t "${TS}s"
		figure conn1 conn 13 -t "${TS}s" -c 1
		figure conn8 conn 13 -t "${TS}s" -c 8
	fi
	stop_serve $vp vnet
	stop_serve $wp water
	for dir in send recv; do
		rev=; [ $dir = recv ] && rev=-R
		R[iperf$dir$mtu,veth]=$(ip netns exec "$NS_A" iperf3 -c 10.97.0.2 -t "$TI" -f g $rev 2>/dev/null |
			awk '/receiver/{print $(NF-2)}' || echo nan)
	done
done

# --- the table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="nan" || b=="nan" || b==0) print "-"; else printf "%.2f", a/b }'; }
row() { # row LABEL KEY UNIT
	local v=${R[$2,veth]} n=${R[$2,vnet]:-nan} w=${R[$2,water]:-nan}
	printf "%-40s %9s %9s %6s %9s %6s\n" "$1 ($3)" "$v" "$n" "$(ratio "$n" "$v")" "$w" "$(ratio "$w" "$v")"
}
echo
echo "ustack bench-tun: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), $(go version | cut -d' ' -f3), median of $REPS x ${T}s per bulk figure, columns alternating"
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
