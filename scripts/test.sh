#!/usr/bin/env bash
# Sets up everything, checks formatting, then runs every test (unit + integration, via ctest)
# twice: in the normal build and in the AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --asan

echo "== clang-format"
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find source -name '*.cc' -o -name '*.h')
clang-format --dry-run --Werror $files

echo "== tests (RelWithDebInfo)"
(cd build && ctest --output-on-failure)

echo "== tests (ASan + UBSan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure)
