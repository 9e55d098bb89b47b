#!/usr/bin/python3
"""PyTorch's side of the importance-sampling benchmark (bench/bench_is.c): the same MLP VAE, its
weights read from nabla's checkpoint, the same IS estimate of log p(x) with k samples for the
first N test images, done as PyTorch users do it (each image's k samples decoded as one batch,
chunks of about 16k rows, logsumexp over the samples). Prints one JSON object.

    bench/torch_is.py CHECKPOINT --k 1000 --images 1000 --threads 2
"""
import argparse
import json
import math
import struct
import time

import torch
import torch.nn.functional as F

from torch_vae import MLPVAE, blas_in_use, load


def read_safetensors(path):
    """{name: float32 tensor} of a safetensors file (nabla writes F32 parameters)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    w = read_safetensors(args.checkpoint)
    model = MLPVAE()
    names = {"fc1": "enc.fc.0", "fc21": "enc.mu", "fc22": "enc.logvar", "fc3": "dec.fc.0", "fc4": "dec.fc.1"}
    model.load_state_dict({f"{t}.{p}": w[f"{n}.{p}"] for t, n in names.items() for p in ("weight", "bias")})
    x_all = load(args.data, "t10k").float().div_(255).view(-1, 784)[: args.images]
    chunk = max(1, 16384 // args.k)
    total = total2 = 0.0
    log2pi = math.log(2 * math.pi)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, x_all.shape[0], chunk):
            x = x_all[i:i + chunk]
            mu, logvar = model.encode(x)
            eps = torch.randn(args.k, *mu.shape)
            z = mu + torch.exp(0.5 * logvar) * eps                      # (k, b, d)
            logits = model.decode(z.reshape(-1, z.shape[-1])).view(args.k, x.shape[0], 784)
            log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
            log_pz = -0.5 * (log2pi + z.pow(2)).sum(-1)
            log_qz = -0.5 * (log2pi + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)
            ll = torch.logsumexp((log_px + log_pz - log_qz).double(), 0) - math.log(args.k)
            total += ll.sum().item()
            total2 += ll.pow(2).sum().item()
    seconds = time.perf_counter() - t0
    n = x_all.shape[0]
    mean = total / n
    se = math.sqrt(max(0.0, total2 / n - mean * mean) / (n - 1)) if n > 1 else 0.0
    print(json.dumps({"seconds": seconds, "ll": mean, "se": se, "k": args.k, "images": n,
                      "threads": torch.get_num_threads(), "blas": blas_in_use()}))


if __name__ == "__main__":
    main()
