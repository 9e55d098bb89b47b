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
  libcairo2-dev fonts-dejavu-core            # titles and labels drawn into the image grids
  dataset-fashion-mnist                      # the default data set
  doxygen                                    # the API reference (ninja -C build docs)
  libopenmpi-dev openmpi-bin                 # data-parallel training (-Dmpi=auto) and its tests
)
# Installed without recommends: they would add PLplot's Qt and wxWidgets drivers and their
# toolkits (about a hundred packages) and Open MPI's ssh and Fortran compiler, which nothing here
# uses (several hosts need openssh-client as well: docs/distributed.md).
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
