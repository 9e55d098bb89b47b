#!/usr/bin/env bash
# One training step and one evaluation on 2 threads under ThreadSanitizer: f64 (nabla's own
# kernels alone), f32 MLP and f32 conv (with oneDNN). Fails on any report.
#
# With gcc and libgomp, TSan cannot see OpenMP's barriers (libgomp is not instrumented) and
# reports races between a stack variable written after a parallel region and the worker that
# read it inside it; a run also takes over 10 minutes. So this builds with clang and LLVM's
# OpenMP runtime and loads Archer (libarcher), which tells TSan what OpenMP synchronises.
# oneDNN keeps its own libgomp threads; their accesses are outside the instrumented modules.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
missing=()
for p in clang libomp-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
llvm=/usr/lib/llvm-14/lib
[ -f build-tsan/build.ninja ] || CC=clang meson setup build-tsan -Db_sanitize=thread -Db_lundef=false \
  -Dapps=false -Dbench=false -Dtests=false -Dbuildtype=debugoptimized >/dev/null
ninja -C build-tsan >/dev/null
clang -O1 -g -fsanitize=thread -fopenmp -Iinclude tests/thread_check.c build-tsan/libnabla_all.a \
  -L"$llvm" -lomp -ldnnl -lsleef -lz -lcjson -lxxhash -lm -o build-tsan/thread_check
status=0
for kind in f64 f32 conv; do
  OMP_NUM_THREADS=2 OMP_TOOL_LIBRARIES=$llvm/libarcher.so LD_LIBRARY_PATH=$llvm \
    TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=0 exitcode=66" \
    build-tsan/thread_check "$kind" || status=1
done
exit $status
