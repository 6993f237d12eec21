#!/usr/bin/env bash
# Benchmark: seconds from `pgrs local apply` to Ready for a 1- and a
# 3-instance replica set, and the resident memory of the control plane
# (`pgrs local run`) and of one agent (`pgrs instance`) once Ready.
# Usage: bash bench/local_ready.sh [RUNS]   (as root; build first)
# Prints a Markdown section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
pgrs=$PWD/build/operator/pgrs
[ -x "$pgrs" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

stats() {  # prints "median min max" of the numbers on stdin
  sort -g | awk '{v[NR]=$1} END {m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR]}'
}

declare -A ready_times run_rss agent_rss
for instances in 1 3; do
  for run in $(seq 1 "$runs"); do
    dir=$(mktemp -d /tmp/pgrs-bench-XXXXXX)
    chmod 755 "$dir"
    base=$((30000 + RANDOM % 20000))
    cat >"$dir/set.yaml" <<EOT
apiVersion: pgrs.dev/v1alpha1
kind: PostgresReplicaSet
metadata:
  name: bench
spec:
  instances: $instances
  local:
    basePort: $base
EOT
    "$pgrs" local run --state-dir "$dir" >"$dir/run.log" 2>&1 &
    run_pid=$!
    start=$(date +%s.%N)
    "$pgrs" local apply --state-dir "$dir" -f "$dir/set.yaml" >/dev/null
    "$pgrs" local wait --state-dir "$dir" bench --for condition=Ready --timeout 180s >/dev/null 2>&1
    end=$(date +%s.%N)
    ready_times[$instances]+="$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') "
    run_rss[$instances]+="$(rss_kb "$run_pid") "
    agent_pid=$(pgrep -f "pgrs instance --name bench-1 --instance-dir $dir" | head -1)
    agent_rss[$instances]+="$(rss_kb "$agent_pid") "
    kill -TERM "$run_pid"
    wait "$run_pid" || true
    rm -rf "$dir"
  done
done

echo "### Local mode: apply to Ready ($(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), PostgreSQL $("/usr/lib/postgresql/15/bin/postgres" --version | awk '{print $3}'), $runs runs each)"
echo
echo "| measure | instances | median | min | max |"
echo "| --- | --- | --- | --- | --- |"
for instances in 1 3; do
  read -r m lo hi < <(tr ' ' '\n' <<<"${ready_times[$instances]}" | grep . | stats)
  echo "| apply → Ready (s) | $instances | $m | $lo | $hi |"
done
for instances in 1 3; do
  read -r m lo hi < <(tr ' ' '\n' <<<"${run_rss[$instances]}" | grep . | awk '{print $1/1024}' | stats)
  echo "| control plane RSS at Ready (MiB) | $instances | $m | $lo | $hi |"
  read -r m lo hi < <(tr ' ' '\n' <<<"${agent_rss[$instances]}" | grep . | awk '{print $1/1024}' | stats)
  echo "| agent RSS at Ready (MiB) | $instances | $m | $lo | $hi |"
done
