#!/usr/bin/env bash
# Installs every Debian 12 package that Greenlight's build, tests, demo and benchmarks need.
# Idempotent: packages already present are skipped by apt; safe to run again.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config ninja-build
  # libraries (README "Dependencies" says why each is there)
  prometheus-cpp-dev libcpp-httplib-dev libssl-dev libspdlog-dev libyaml-cpp-dev libjemalloc-dev
  nlohmann-json3-dev libcurl4-openssl-dev libcli11-dev libboost-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # libFuzzer targets (tests/fuzz) build with clang and its runtime
  clang libclang-rt-14-dev
  # real servers that integration tests and benchmarks start on 127.0.0.1
  prometheus prometheus-blackbox-exporter prometheus-alertmanager nginx haproxy wrk
  # tools used by tests and benchmark scripts
  openssl curl procps python3
  # the status page test drives a real headless browser
  chromium chromium-driver
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packaged servers (nginx, prometheus) must not start system instances on install: tests and
# benchmarks start their own on 127.0.0.1 ports they choose. policy-rc.d tells invoke-rc.d so.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
fi
trap 'if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
