#!/usr/bin/env bash
# Installs what is needed, builds warning-free (-Werror) and runs every test (unit and
# integration), the libFuzzer targets for a bounded time, then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs every test there too.
# Usage: scripts/test.sh [--quick | --sanitize]
#   --quick     the -Werror build, fuzzing and tests only (no sanitizer pass): for iterating
#   --sanitize  the sanitizer pass only
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
case "$mode" in all|--quick|--sanitize) ;; *) echo "usage: $0 [--quick | --sanitize]" >&2; exit 2 ;; esac
bash scripts/install-deps.sh

run_tests() {
  # Every unit and integration test (the last thing printed is ctest's summary). $2: parallel jobs.
  (cd "$1" && ctest --output-on-failure -j "${2:-$(nproc)}" --timeout 300)
}

if [ "$mode" != --sanitize ]; then
  cmake -S . -B build -G Ninja -DGREENLIGHT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build build -j "$(nproc)"
  # libFuzzer targets (proxy request parsing, runtime commands, conditions, YAML config, JSON API
  # bodies), a bounded run each (FUZZ_SECONDS, default 15), when clang is here.
  if command -v clang++ >/dev/null; then
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
  run_tests build
fi

if [ "$mode" != --quick ]; then
  # The same tests on an ASan + UBSan build: any sanitizer report fails the test it happens in.
  cmake -S . -B build-asan -G Ninja -DGREENLIGHT_WERROR=ON -DGREENLIGHT_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug -DGREENLIGHT_BUILD_BENCH=OFF
  cmake --build build-asan -j "$(nproc)"
  echo "sanitizer pass (AddressSanitizer + UndefinedBehaviorSanitizer):"
  # One test at a time: the instrumented code runs several times slower, and the integration
  # tests that kill and restart processes keep their timing headroom.
  run_tests build-asan 1
fi
