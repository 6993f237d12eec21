#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/*_fuzzer.cc) for SECONDS each (default
# 30), built with clang-14 (-fsanitize=fuzzer,address,undefined) in
# ./build-sanitize (scripts/sanitize.sh's tree too). The seed corpora under
# fuzz/corpus/TARGET/ are read, never written: what a run finds goes to a
# scratch directory. Exits non-zero when
# a target crashes (a sanitizer finding, an exception, a broken round trip),
# naming the input that did it; once fixed, keep that input in
# fuzz/corpus/TARGET/. Installs nothing: scripts/install-deps.sh brings
# clang-14 and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]  (each target runs SECONDS, default 30)" >&2
  exit 2
fi
if ! command -v clang++-14 >/dev/null 2>&1 || ! command -v clang-14 >/dev/null 2>&1; then
  echo "fuzz: clang-14 is not on PATH; install clang-14 and libclang-rt-14-dev (scripts/install-deps.sh)" >&2
  exit 1
fi
if ! compgen -G "$(clang++-14 -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  echo "fuzz: clang-14's libFuzzer runtime is missing; install libclang-rt-14-dev (scripts/install-deps.sh)" >&2
  exit 1
fi

CC=clang-14 CXX=clang++-14 cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGRS_FUZZ=ON >/dev/null
cmake --build build-sanitize -j"$(nproc)" --target fuzzers

scratch="$(mktemp -d /tmp/pgrs-fuzz.XXXXXX)"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
failed=()
for source in fuzz/*_fuzzer.cc; do
  target="$(basename "$source" _fuzzer.cc)"
  mkdir -p "$scratch/$target/corpus" "$scratch/$target/crashes"
  log="$scratch/$target/log"
  echo "fuzz: $target for ${seconds}s (seeds fuzz/corpus/$target)"
  # The first corpus directory receives new inputs; the seeds are only read.
  if "build-sanitize/fuzz/${target}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$scratch/$target/crashes/" \
      "$scratch/$target/corpus" "fuzz/corpus/$target" >"$log" 2>&1; then
    sed -n 's/^stat::number_of_executed_units: */  runs: /p; s/^stat::new_units_added: */  new inputs: /p' "$log"
  else
    failed+=("$target")
    tail -n 40 "$log" >&2
    for crash in "$scratch/$target/crashes/"*; do
      [ -e "$crash" ] && echo "fuzz: $target crashed on $crash (log $log)" >&2
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; inputs and logs are kept in $scratch" >&2
  exit 1
fi
rm -rf "$scratch"
echo "fuzz: every target ran ${seconds}s without a crash"
