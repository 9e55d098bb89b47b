#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer, under AddressSanitizer and UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh [SECONDS] [HARNESS...]    default: 60 seconds each, every harness
# Installs clang and libFuzzer (Debian's), builds build-fuzz/ with clang, runs each harness for
# SECONDS on a working copy of its seed corpus (tests/fuzz/corpus/<name>), two at a time.
# Inputs that crash are copied into tests/fuzz/regressions/<name>/: meson test replays them from
# then on. The summary gives executions, corpus size and crashes per harness.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
scripts/setup.sh
missing=()
for p in clang libfuzzer-14-dev libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dbench=false -Dalloc_fail_test=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized \
    -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null
fi
ninja -C build-fuzz >/dev/null
names=("$@")
((${#names[@]})) || names=(idx safetensors checkpoint config corrupt flags)
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
run() {
  local n=$1 work=build-fuzz/work/$1
  rm -rf "$work/crashes"
  mkdir -p "$work/corpus" "$work/crashes"
  cp -n tests/fuzz/corpus/"$n"/* "$work/corpus/" 2>/dev/null || true
  local quiet=
  [ "$n" = flags ] && quiet=-close_fd_mask=2 # usage messages on every input
  build-fuzz/tests/fuzz/fuzz_"$n" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 $quiet \
    -artifact_prefix="$work/crashes/" -print_final_stats=1 "$work/corpus" >"$work/log" 2>&1 || true
  local crashes
  crashes=$(find "$work/crashes" -type f | wc -l)
  if ((crashes)); then
    mkdir -p tests/fuzz/regressions/"$n"
    cp "$work"/crashes/* tests/fuzz/regressions/"$n"/
  fi
  printf '%-12s %12s executions  %6s inputs in the corpus  %d crashes\n' "$n" \
    "$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || echo ?)" \
    "$(find "$work/corpus" -type f | wc -l)" "$crashes"
}
for ((i = 0; i < ${#names[@]}; i += 2)); do
  run "${names[i]}" &
  if ((i + 1 < ${#names[@]})); then run "${names[i + 1]}" & fi
  wait
done
echo "logs and crashing inputs: build-fuzz/work/<harness>/; crashes also copied to tests/fuzz/regressions/"
