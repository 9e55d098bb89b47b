#!/usr/bin/env bash
# Installs what is missing, builds and runs the test suite.
#   scripts/test.sh              release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-san/
#   scripts/test.sh --no-simd    the plain C kernels only (no AVX2/AVX-512 builds) in build-nosimd/
# Extra arguments go to `meson test` (e.g. a test name, or -v).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

build=build
opts=()
if [ "${1:-}" = --sanitize ]; then
  shift
  build=build-san
  # Every sanitizer report is fatal; -O1 keeps it quick but the stacks readable.
  opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
        -Dc_args=-fno-sanitize-recover=all)
fi
if [ "${1:-}" = --no-simd ]; then
  shift
  build=build-nosimd
  opts=(-Dsimd=disabled -Dapps=false)
fi
[ -f "$build/build.ninja" ] || meson setup "$build" "${opts[@]}"
rm -f "$build/meson-logs/testlog.json"
meson test -C "$build" --print-errorlogs "$@"
