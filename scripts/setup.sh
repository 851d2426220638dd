#!/usr/bin/env bash
# Installs what corral needs to build and test on a fresh Debian 12 machine (idempotent),
# then builds build/corral. Usage: scripts/setup.sh [--asan]
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libevent-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libhttp-parser-dev libabsl-dev libre2-dev nlohmann-json3-dev
  libprotobuf-dev libseccomp-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c "import pytest, yaml" 2>/dev/null || python3 -m pip install -q pytest pyyaml

# Go (the machine's toolchain; Debian's is too old for the SDK) and Envoy's Go SDK, pinned in
# test/golang/go.mod: the host compiles against the SDK's api.h, the tests build plugins with it.
command -v go >/dev/null || { echo "go is required (Go >= 1.25, with cgo)" >&2; exit 1; }
for m in test/golang examples/auth-plugin; do (cd "$m" && GOTOOLCHAIN=local go mod download); done

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build
if [ "${1:-}" = "--asan" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCORRAL_SANITIZE=ON >/dev/null
  ninja -C build-asan
fi
