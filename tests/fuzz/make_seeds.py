#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py DIR — the IDX seeds (raw and gzip, 1 to 3 dims, a few corrupt ones),
a safetensors file from another writer (no checksums, an odd U8 tensor), and the text seeds.
Each harness reads corpus/<name>/; see fuzz_<name>.c for how an input is taken apart."""
import gzip
import json
import os
import struct
import sys

out = sys.argv[1]


def put(harness, name, data):
    os.makedirs(os.path.join(out, harness), exist_ok=True)
    with open(os.path.join(out, harness, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(nd, dims, body):
    return struct.pack(">I", 0x800 | nd) + b"".join(struct.pack(">I", d) for d in dims) + body


# fuzz_idx: the first byte picks the dims (1 + byte % 3)
images = idx(3, [2, 3, 4], bytes(range(24)))
labels = idx(1, [5], bytes([0, 1, 2, 1, 0]))
put("idx", "images-raw", bytes([2]) + images)
put("idx", "images-gz", bytes([2]) + gzip.compress(images, mtime=0))
put("idx", "labels-raw", bytes([0]) + labels)
put("idx", "labels-gz", bytes([0]) + gzip.compress(labels, mtime=0))
put("idx", "matrix", bytes([1]) + idx(2, [3, 3], bytes(9)))
put("idx", "float-type", bytes([2]) + struct.pack(">I", 0x0D03) + struct.pack(">III", 1, 1, 1) + bytes(4))
put("idx", "truncated-gz", bytes([2]) + gzip.compress(images, mtime=0)[:-5])

# a safetensors file as other writers make it: no nabla metadata, unaligned F32 after U8
hdr = {"u": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
       "w": {"dtype": "F32", "shape": [2], "data_offsets": [3, 11]},
       "__metadata__": {"format": "pt"}}
h = json.dumps(hdr).encode()
put("safetensors", "foreign", struct.pack("<Q", len(h)) + h + bytes([1, 2, 3]) + struct.pack("<2f", 1.5, -2))
put("checkpoint", "foreign", struct.pack("<Q", len(h)) + h + bytes([1, 2, 3]) + struct.pack("<2f", 1.5, -2))

# fuzz_config: JSON objects of configuration keys
put("config", "defaults", json.dumps({"model": "vae", "latent": 20, "hidden": "400", "lr": 0.001}))
put("config", "everything", json.dumps({
    "preset": "conv", "model": "cvae", "arch": "conv", "latent": 8, "conv-channels": 16, "act": "elu",
    "decoder": "gaussian-pixel", "logvar-min": -6, "logvar-max": 6, "beta": 4, "kl-warmup": 2,
    "free-bits": 0.5, "corrupt": "gaussian:0.3,block:8", "optimizer": "sgd", "momentum": 0.9,
    "nesterov": 1, "clip": 5, "lr-schedule": "step:3:0.5", "batch": 64, "epochs": 3, "seed": 7,
    "binarize": "dynamic", "train-size": 1000, "eval-batch": 100, "channels": 1, "height": 28,
    "width": 28, "classes": 10}))
put("config", "bad-number", '{"lr": 1e309, "latent": -3}')

# fuzz_corrupt: specs
for i, spec in enumerate(["gaussian:0.3", "dropout:0.5,blur:1.5", "block:3,saltpepper:0.1",
                          "gaussian:0.1,dropout:0.2,blur:2,block:16,saltpepper:0.05", "none"]):
    put("corrupt", f"spec{i}", spec)

# fuzz_flags: NUL-separated arguments
for i, args in enumerate([["--latent", "8", "--lr", "0.01", "--k", "100"],
                          ["--preset=aevb", "--hidden", "392,196", "--toy", "--checkpoint", "a", "--checkpoint", "b"],
                          ["--corrupt", "dropout:0.5", "--scale=2.5", "--rows", "4", "--beta", "0.5"],
                          ["--help"], ["--epochs"]]):
    put("flags", f"args{i}", "\0".join(args))
