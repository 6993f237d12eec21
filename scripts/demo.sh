#!/usr/bin/env bash
# The first command of the README: install, build, and start a 3-instance
# local replica set from manifests/examples/minimal.yaml, then print its
# status. Run as root on Debian 12. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh

state_dir=${PGRS_STATE_DIR:-/var/lib/pgrs/demo}
mkdir -p "$state_dir"
chmod 755 "$state_dir"
pgrs=$PWD/build/operator/pgrs

if ! pgrep -f "pgrs local run --state-dir $state_dir" >/dev/null; then
  echo "starting the control plane: $pgrs local run --state-dir $state_dir (log: $state_dir/run.log)"
  nohup setsid "$pgrs" local run --state-dir "$state_dir" >>"$state_dir/run.log" 2>&1 </dev/null &
fi
"$pgrs" local apply --state-dir "$state_dir" -f manifests/examples/minimal.yaml
"$pgrs" local wait --state-dir "$state_dir" demo --for condition=Ready --timeout 180s
"$pgrs" local get --state-dir "$state_dir" demo
cat <<EOT

Try it:
  $pgrs local psql --state-dir $state_dir demo             # the primary
  $pgrs local psql --state-dir $state_dir demo --replica   # a standby
  $pgrs local get  --state-dir $state_dir demo -o yaml
Stop it:   pkill -TERM -f 'pgrs local run --state-dir $state_dir'
Remove it: $pgrs local delete --state-dir $state_dir demo
EOT
