#!/usr/bin/env python3
"""Prints 'N passed, N failed' over meson testlog.json files.

A TAP test counts each of its 'ok' / 'not ok' lines; a test that failed without a failing TAP
line (a crash, a sanitizer report, a non-zero exit) counts one more failure. A missing log
(the build failed) counts as one failure."""
import json
import sys

passed = failed = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        print(f"count_tests: {path} missing (did the build fail?)", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        if t["result"] == "SKIP":
            continue
        out = [l for l in t.get("stdout", "").splitlines() if "# SKIP" not in l]
        ok = sum(1 for l in out if l.startswith("ok "))
        bad = sum(1 for l in out if l.startswith("not ok "))
        good = t["result"] in ("OK", "EXPECTEDFAIL")
        if ok + bad == 0:  # not a TAP test: one result
            ok, bad = (1, 0) if good else (0, 1)
        elif not good and bad == 0:
            bad = 1
        passed += ok
        failed += bad
print(f"{passed} passed, {failed} failed")
