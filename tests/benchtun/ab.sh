#!/usr/bin/env bash
# ab.sh compares two `ustack serve` binaries over the vnet TUN, alternating
# A B A B ... in one namespace, and prints for each figure and binary the
# median of the rounds: the benchtun figure and the serve process's CPU per
# operation (sum of its threads' run time from /proc/PID/task/*/schedstat,
# read around each measurement), and the serve process's peak RSS over
# all its figures (VmHWM, MB: serve restarts for every side and round).
#
#   sudo flock /work/wt/bench.lock tests/benchtun/ab.sh OLD NEW
#
# OLD and NEW are ustack binaries (go build -o ... ./cmd/ustack). Env:
# AB_ROUNDS (default 5), AB_TIME (seconds per figure, default 1.5),
# AB_FIGS (default "rr conn1 conn8 send recv"), AB_MTU (default 1500),
# AB_DRIVER (default vnet), AB_ARGS (extra serve flags for both),
# AB_ENV_A / AB_ENV_B (environment assignments for one side, e.g.
# "GOMAXPROCS=1"), AB_ARGS_A / AB_ARGS_B (serve flags for one side, e.g.
# "--tun-driver water"; a later flag overrides AB_DRIVER's).
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$(realpath "$1") B=$(realpath "$2")
ROUNDS=${AB_ROUNDS:-5} T=${AB_TIME:-1.5} FIGS=${AB_FIGS:-"rr conn1 conn8 send recv"}
MTU=${AB_MTU:-1500} DRV=${AB_DRIVER:-vnet}
tmp=$(mktemp -d)
NS=tunperf-ab-$$
sp=
cleanup() {
	if [ -n "$sp" ]; then kill -TERM "$sp" 2>/dev/null; wait "$sp" 2>/dev/null || true; fi
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/benchtun" ./tests/benchtun
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1

cpu_ns() { # all threads' run time of PID, ns
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END{printf "%.0f\n", s}'
}

# fig NAME: runs one benchtun figure, prints "value ops"
fig() {
	local v
	case $1 in
	rr) v=$(ip netns exec "$NS" "$tmp/benchtun" rr -addr 10.99.0.2:7 -t "${T}s"); echo "$v $(awk -v v="$v" -v t="$T" 'BEGIN{print t*1e6/v}')" ;;
	conn1 | conn8) v=$(ip netns exec "$NS" "$tmp/benchtun" conn -addr 10.99.0.2:13 -t "${T}s" -c "${1#conn}"); echo "$v $(awk -v v="$v" -v t="$T" 'BEGIN{print v*t}')" ;;
	send) v=$(ip netns exec "$NS" "$tmp/benchtun" send -addr 10.99.0.2:9 -t "${T}s"); echo "$v $(awk -v v="$v" -v t="$T" 'BEGIN{print v*t/8}')" ;;   # ops = GB
	recv) v=$(ip netns exec "$NS" "$tmp/benchtun" recv -addr 10.99.0.2:19 -t "${T}s"); echo "$v $(awk -v v="$v" -v t="$T" 'BEGIN{print v*t/8}')" ;;
	esac
}

for ((r = 0; r < ROUNDS; r++)); do
	for side in A B; do
		bin=$A envs=${AB_ENV_A:-} args=${AB_ARGS_A:-}
		[ $side = B ] && bin=$B envs=${AB_ENV_B:-} args=${AB_ARGS_B:-}
		rm -f "$tmp/serve.out" # so the wait below never sees the last run's "ready"
		env $envs "$bin" serve --netns "/run/netns/$NS" --tun tpab0 --tun-driver "$DRV" --mtu "$MTU" ${AB_ARGS:-} $args >"$tmp/serve.out" 2>&1 &
		sp=$!
		for _ in $(seq 200); do grep -qs "ready" "$tmp/serve.out" && break; sleep 0.05; done
		grep -qs "ready" "$tmp/serve.out" || { echo "serve ($side) did not start:" >&2; cat "$tmp/serve.out" >&2; exit 1; }
		for f in $FIGS; do
			c0=$(cpu_ns $sp)
			read -r v ops < <(fig "$f")
			c1=$(cpu_ns $sp)
			echo "$f $side $v $(awk -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.0f", b-a}')" -v o="$ops" 'BEGIN{printf "%.2f", c/1e3/o}')" >>"$tmp/res"
		done
		echo "rss $side $(awk '/^VmHWM:/{printf "%.0f", $2/1024}' /proc/$sp/status) 0" >>"$tmp/res"
		kill -TERM $sp
		wait $sp || true
		sp=
	done
done
med() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
printf "%-6s %12s %12s %6s   %14s %14s %6s\n" figure "A value" "B value" "B/A" "A cpu/op" "B cpu/op" "B/A"
for f in $FIGS rss; do
	va=$(awk -v f=$f '$1==f && $2=="A"{print $3}' "$tmp/res" | med)
	vb=$(awk -v f=$f '$1==f && $2=="B"{print $3}' "$tmp/res" | med)
	ca=$(awk -v f=$f '$1==f && $2=="A"{print $4}' "$tmp/res" | med)
	cb=$(awk -v f=$f '$1==f && $2=="B"{print $4}' "$tmp/res" | med)
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a == 0) print "-"; else printf "%.2f", b/a}'; }
	printf "%-6s %12s %12s %6s   %14s %14s %6s\n" "$f" "$va" "$vb" "$(ratio "$va" "$vb")" "$ca" "$cb" "$(ratio "$ca" "$cb")"
done
echo "(units: rr µs, conn conn/s, send/recv Gbit/s, rss MB of serve's peak over its figures; cpu/op: µs of serve CPU per round trip, per connection, per GB)"
echo "raw:"; sort "$tmp/res" | awk '{printf "  %s", $0; n++} n%4==0{print ""}'; echo
