#!/usr/bin/env bash
# Mutation testing: does the suite notice a wrong line? Each mutant of scripts/mutations.txt (an
# exact text replacement in tensor/, autograd/, nn/ or models/) is applied alone, the library
# rebuilt in build-mutate/, the suite run, the file restored. A mutant is killed when the build
# or a test fails. Prints each verdict, the survivors, and the killed fraction (the bar is 90%).
#   scripts/mutate.sh [FIRST [LAST]]      mutants FIRST..LAST (1-based), default all
# Not part of CI (about a minute per mutant).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build-mutate/build.ninja ] || meson setup build-mutate -Dbench=false >/dev/null
ninja -C build-mutate >/dev/null || { echo "the unmutated build fails"; exit 1; }
meson test -C build-mutate -q >/dev/null || { echo "the unmutated suite fails: fix that first"; exit 1; }
exec python3 - "$@" <<'PY'
import os, subprocess, sys
lines = [l.rstrip("\n") for l in open("scripts/mutations.txt", encoding="utf-8")]
muts = [[p.strip().replace("\\n", "\n") for p in l.split(" | ")] for l in lines if l.strip() and not l.startswith("#")]
first = int(sys.argv[1]) if len(sys.argv) > 1 else 1
last = int(sys.argv[2]) if len(sys.argv) > 2 else len(muts)
killed, survivors, bad = 0, [], []
for i in range(first - 1, last):
    path, old, new = muts[i]
    text = open(path, encoding="utf-8").read()
    if text.count(old) != 1:
        bad.append(f"#{i + 1} {path}: the text occurs {text.count(old)} times")
        continue
    open(path, "w", encoding="utf-8").write(text.replace(old, new))
    try:
        built = subprocess.run(["ninja", "-C", "build-mutate"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        passed = built and subprocess.run(["meson", "test", "-C", "build-mutate", "-q", "--no-rebuild"],
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800).returncode == 0
    finally:
        open(path, "w", encoding="utf-8").write(text)
    verdict = "killed (build)" if not built else "SURVIVED" if passed else "killed"
    print(f"#{i + 1:2d} {verdict:15s} {path}: {old.strip()[:70]}", flush=True)
    if passed:
        survivors.append(f"#{i + 1} {path}: {old.strip()} -> {new.strip()}")
    else:
        killed += 1
subprocess.run(["ninja", "-C", "build-mutate"], stdout=subprocess.DEVNULL)
n = killed + len(survivors)
print(f"\n{killed} of {n} mutants killed ({100 * killed / max(n, 1):.1f}%)")
for s in survivors: print("survivor: " + s)
for b in bad: print("not applied: " + b)
sys.exit(0 if n and killed >= 0.9 * n and not bad else 1)
PY
