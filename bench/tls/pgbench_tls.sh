#!/usr/bin/env bash
# What TLS costs clients: pgbench TPS through status.connection.readWrite of a
# local set of 2 instances (async), with spec.tls on (the default) and off.
# For each mode: pgbench -i -s 10, then ROUNDS runs of SECONDS each of the
# TPC-B-like default and of select-only, 4 clients on 2 threads, one
# connection per client for the whole run (-C adds a connection per
# transaction: the handshake cost). Prints one line per run; the median is
# for bench/RESULTS.md.
#   bash bench/tls/pgbench_tls.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-15}
pgrs=$PWD/build/operator/pgrs
pgbench=/usr/lib/postgresql/15/bin/pgbench
dir=$(mktemp -d /tmp/pgrs-tlsbench-XXXXXX)
chmod 755 "$dir"
run_pid=
cleanup() {
  [ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$pgrs" local run --state-dir "$dir" >"$dir/run.log" 2>&1 &
run_pid=$!
port=26432
for mode in true false; do
  name=tls-$mode
  cat >"$dir/$name.yaml" <<YAML
apiVersion: pgrs.dev/v1alpha1
kind: PostgresReplicaSet
metadata:
  name: $name
spec:
  instances: 2
  local:
    basePort: $port
  tls:
    enabled: $mode
YAML
  port=$((port + 10))
  "$pgrs" local apply --state-dir "$dir" -f "$dir/$name.yaml" >/dev/null
  "$pgrs" local wait --state-dir "$dir" "$name" --for condition=Ready --timeout 180s >/dev/null
  conninfo=$("$pgrs" local get --state-dir "$dir" "$name" -o json |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["connection"]["readWrite"])')
  "$pgbench" -q -i -s 10 "$conninfo" >/dev/null 2>&1
  for what in tpcb select-only select-only-reconnect; do
    args=()
    [ "$what" != tpcb ] && args+=(-S)
    [ "$what" = select-only-reconnect ] && args+=(-C)
    for r in $(seq "$rounds"); do
      tps=$("$pgbench" -n -c 4 -j 2 -T "$seconds" "${args[@]}" "$conninfo" 2>/dev/null |
            sed -n 's/^tps = \([0-9.]*\).*/\1/p')
      echo "tls=$mode $what round=$r tps=$tps"
    done
  done
  "$pgrs" local delete --state-dir "$dir" "$name" >/dev/null
done
