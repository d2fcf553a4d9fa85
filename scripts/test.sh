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
(cd "$build" && ctest --output-on-failure -j "$(nproc)" --timeout 300)

# libFuzzer targets (request parsing, runtime commands), a bounded run each, when clang is here.
if [ "$build" = build ] && command -v clang++ >/dev/null; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DGREENLIGHT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  cmake --build build-fuzz
  for target in request runtime; do
    bin=build-fuzz/tests/fuzz/${target}_fuzz
    [ "$target" = runtime ] && bin=build-fuzz/tests/fuzz/runtime_command_fuzz
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/$target/* "$corpus"/
    "$bin" -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
    rm -rf "$corpus"
  done
  echo "fuzz: no crash"
fi
