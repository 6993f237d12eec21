#!/usr/bin/env bash
# Runs pgrs-operator-bench RUNS times for each set count and prints the
# RESULT lines (bench/kube/README.md). Extra arguments go to the driver,
# e.g. `-- --workers 4` for the operator.
# Usage: bench/kube/operator_bench.sh BUILD_DIR RUNS "1 100 1000" [--window 60] [-- OPERATOR FLAGS]
set -euo pipefail
build=${1:?build directory}
runs=${2:-3}
counts=${3:-"1 100 1000"}
shift 3 || true
bench="$build/bench/kube/pgrs-operator-bench"
for n in $counts; do
  for run in $(seq 1 "$runs"); do
    dir=$(mktemp -d /tmp/pgrs-operator-bench.XXXXXX)
    echo "== sets=$n run=$run $(date -u +%FT%TZ) uptime:$(uptime)" >&2
    "$bench" --sets "$n" --dir "$dir" "$@" > "$dir/out.txt" 2>&1 || { echo "run failed, see $dir" >&2; tail -5 "$dir/out.txt" >&2; continue; }
    grep '^RESULT' "$dir/out.txt"
    rm -rf "$dir"
  done
done
