#!/usr/bin/env bash
# Installs the Debian packages nabla needs to build, test and run its demos. Idempotent: when
# every package is present it only checks (well under a second).
set -euo pipefail

pkgs=(
  gcc meson ninja-build pkg-config python3   # build; python3 counts test results in .ci/run
  libdnnl-dev                                # oneDNN: GEMM, convolutions
  libsleef-dev                               # SLEEF: vectorised exp/log/tanh
  zlib1g-dev libpng-dev                      # IDX .gz data, PNG pictures
  libcjson-dev                               # safetensors headers, config files
  libxxhash-dev                              # checksums of the tensors in files nabla writes
  liblapacke-dev libblas-dev                 # PCA and Cholesky in the apps (LAPACK, CBLAS)
  libopenblas0-openmp                        # a fast BLAS behind them (the PCA of 60000 images)
  libplplot-dev plplot-driver-cairo          # plots (loss curves, scatter) as PNG
  dataset-fashion-mnist                      # the default data set
  doxygen                                    # the API reference (ninja -C build docs)
)
# Open MPI for data-parallel training (-Dmpi=auto finds it) and its tests (mpirun). Installed
# without its recommends (ssh, a Fortran compiler): one machine needs none of them; several
# hosts need openssh-client as well (docs/distributed.md).
lean=(libopenmpi-dev openmpi-bin)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=() missing_lean=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${lean[@]}"; do installed "$p" || missing_lean+=("$p"); done
((${#missing[@]} + ${#missing_lean[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]} ${missing_lean[*]}" >&2
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
if ((${#missing_lean[@]})); then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing_lean[@]}"
fi
