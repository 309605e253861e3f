#!/usr/bin/env bash
# Builds the Debian package and prints its path:
#   scripts/package.sh [BUILD_DIR]
# Without BUILD_DIR: a Release build in build-release, tests left out. The
# build dependencies come from scripts/setup.sh. Install the result with
#   sudo apt install ./build-release/package/assetmv_*.deb
# (apt, unlike dpkg -i, installs the libraries it depends on too).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
dir=${1:-$ROOT/build-release}
if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DASSETMV_TESTS=OFF >&2
fi
ninja -C "$dir" >&2
rm -rf "$dir/package"
(cd "$dir" && cpack -G DEB >&2)
ls "$dir"/package/assetmv_*.deb
