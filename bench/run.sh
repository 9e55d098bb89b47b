#!/usr/bin/env bash
# nabla against PyTorch, side by side: installs the peer (Debian's python3-torch with OpenBLAS,
# never the reference BLAS), builds nabla, runs the interleaved comparison and writes
# bench/RESULTS.md. Options go to bench/run.py (e.g. --reps 5, --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
missing=()
for p in python3-torch libopenblas0-openmp; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
[ -f build/build.ninja ] || meson setup build
ninja -C build
exec /usr/bin/python3 bench/run.py "$@"
