#!/usr/bin/env bash
# Head-to-head benchmark of `ustack run` against pasta, slirp4netns and a
# kernel veth pair, all measured in one run on this machine.
#
# Usage (as root): tests/bench-run.sh [SECONDS]     (default 5 per figure)
#   BENCH_ROUNDS=N measures every stack N times, in turns (all stacks, then
#   all again), and prints the median of each cell: steadier ratios on a
#   busy machine than one pass.
#
# For each way of networking a namespace it runs, from inside the
# namespace against servers on the host:
#   up     iperf3 bulk TCP, namespace -> host (Gbit/s, receiver side)
#   down   iperf3 -R, host -> namespace (Gbit/s)
#   conn/s TCP connections per second (tests/benchtun conn -noread, 4 workers)
#   rr     1-byte request/response round trip, mean and p99 (µs)
# and prints a table with ratios to pasta (default MTU) and to veth.
#
# How each reaches the host:
#   ustack run     --allow-host-loopback, host loopback via 10.0.2.2
#   pasta          --config-net --runas 0, host loopback via the default
#                  gateway address (so its tap path is measured, not its
#                  loopback splice); at its default MTU and at --mtu 1500
#   slirp4netns    --configure --mtu=65520, host loopback via 10.0.2.2
#   veth           kernel veth pair, 10.200.0.2 -> 10.200.0.1 (reference)
# Needs iperf3, pasta (package passt), slirp4netns, iproute2, util-linux.
set -euo pipefail
cd "$(dirname "$0")/.."

T=${1:-5}
ROUNDS=${BENCH_ROUNDS:-1} # rounds over all stacks, alternating; each cell is the median
[ "$(id -u)" = 0 ] || { echo "bench-run.sh: run as root" >&2; exit 1; }
for c in iperf3 pasta slirp4netns ip unshare nsenter; do
	command -v "$c" >/dev/null || { echo "bench-run.sh: $c is not installed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/run-bench.XXXXXX)
ns=run-bench-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del run-bv0 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/ustack" ./cmd/ustack
go build -o "$work/benchtun" ./tests/benchtun
export PATH="$work:$PATH"

# Servers: on host loopback for the user-mode stacks, on the veth's host
# end for the kernel reference.
ip netns add "$ns"
ip link add run-bv0 type veth peer name run-bv1 netns "$ns"
ip addr add 10.200.0.1/24 dev run-bv0
ip link set run-bv0 up
ip -n "$ns" addr add 10.200.0.2/24 dev run-bv1
ip -n "$ns" link set run-bv1 up
ip -n "$ns" link set lo up
iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 & pids+=($!)
iperf3 -s -B 10.200.0.1 -p 5202 >/dev/null 2>&1 & pids+=($!)
benchtun echo -addr 127.0.0.1:5301 >/dev/null & pids+=($!)
benchtun echo -addr 10.200.0.1:5302 >/dev/null & pids+=($!)
sleep 0.5

# client prints "up down conn/s rr-mean rr-p99" for the host address $H
# (or the default gateway when $H is "gw") and ports $P (iperf3) and $Q.
client='
[ "$H" = gw ] && H=$(ip route show default | awk "{print \$3; exit}")
up=$(iperf3 -c $H -p $P -t '"$T"' -f g | awk "/receiver/{print \$(NF-2)}")
down=$(iperf3 -c $H -p $P -t '"$T"' -f g -R | awk "/receiver/{print \$(NF-2)}")
conn=$(benchtun conn -addr $H:$Q -t '"$T"'s -c 4 -noread)
rr=$(benchtun rr -addr $H:$Q -t '"$T"'s -p99)
echo $up $down $conn $rr'

results=()
measure() { # name, then the command that runs "sh -c CLIENT" inside
	local name=$1; shift
	echo "measuring $name: $*" >&2
	local out
	if out=$("$@" sh -c "$client" 2>>"$work/log" | tail -1) && [ -n "$out" ]; then
		results+=("$name $out")
	else
		results+=("$name - - - - -")
		echo "  $name failed; see output below" >&2
		tail -5 "$work/log" >&2
	fi
}

slirp() { # runs "$@" in a fresh namespace networked by slirp4netns
	unshare --net sleep 600 & local holder=$!
	sleep 0.2
	slirp4netns --configure --mtu=65520 "$holder" tap0 >>"$work/log" 2>&1 & local sl=$!
	sleep 1
	nsenter -t "$holder" -n env H=10.0.2.2 P=5201 Q=5301 "$@"
	local st=$?
	kill "$sl" "$holder" 2>/dev/null; wait "$sl" "$holder" 2>/dev/null
	return $st
}

for round in $(seq "$ROUNDS"); do
	[ "$ROUNDS" = 1 ] || echo "round $round of $ROUNDS" >&2
	measure "ustack-run" env H=10.0.2.2 P=5201 Q=5301 ustack run --allow-host-loopback --
	measure "pasta" env H=gw P=5201 Q=5301 pasta --config-net --runas 0 -q --
	measure "pasta-mtu1500" env H=gw P=5201 Q=5301 pasta --config-net --runas 0 -q --mtu 1500 --
	measure "slirp4netns" slirp
	measure "veth" env H=10.200.0.1 P=5202 Q=5302 ip netns exec "$ns"
done

echo
echo "bench-run.sh $T s per figure, $ROUNDS round(s) (median per cell), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r)"
printf '%s\n' "${results[@]}" | awk '
	# Each line is one round of one stack; a cell is the median of the
	# rounds that gave a figure.
	function r(a, b) { return (a=="-" || b=="-" || b==0) ? "-" : sprintf("%.2f", a/b) }
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1]+0 > a[j]+0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		if (n == 0) return "-"
		t = (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		return (t >= 100) ? sprintf("%.0f", t) : sprintf("%.3g", t)
	}
	{ if (!($1 in idx)) { idx[$1] = ++N; name[N] = $1 }
	  k = idx[$1]
	  for (c = 2; c <= 6; c++) if ($c != "-") cell[k, c] = cell[k, c] " " $c }
	END {

		for (k = 1; k <= N; k++) {
			up[k] = median(cell[k, 2]); down[k] = median(cell[k, 3]); conn[k] = median(cell[k, 4])
			rrm[k] = median(cell[k, 5]); rrp[k] = median(cell[k, 6])
			if (name[k] == "pasta") p = k; if (name[k] == "veth") v = k
		}
		printf "%-14s %8s %8s %8s %8s %8s | %7s %7s %7s | %7s %7s %7s\n", "stack", "up", "down", "conn/s", "rr-mean", "rr-p99",
			"up/pas", "dn/pas", "cps/pas", "up/veth", "dn/veth", "cps/vth"
		printf "%-14s %8s %8s %8s %8s %8s |\n", "", "Gbit/s", "Gbit/s", "", "us", "us"
		for (i=1; i<=N; i++)
			printf "%-14s %8s %8s %8s %8s %8s | %7s %7s %7s | %7s %7s %7s\n", name[i], up[i], down[i], conn[i], rrm[i], rrp[i],
				r(up[i], up[p]), r(down[i], down[p]), r(conn[i], conn[p]), r(up[i], up[v]), r(down[i], down[v]), r(conn[i], conn[v])
	}'
