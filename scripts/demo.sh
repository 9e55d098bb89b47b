#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and runs the newest end-to-end program.
# For now that is the core benchmark table (SIMD kernels, matmul, tape overhead).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
build/bench/bench_core
