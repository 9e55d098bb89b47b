#!/usr/bin/env bash
# The zoo on both sides: installs the peer (Debian's python3-torch with OpenBLAS, never the
# reference BLAS), builds nabla, trains every variant with nabla and with its PyTorch twin and
# writes the "## Zoo" section of bench/RESULTS.md. Options go to bench/zoo.py (e.g. --epochs 10,
# --threads 2, --variants vae,iwae5,iwae50, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
missing=()
for p in python3-torch python3-numpy libopenblas0-openmp; do
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
exec /usr/bin/python3 bench/zoo.py "$@"
