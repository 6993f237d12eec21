#!/usr/bin/env bash
# The second command of the README (and what CI runs): install, build, and
# run every test (unit and end-to-end, with real PostgreSQL 15), then the
# unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer
# (scripts/sanitize.sh) and every fuzz target for PGRS_FUZZ_SECONDS each
# (default 30; scripts/fuzz.sh). PGRS_HARDENING=0 skips those two. Extra
# arguments go to ctest. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
failed=0
(cd build && ctest --output-on-failure --timeout 900 "$@") || failed=1
if [ "${PGRS_HARDENING:-1}" != 0 ]; then
  bash scripts/sanitize.sh || failed=1
  bash scripts/fuzz.sh "${PGRS_FUZZ_SECONDS:-30}" || failed=1
fi
exit "$failed"
