#!/usr/bin/env bash
# Benchmark of issue 10 (backups with pgBackRest) in local mode, on a pgbench
# database of scale 50 (about 750 MB):
#   - pg_basebackup alone to a directory (-X stream, --checkpoint=fast): the baseline
#   - a standby bootstrapped by pg_basebackup: scale the set 1 -> 2, until it streams
#   - full backup (pgrs local backup --type full) from the standby (default)
#     and from the primary (spec.backup.fromStandby: false)
#   - incremental backup after 10 % of pgbench_accounts' rows changed
#   - pgbackrest restore --type=standby into a directory by hand (pgrs does
#     not restore standbys from the repository yet)
#   - restore into a new set (spec.bootstrap.recovery, no target) until
#     Ready, split into pgbackrest restore and recovery by the agent's log
#   - the archive's lag under pgbench -c 2 -T 60, sampled every second
# Usage: bash bench/backup/backup_bench.sh [TRIALS] [RESTORE_TRIALS]
#   (as root; build first: bash scripts/build.sh). Prints a Markdown section
#   for bench/RESULTS.md on stdout, progress on stderr. Not part of ctest.
# Environment: SCALE (default 50), LOAD_SECONDS (default 60), PRIMARY_TRIALS
#   (full backups from the primary, default 1), STEPS (which of the numbered
#   steps below to run, default "1 2 3 4 5 6 7"; 4 needs 3, 6 needs 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-3}
restore_trials=${2:-3}
primary_trials=${PRIMARY_TRIALS:-1}
scale=${SCALE:-50}
load_seconds=${LOAD_SECONDS:-60}
steps=" ${STEPS:-1 2 3 4 5 6 7} "
want() { [[ "$steps" == *" $1 "* ]]; }
pgrs=$PWD/build/operator/pgrs
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgrs" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }

dir=$(mktemp -d /tmp/pgrs-backup-bench-XXXXXX)
chmod 755 "$dir"
repo=$dir/backups
run_pid=""
load_pid=""
cleanup() {
  set +e
  [ -n "$load_pid" ] && kill -TERM "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  if [ -n "$run_pid" ]; then
    for s in $(ls "$dir/sets" 2>/dev/null); do
      "$pgrs" local delete --state-dir "$dir" "$s" >/dev/null 2>&1
    done
    kill -TERM "$run_pid" 2>/dev/null
    wait "$run_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f\n", b - a}'; }
stats() {  # "median min max" of the numbers on stdin
  sort -g | awk '{v[NR]=$1} END {if (NR == 0) {print "- - -"; exit} m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR]}'
}
declare -A results   # measure -> "v1 v2 ..."
record() { results[$1]+="$2 "; log "$1: $2"; }
declare -a order
measure() { order+=("$1|$2"); }  # key|unit-label, in report order

