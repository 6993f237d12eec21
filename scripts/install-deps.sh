#!/usr/bin/env bash
# Installs what pgrs needs to build, test and run, from Debian 12's archive.
# Quiet and quick when everything is already there.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcpprest-dev libyaml-cpp-dev libpq-dev libssl-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  postgresql-15 postgresql-client-15
  openssl procps
  pgbackrest
  prometheus  # for promtool: install_chart_test checks and tests the alert rules
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh (libFuzzer) and scripts/sanitize.sh (ASan, UBSan)
)

# kubectl (v1.21+, whose built-in kustomize reads manifests/) is used by the
# e2e/install tests. Debian 12's archive has no such kubectl (its
# kubernetes-client is v1.20), so it is not installed here: it comes with
# the machine image (google-cloud-cli's kubectl). Say so when it is missing.
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "install-deps: kubectl v1.21+ (with kustomize) is not on PATH: the e2e/install tests (install_manifests_test) will fail; install kubectl from https://kubernetes.io/docs/tasks/tools/" >&2
fi

# The S3 test server (local_backup_s3_e2e): s3rver from the npm registry,
# pinned with its dependencies by e2e/local/s3/package-lock.json. Node.js and
# npm come from Debian's archive unless the machine already has them.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

install_s3_test_server() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/e2e/local/s3"
  if [ -x "$dir/node_modules/.bin/s3rver" ] &&
     [ "$(node -p "require('$dir/node_modules/s3rver/package.json').version" 2>/dev/null)" = "3.7.1" ]; then
    return 0
  fi
  echo "install-deps: installing the S3 test server (npm ci in $dir)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_s3_test_server
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql package would start a cluster of its own on 5432; pgrs
# starts its own instances, so keep the package from creating one.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
  echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_s3_test_server
