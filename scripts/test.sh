#!/usr/bin/env bash
# Installs what is needed, builds warning-free (-Werror) and runs every test (unit and
# integration). Usage: scripts/test.sh [--sanitize]   (ASan + UBSan build in build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

build=build
flags=(-DGREENLIGHT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  flags+=(-DGREENLIGHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DGREENLIGHT_BUILD_BENCH=OFF)
fi
cmake -S . -B "$build" -G Ninja "${flags[@]}"
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 300