base=$((30000 + RANDOM % 20000))
port_of() { echo $((base + ${1##*-} - 1)); }   # src-2 -> base+1
src=src
secret() { cat "$dir/sets/$src/secrets/$1"; }
manifest() {  # instances fromStandby
  cat <<EOT
apiVersion: pgrs.dev/v1alpha1
kind: PostgresReplicaSet
metadata:
  name: $src
spec:
  instances: $1
  local:
    basePort: $base
  backup:
    repository:
      path: $repo
    fromStandby: $2
EOT
}
get_json() { "$pgrs" local get --state-dir "$dir" "$1" -o json; }
primary() { get_json "$src" | jq -r '.status.currentPrimary'; }
# Polls CMD until it succeeds, at most $1 seconds.
until_ok() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "timed out: $*"; return 1; }
    sleep 0.2
  done
}
psql_on() {  # port sql
  PGPASSWORD=$(secret superuser-password) psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$pgrs" local run --state-dir "$dir" >"$dir/run.log" 2>&1 &
run_pid=$!
manifest 1 true >"$dir/src.yaml"
"$pgrs" local apply --state-dir "$dir" -f "$dir/src.yaml" >/dev/null
"$pgrs" local wait --state-dir "$dir" "$src" --for condition=Ready --timeout 180s >/dev/null
p=$(primary); pport=$(port_of "$p")
log "set $src ready, primary $p on port $pport; pgbench -i -s $scale"
t=$(now)
PGPASSWORD=$(secret superuser-password) "$pgbin/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pport" -U postgres postgres >"$dir/pgbench-init.log" 2>&1
init_s=$(since "$t")
db_bytes=$(psql_on "$pport" "SELECT pg_database_size('postgres')")
cluster_bytes=$(psql_on "$pport" "SELECT sum(pg_database_size(datname)) FROM pg_database")
db_mb=$(awk -v b="$cluster_bytes" 'BEGIN {printf "%.0f", b / 1048576}')
log "pgbench -i took ${init_s}s; all databases $db_mb MB"
psql_on "$pport" "CHECKPOINT" >/dev/null

if want 1; then
# 1. pg_basebackup alone, the baseline.
measure basebackup_s "pg_basebackup -X stream --checkpoint=fast to a directory (s)"
measure basebackup_mbs "pg_basebackup throughput (MB/s of database)"
for i in $(seq 1 "$trials"); do
  rm -rf "$dir/basebackup"
  t=$(now)
  PGPASSWORD=$(secret replication-password) "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$pport" -U pgrs_replication \
    -D "$dir/basebackup" -X stream --checkpoint=fast >&2
  s=$(since "$t")
  record basebackup_s "$s"
  record basebackup_mbs "$(awk -v m="$db_mb" -v s="$s" 'BEGIN {printf "%.1f", m / s}')"
done
rm -rf "$dir/basebackup"
fi

if want 2; then
# 2. A standby bootstrapped by pg_basebackup: 1 -> 2 instances until it streams.
standby_streams() {
  [ "$(get_json "$src" | jq -r '[.status.instances[]? | select(.name == "'"$src"'-2" and .state == "Streaming")] | length')" = 1 ]
}
one_instance() {
  [ "$(get_json "$src" | jq -r '[.status.instances[]?] | length')" = 1 ] && [ ! -d "$dir/sets/$src/instances/$src-2/data" ]
}
measure scaleup_s "scale 1 → 2: new standby (pg_basebackup by pgrs) streams (s)"
for i in $(seq 1 "$trials"); do
  if [ "$i" -gt 1 ]; then
    manifest 1 true >"$dir/src.yaml"
    "$pgrs" local apply --state-dir "$dir" -f "$dir/src.yaml" >/dev/null
    until_ok 120 one_instance
  fi
  manifest 2 true >"$dir/src.yaml"
  t=$(now)
  "$pgrs" local apply --state-dir "$dir" -f "$dir/src.yaml" >/dev/null
  until_ok 600 standby_streams
  record scaleup_s "$(since "$t")"
done
"$pgrs" local wait --state-dir "$dir" "$src" --for condition=Ready --timeout 180s >/dev/null
fi

if want 3; then
# 3. Full backups, from the standby (default), then from the primary.
backup() {  # type -> label on stdout
  "$pgrs" local backup --state-dir "$dir" "$src" --type "$1" --timeout 30m 2>"$dir/backup.err" | tail -1
}
repo_bytes() { du -sb "$repo/backup/$src/$1" | awk '{print $1}'; }
measure full_standby_s "full backup from the standby (s)"
measure full_standby_mbs "full backup from the standby (MB/s of database)"
measure full_repo_mb "full backup size in the repository (MB, gz)"
for i in $(seq 1 "$trials"); do
  t=$(now)
  label=$(backup full)
  s=$(since "$t")
  grep -q "from standby" "$dir/backup.err" || log "warning: not from a standby: $(cat "$dir/backup.err")"
  record full_standby_s "$s"
  record full_standby_mbs "$(awk -v m="$db_mb" -v s="$s" 'BEGIN {printf "%.1f", m / s}')"
  record full_repo_mb "$(awk -v b="$(repo_bytes "$label")" 'BEGIN {printf "%.0f", b / 1048576}')"
done
measure full_primary_s "full backup from the primary, fromStandby: false (s)"
measure full_primary_mbs "full backup from the primary (MB/s of database)"
manifest 2 false >"$dir/src.yaml"
"$pgrs" local apply --state-dir "$dir" -f "$dir/src.yaml" >/dev/null
sleep 2   # the agents receive the changed spec within a second
for i in $(seq 1 "$primary_trials"); do
  t=$(now)
  backup full >/dev/null
  s=$(since "$t")
  grep -q "from standby" "$dir/backup.err" && log "warning: still from a standby: $(cat "$dir/backup.err")"
  record full_primary_s "$s"
  record full_primary_mbs "$(awk -v m="$db_mb" -v s="$s" 'BEGIN {printf "%.1f", m / s}')"
done
manifest 2 true >"$dir/src.yaml"
"$pgrs" local apply --state-dir "$dir" -f "$dir/src.yaml" >/dev/null
sleep 2
fi

if want 4; then
# 4. Incremental backups, each after 10 % of the accounts changed.
measure update_s "UPDATE of 10 % of pgbench_accounts (s, not a backup)"
measure incr_s "incremental backup after 10 % of rows changed, from the standby (s)"
measure incr_repo_mb "incremental backup size in the repository (MB)"
for i in $(seq 1 "$trials"); do
  t=$(now)
  psql_on "$pport" "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 10 = $((i % 10))" >/dev/null
  record update_s "$(since "$t")"
  # the standby has replayed the update before the backup starts
  lsn=$(psql_on "$pport" "SELECT pg_current_wal_lsn()")
  sport=$(port_of "$src-2")
  until_ok 300 bash -c "[ \"\$(PGPASSWORD='$(secret superuser-password)' psql -X -At -h 127.0.0.1 -p $sport -U postgres -d postgres -c \"SELECT pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
  t=$(now)
  label=$(backup incr)
  record incr_s "$(since "$t")"
  record incr_repo_mb "$(awk -v b="$(repo_bytes "$label")" 'BEGIN {printf "%.0f", b / 1048576}')"
done

# The same data as the last incremental, backed up in full: what the
# incremental saved.
measure full_after_s "full backup from the standby after the updates (s)"
measure full_after_repo_mb "full backup after the updates, size in the repository (MB)"
t=$(now)
label=$(backup full)
record full_after_s "$(since "$t")"
record full_after_repo_mb "$(awk -v b="$(repo_bytes "$label")" 'BEGIN {printf "%.0f", b / 1048576}')"
measure accounts_mb "pgbench_accounts after the updates (MB; 641 before)"
record accounts_mb "$(psql_on "$pport" "SELECT pg_table_size('pgbench_accounts') / 1048576")"
fi

if want 5; then
# 5. A standby restored from the repository by hand (pgbackrest restore --type=standby).
conf=$dir/sets/$src/instances/$p/pgbackrest/pgbackrest.conf
measure manual_standby_s "pgbackrest restore --type=standby into a directory, by hand (s)"
for i in $(seq 1 "$trials"); do
  rm -rf "$dir/manual"; install -d -o postgres -g postgres -m 700 "$dir/manual"
  t=$(now)
  runuser -u postgres -- pgbackrest --config="$conf" --stanza="$src" --pg1-path="$dir/manual" \
    --lock-path="$dir/manual-lock" --log-level-console=warn --log-level-file=off restore --type=standby >&2
  record manual_standby_s "$(since "$t")"
done
rm -rf "$dir/manual" "$dir/manual-lock"
fi

if want 6; then
# 6. Restore into a new set (no target: the end of the archive) until Ready.
# Everything committed so far is archived first.
measure switch_archived_s "pg_switch_wal() → that segment archived (.done), idle primary (s)"
t=$(now)
wal=$(psql_on "$pport" "SELECT pg_walfile_name(pg_switch_wal())")
until_ok 120 bash -c "[ \"\$(PGPASSWORD='$(secret superuser-password)' psql -X -At -h 127.0.0.1 -p $pport -U postgres -d postgres -c \"SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '$wal.done'\")\" = 1 ]"
record switch_archived_s "$(since "$t")"
measure restore_ready_s "restore into a new set (spec.bootstrap.recovery) until Ready (s)"
measure restore_copy_s "… of which pgbackrest restore (restoring → restored data directory) (s)"
measure restore_recovery_s "… of which recovery, promotion, passwords (restored → restore complete) (s)"
for i in $(seq 1 "$restore_trials"); do
  rbase=$((base + 100 + i * 10))
  cat >"$dir/rst$i.yaml" <<EOT
apiVersion: pgrs.dev/v1alpha1
kind: PostgresReplicaSet
metadata:
  name: rst$i
spec:
  instances: 1
  local:
    basePort: $rbase
  bootstrap:
    recovery:
      source: $src
      repository:
        path: $repo
EOT
  t=$(now)
  "$pgrs" local apply --state-dir "$dir" -f "$dir/rst$i.yaml" >/dev/null
  "$pgrs" local wait --state-dir "$dir" "rst$i" --for condition=Ready --timeout 30m >/dev/null
  record restore_ready_s "$(since "$t")"
  alog=$dir/sets/rst$i/instances/rst$i-1/agent.log
  # the first ISO time on the line (text or JSON log lines; UTC)
  ts() { date -u -d "$(grep -m1 "$1" "$alog" | grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+' | head -1)" +%s.%N; }
  a=$(ts "restoring instance="); b=$(ts "restored data directory"); c=$(ts "restore complete")
  record restore_copy_s "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}')"
  record restore_recovery_s "$(awk -v a="$b" -v b="$c" 'BEGIN {printf "%.2f", b - a}')"
  "$pgrs" local delete --state-dir "$dir" "rst$i" >/dev/null
done
fi

if want 7; then
# 7. The archive's lag under a steady pgbench load.
# A fresh start: the segment written before the load is archived, so that
# the first samples do not count the idle time before it.
wal=$(psql_on "$pport" "SELECT pg_walfile_name(pg_switch_wal())")
until_ok 120 bash -c "[ \"\$(PGPASSWORD='$(secret superuser-password)' psql -X -At -h 127.0.0.1 -p $pport -U postgres -d postgres -c \"SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '$wal.done'\")\" = 1 ]"
log "pgbench -c 2 -T $load_seconds, sampling pg_stat_archiver every second"
PGPASSWORD=$(secret superuser-password) "$pgbin/pgbench" -c 2 -T "$load_seconds" -h 127.0.0.1 -p "$pport" -U postgres postgres \
  >"$dir/pgbench-load.log" 2>&1 &
load_pid=$!
sleep 2
segno() { local w=$1; echo $(( 16#${w:8:8} * 256 + 16#${w:16:8} )); }
: >"$dir/lag"
while kill -0 "$load_pid" 2>/dev/null; do
  row=$(psql_on "$pport" "SELECT extract(epoch FROM now() - last_archived_time), pg_walfile_name(pg_current_wal_lsn()), last_archived_wal FROM pg_stat_archiver" 2>/dev/null || true)
  IFS='|' read -r age cur last <<<"$row"
  if [ -n "$age" ] && [ "${#last}" = 24 ]; then
    echo "$age $(( $(segno "$cur") - $(segno "$last") ))" >>"$dir/lag"
    log "archive lag sample: ${age}s, current $cur, last archived $last"
  fi
  sleep 1
done
wait "$load_pid" || true; load_pid=""
tps=$(grep -m1 -oE 'tps = [0-9.]+' "$dir/pgbench-load.log" | awk '{print $3}')
measure lag_s "archive lag under pgbench -c 2: now − last_archived_time (s, samples every 1 s)"
measure lag_segments "archive lag: current WAL segment − last archived (segments of 16 MB)"
while read -r age segs; do results[lag_s]+="$age "; results[lag_segments]+="$segs "; done <"$dir/lag"
samples=$(wc -l <"$dir/lag")
fi

commit=$(git rev-parse --short HEAD)
echo "#### Backups, scale $scale ($(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $(pgbackrest version), commit $commit)"
echo
echo "Database: $db_mb MB (all databases; pgbench -i -s $scale took ${init_s} s). Load average (1, 5, 15 min) at the start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg). Archive lag: $samples samples, pgbench $tps tps."
echo
echo "| measure | trials | median | min | max |"
echo "| --- | --- | --- | --- | --- |"
for entry in "${order[@]}"; do
  key=${entry%%|*}; label=${entry#*|}
  n=$(tr ' ' '\n' <<<"${results[$key]:-}" | grep -c . || true)
  read -r m lo hi < <(tr ' ' '\n' <<<"${results[$key]:-}" | grep . | stats)
  echo "| $label | $n | $m | $lo | $hi |"
done
