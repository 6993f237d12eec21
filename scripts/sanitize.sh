#!/usr/bin/env bash
# The unit tests (ctest label `unit`) built with AddressSanitizer and
# UndefinedBehaviorSanitizer (clang-14, -fno-sanitize-recover=undefined: the
# first finding fails the test), and run. The build tree, ./build-sanitize,
# is scripts/fuzz.sh's (-DPGRS_FUZZ=ON: the libraries also carry libFuzzer's
# coverage instrumentation, a no-op outside a fuzzer), so that CI compiles
# the instrumented libraries once. Extra arguments go to ctest. Installs
# nothing: scripts/install-deps.sh brings clang-14 and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++-14 >/dev/null 2>&1; then
  echo "sanitize: clang++-14 is not on PATH; install clang-14 and libclang-rt-14-dev (scripts/install-deps.sh)" >&2
  exit 1
fi
CC=clang-14 CXX=clang++-14 cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGRS_FUZZ=ON >/dev/null
# Only the unit tests' executables.
cmake --build build-sanitize -j"$(nproc)" --target unit_tests
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
cd build-sanitize
ctest -L unit --output-on-failure --timeout 900 "$@"
