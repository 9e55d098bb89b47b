#!/usr/bin/env python3
"""tests/test_docs.py DOXYFILE [DOXYGEN] — the API reference builds without a single Doxygen warning.

Runs doxygen on the configured Doxyfile (docs/Doxyfile.in), with the output and the warning log
redirected into a temporary directory, and fails when the log is not empty: a public function,
type or macro left undocumented, or a malformed comment. Prints TAP; skips without doxygen.
"""
import os
import shutil
import subprocess
import sys
import tempfile

DOXYFILE = sys.argv[1]
doxygen = sys.argv[2] if len(sys.argv) > 2 else shutil.which("doxygen")
if not doxygen:
    print("1..0 # SKIP doxygen not installed")
    sys.exit(0)

n = failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    failed += not cond
    print(("ok" if cond else "not ok") + f" {n} - {what}")


with tempfile.TemporaryDirectory(prefix="nabla-docs-") as tmp:
    log = os.path.join(tmp, "warnings.log")
    with open(DOXYFILE, encoding="utf-8") as f:
        config = f.read()
    # later assignments win: same input and options, output and log here
    config += f'\nOUTPUT_DIRECTORY = "{tmp}"\nWARN_LOGFILE = "{log}"\n'
    run = subprocess.run([doxygen, "-"], input=config, text=True, cwd=tmp,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ok(run.returncode == 0, f"doxygen exits 0 (got {run.returncode})")
    for line in run.stdout.splitlines():
        print("# " + line)

    warnings = []
    if os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            warnings = [line.rstrip() for line in f if line.strip()]
    ok(not warnings, f"no doxygen warnings ({len(warnings)} lines)")
    for line in warnings:
        print("# " + line)

    index = os.path.join(tmp, "html", "index.html")
    ok(os.path.isfile(index) and os.path.getsize(index) > 0, "html/index.html written")

print(f"1..{n}")
sys.exit(1 if failed else 0)
