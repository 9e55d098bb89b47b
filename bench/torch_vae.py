#!/usr/bin/python3
"""The PyTorch peer: the same VAEs as nabla's presets, trained the same way on the same data.

MLP: pytorch/examples vae/main.py (784-400-20, ReLU, BCE summed + KL, Adam 1e-3, batch 128).
conv: Conv 1-32-64 (k4 s2 p1), Linear to 20 + 20; the decoder mirrors it with ConvTranspose2d.

Reads MNIST-style IDX files directly (no torchvision), so both sides see identical bytes.
Prints one JSON object per epoch on stdout (losses in nats per image, the pytorch/examples
convention; times split into forward, backward and optimizer) and a final summary line.

    /usr/bin/python3 bench/torch_vae.py --arch mlp --epochs 10 --threads 2
"""
import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def load(data_dir, split):
    for suffix in (".gz", ""):
        p = os.path.join(data_dir, f"{split}-images-idx3-ubyte{suffix}")
        if os.path.exists(p):
            return read_idx(p)
    raise FileNotFoundError(f"{data_dir}: no {split}-images-idx3-ubyte[.gz]")


class MLPVAE(nn.Module):
    def __init__(self, latent=20, hidden=400):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # logits: BCE-with-logits below


class ConvVAE(nn.Module):
    def __init__(self, latent=20):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.c2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.mu = nn.Linear(64 * 7 * 7, latent)
        self.logvar = nn.Linear(64 * 7 * 7, latent)
        self.fc = nn.Linear(latent, 64 * 7 * 7)
        self.d1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.d2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def encode(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x.view(-1, 1, 28, 28))))).flatten(1)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        h = F.relu(self.fc(z)).view(-1, 64, 7, 7)
        return self.d2(F.relu(self.d1(h))).flatten(1)


def loss_terms(model, x):
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = model.decode(z)
    # sum over pixels and latent dims; the caller divides by the batch
    bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kld


def blas_in_use():
    """The BLAS library this process mapped: the benchmark refuses to run on reference BLAS."""
    with open("/proc/self/maps") as f:
        maps = f.read()
    for name in ("openblas", "mkl", "blis"):
        if name in maps:
            return name
    return "reference" if "libblas" in maps else "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-size", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="stop each epoch after this many steps (timing runs)")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--hidden", type=int, default=400)
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32",
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around the forward")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train = load(args.data, "train").float().div_(255).view(-1, 784)
    test = load(args.data, "t10k").float().div_(255).view(-1, 784)
    if args.train_size:
        train = train[: args.train_size]
    model = MLPVAE(hidden=args.hidden) if args.arch == "mlp" else ConvVAE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    blas = blas_in_use()
    if blas == "reference":
        print(json.dumps({"error": "torch mapped the reference BLAS; install libopenblas0-openmp"}))
        sys.exit(3)

    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(train.shape[0])
        t_fwd = t_bwd = t_opt = 0.0
        total = 0.0
        steps = 0
        t0 = time.perf_counter()
        for i in range(0, train.shape[0], args.batch):
            x = train[perm[i:i + args.batch]]
            a = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                bce, kld = loss_terms(model, x)
            loss = (bce + kld) / x.shape[0]
            b = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            c = time.perf_counter()
            opt.step()
            d = time.perf_counter()
            t_fwd += b - a
            t_bwd += c - b
            t_opt += d - c
            total += loss.item() * x.shape[0]
            steps += 1
            if args.steps and steps >= args.steps:
                break
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "seconds": seconds, "steps": steps,
               "train_loss": total / min(train.shape[0], steps * args.batch),
               "ms_forward": 1e3 * t_fwd / steps, "ms_backward": 1e3 * t_bwd / steps,
               "ms_optimizer": 1e3 * t_opt / steps}
        if not args.no_eval:
            model.eval()
            with torch.no_grad():
                s = 0.0
                for i in range(0, test.shape[0], 500):
                    bce, kld = loss_terms(model, test[i:i + 500])
                    s += (bce + kld).item()
            row["test_loss"] = s / test.shape[0]
        print(json.dumps(row), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"summary": True, "arch": args.arch, "threads": torch.get_num_threads(), "blas": blas,
                      "torch": torch.__version__, "peak_rss_mb": peak}), flush=True)


if __name__ == "__main__":
    main()
