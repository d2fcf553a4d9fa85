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
# libFuzzer targets (proxy request parsing, runtime commands, conditions, YAML config, JSON API
# bodies), a bounded run each (FUZZ_SECONDS, default 15), when clang is here.
if [ "$build" = build ] && command -v clang++ >/dev/null; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DGREENLIGHT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  cmake --build build-fuzz
  for pair in request_fuzz:request runtime_command_fuzz:runtime condition_fuzz:condition config_fuzz:config \
      json_body_fuzz:json; do
    bin=build-fuzz/tests/fuzz/${pair%%:*}
    corpus=$(mktemp -d)
    cp "tests/fuzz/corpus/${pair##*:}"/* "$corpus"/
    log=$(mktemp)
    if ! "$bin" -max_total_time="${FUZZ_SECONDS:-15}" "$corpus" > "$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz: ${pair%%:*} found a crash"
      exit 1
    fi
    echo "fuzz: ${pair%%:*}: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), no crash"
    rm -rf "$corpus" "$log"
  done
fi

# Every unit and integration test (the last thing printed is ctest's summary).
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 300
