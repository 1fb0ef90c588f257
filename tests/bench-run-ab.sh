#!/usr/bin/env bash
# Interleaved A/B of `ustack run` binaries: iperf3 bulk TCP through each
# in turn, so that the machine's drift hits every binary alike.
#
# Usage (as root): tests/bench-run-ab.sh ROUNDS "IPERF3-ARGS" BINARY...
#   e.g. tests/bench-run-ab.sh 4 "-t 3 -R" ./ustack-old ./ustack-new
#
# An iperf3 server listens on 127.0.0.1:25211; each round runs, for each
# BINARY, `BINARY run --allow-host-loopback -- iperf3 -c 10.0.2.2 -p 25211
# -f g -i 0.5 IPERF3-ARGS` and prints the receiver's Gbit/s, the CPU
# (user+sys, getrusage of BINARY and its children: ustack and the iperf3
# client) per GB moved, and the 0.5 s intervals (a 0.00 is a stall).
# Take the lock first when others share the machine:
#   flock /work/wt/bench.lock tests/bench-run-ab.sh ...
set -euo pipefail
[ $# -ge 3 ] || { sed -n 4,5p "$0" >&2; exit 2; }
rounds=$1 args=$2
shift 2
for c in iperf3 awk; do
	command -v "$c" >/dev/null || { echo "bench-run-ab.sh: $c is not installed" >&2; exit 1; }
done
iperf3 -s -B 127.0.0.1 -p 25211 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
sleep 0.3
for _ in $(seq "$rounds"); do
	for b in "$@"; do
		TIMEFORMAT='%U %S'
		out=$( { time "$b" run --allow-host-loopback -- \
			iperf3 -c 10.0.2.2 -p 25211 -f g -i 0.5 $args; } 2>&1 ) || true
		echo "$out" | awk -v bin="$b" '
			# "[  5] ..." splits into one field more than "[SUM] ..." (-P N).
			/^\[ *[0-9]+\] +[0-9.]+-[0-9.]+ +sec/ && !/sender|receiver/ { iv = iv " " $7 }
			/^\[SUM\] +[0-9.]+-[0-9.]+ +sec/ && !/sender|receiver/ { sum = sum " " $6 }
			/receiver/ { o = ($1 == "[SUM]") ? -1 : 0; gbit = $(7+o); bytes = $(5+o); unit = $(6+o) }
			END {
				if (sum != "") iv = sum
				# the last line is bash time: user sys
				cpu = $1 + $2
				gb = (unit == "GBytes") ? bytes : (unit == "MBytes" ? bytes / 1024 : 0)
				if (gb > 0) printf "%-24s %6s Gbit/s  %6.3f CPU-s/GB  |%s\n", bin, gbit, cpu / gb, iv
				else printf "%-24s failed\n", bin
			}'
	done
done
