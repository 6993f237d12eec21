#!/usr/bin/env bash
# The second command of the README (and what CI runs): install, build, and
# run every test (unit and end-to-end, with real PostgreSQL 15). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 "$@"
