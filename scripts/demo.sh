#!/usr/bin/env bash
# Installs what is needed, builds, and runs `greenlight demo` (Ctrl-C stops everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)" --target greenlight
exec ./build/app/greenlight demo --config examples/demo.yaml "$@"
