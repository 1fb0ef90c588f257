#!/usr/bin/env bash
# tests/soak.sh: the long soak check (docs/soak.md). Builds ustack and the
# soak driver (tests/soak), then runs the driver: mixed churn against
# `ustack serve` in a namespace, `ustack run` with a command that churns,
# and sockapi embedded in the driver itself, sampling each process and
# failing when a figure grows or does not come back after the load.
#
#   sudo tests/soak.sh                        # all three modes, 3 minutes each
#   sudo SOAK_DURATION=30m tests/soak.sh      # longer
#   tests/soak.sh -mode embed -duration 10m   # no root needed for embed
#   sudo tests/soak.sh -mode serve -rate 1000 -workers 16
#
# Flags after the script's name go to the driver (tests/soak -h lists
# them). On a shared machine run it under the benchmark lock:
#   sudo flock /work/wt/bench.lock tests/soak.sh
# Exit status: 0 every figure passed, 1 one grew or did not come back,
# 2 usage error or failure to run. Namespaces and files it makes are
# named soak-* and removed, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d "${TMPDIR:-/tmp}/soak-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/ustack" ./cmd/ustack
go build -o "$bin/soak" ./tests/soak
"$bin/soak" -ustack "$bin/ustack" "$@"
