#!/usr/bin/env bash
# The main demo: installs what is missing, builds, trains a VAE on Fashion-MNIST (and a 2-D one)
# and writes pictures and a report into out/demo/ (a few minutes on 2 cores). Extra arguments go
# to `nabla demo`, e.g. --epochs 3 or --threads 1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
build/apps/nabla demo "$@"
echo "open out/demo/report.md"
