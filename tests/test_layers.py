#!/usr/bin/env python3
"""tests/test_layers.py SOURCE ARCHIVE... — the layers stay layered: tensor <- autograd <- nn <-
models <- apps, in the includes and in the link.

Archives are given lowest layer first. For each archive, no symbol it needs (nm -u) may be
defined by an archive of a higher layer; and no source file of a layer may include a header of
a higher layer (the public headers under include/nabla count as their layer's). Prints TAP.
"""
import os
import re
import subprocess
import sys

SRC, ARCHIVES = sys.argv[1], sys.argv[2:]
LAYERS = ["tensor", "autograd", "nn", "models", "apps"]
HEADER_LAYER = {"tensor.h": "tensor", "rng.h": "tensor", "autograd.h": "autograd", "op.h": "autograd",
                "gradcheck.h": "autograd", "nn.h": "nn", "dist.h": "nn", "models.h": "models", "nabla.h": "models"}

n = failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    failed += not cond
    print(("ok" if cond else "not ok") + f" {n} - {what}")


def symbols(archive, undefined):
    out = subprocess.run(["nm", "-g", "-u" if undefined else "--defined-only", archive],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.endswith(":"):
            names.add(parts[-1])
    return names


defined = [symbols(a, False) for a in ARCHIVES]
for i, a in enumerate(ARCHIVES):
    need = symbols(a, True)
    above = set().union(*defined[i + 1:]) if i + 1 < len(defined) else set()
    bad = sorted(need & above)
    ok(not bad, f"{os.path.basename(a)} links to no symbol of a higher layer"
       + (f": {', '.join(bad[:8])}" if bad else ""))

inc = re.compile(r'#include\s+[<"]([^>"]+)[>"]')
for li, layer in enumerate(LAYERS):
    bad = []
    for f in sorted(os.listdir(os.path.join(SRC, layer))):
        if not f.endswith((".c", ".h", ".def")):
            continue
        for h in inc.findall(open(os.path.join(SRC, layer, f), encoding="utf-8").read()):
            top = h.split("/")[0]
            hl = HEADER_LAYER.get(h.split("/")[-1]) if top == "nabla" else top
            if hl in LAYERS and LAYERS.index(hl) > li:
                bad.append(f"{f} includes {h}")
    ok(not bad, f"{layer}/ includes nothing of a higher layer" + (f": {'; '.join(bad[:5])}" if bad else ""))
for h, layer in HEADER_LAYER.items():
    text = open(os.path.join(SRC, "include", "nabla", h), encoding="utf-8").read()
    bad = [x for x in inc.findall(text)
           if x in HEADER_LAYER and LAYERS.index(HEADER_LAYER[x]) > LAYERS.index(layer)]
    ok(not bad, f"<nabla/{h}> ({layer}) includes nothing of a higher layer" + (f": {bad}" if bad else ""))

print(f"1..{n}")
sys.exit(1 if failed else 0)
