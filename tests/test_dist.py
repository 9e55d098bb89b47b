#!/usr/bin/env python3
"""tests/test_dist.py --mpirun MPIRUN --nabla NABLA | --skip REASON — `mpirun nabla train`.

On 2 ranks of one machine: rank 0 alone prints and writes, the checkpoint records its ranks; a
corrupt data file given to rank 1 makes both ranks exit non-zero within 10 s with rank 1's
message; a run resumed under mpirun ends bit-identical to the uninterrupted one; the checkpoint
of 2 ranks is refused by a single process, saying why; with --example, docs/examples/dist_mlp
ends at the same loss alone and on 2 ranks. Prints TAP; with --skip, the reason.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

DATA = "/usr/share/datasets/fashion-mnist"
n = failed = 0


def ok(cond, what, detail=""):
    global n, failed
    n += 1
    failed += not cond
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond and detail:
        for line in detail.strip().splitlines()[-20:]:
            print("# " + line)
    sys.stdout.flush()
    return cond


def tensors(path):
    """The tensors of a safetensors file as raw bytes by name, and its metadata."""
    with open(path, "rb") as f:
        b = f.read()
    size = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + size])
    meta = head.pop("__metadata__", {})
    data = b[8 + size:]
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in head.items()}, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip")
    ap.add_argument("--mpirun")
    ap.add_argument("--nabla")
    ap.add_argument("--example")
    a = ap.parse_args()
    if a.skip or not a.nabla:
        print(f"1..0 # SKIP {a.skip or 'no nabla program (-Dapps=false)'}")
        return 0
    if not os.path.isdir(DATA):
        print(f"1..0 # SKIP {DATA} not installed (scripts/setup.sh installs it)")
        return 0
    tmp = tempfile.mkdtemp(prefix="nb_dist_app_")
    mpirun = [a.mpirun, "--oversubscribe"]
    small = ["--train-size", "1280", "--test-size", "300", "--threads", "1"]

    def train(out, *extra, ranks=2):
        cmd = mpirun + ["-np", str(ranks)] if ranks else []
        p = subprocess.run(cmd + [a.nabla, "train", *small, "--out", out, *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        return p.returncode, p.stdout, p.stderr

    try:
        out = os.path.join(tmp, "run")
        rc, so, se = train(out, "--epochs", "1")
        lines = so.splitlines()
        ok(rc == 0 and sum(l.startswith("epoch ") for l in lines) == 1 and "data-parallel on 2 ranks" in so
           and sum(l.startswith("training a VAE") for l in lines) == 1,
           "mpirun -np 2 nabla train: one model, rank 0 alone prints", so + se)
        files = sorted(os.listdir(out)) if os.path.isdir(out) else []
        ckpt = os.path.join(out, "checkpoint.safetensors")
        meta = tensors(ckpt)[1] if os.path.exists(ckpt) else {}
        ok(files == ["checkpoint.safetensors", "config.json", "loss_curve.png", "metrics.csv"]
           and meta.get("ranks") == "2", f"rank 0 writes the files; the checkpoint records 2 ranks ({files}, "
           f"ranks {meta.get('ranks')})")
        ok("all-reduce of the gradients: 10 calls" in so, "the all-reduce time is reported",
           so)

        # rank 1 reads a truncated file; each rank records its own exit status
        bad = os.path.join(tmp, "bad")
        os.makedirs(bad)
        for f in os.listdir(DATA):
            if f != "train-images-idx3-ubyte.gz":
                shutil.copy(os.path.join(DATA, f), bad)
        with open(os.path.join(DATA, "train-images-idx3-ubyte.gz"), "rb") as f:
            head = f.read(200000)
        with open(os.path.join(bad, "train-images-idx3-ubyte.gz"), "wb") as f:
            f.write(head)
        status = os.path.join(tmp, "status")

        def rank(data):
            # the shell exits 0, so that mpirun lets each rank finish and say how it ended
            cmd = (f"{a.nabla} train {' '.join(small)} --out {tmp}/bad_run --data {data}; "
                   f"echo $OMPI_COMM_WORLD_RANK $? >> {status}; exit 0")
            return ["-np", "1", "sh", "-c", cmd]
        t0 = time.monotonic()
        p = subprocess.run(mpirun + rank(DATA) + [":"] + rank(bad), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        dt = time.monotonic() - t0
        codes = sorted(open(status).read().split("\n")) if os.path.exists(status) else []
        ok(codes[-2:] == ["0 1", "1 1"] and dt < 10 and "rank 1: " in p.stderr and "truncated" in p.stderr,
           f"a corrupt file on rank 1: both ranks exit 1 within {dt:.1f} s (10 allowed), with its message",
           p.stdout + p.stderr + f"\nexit codes by rank: {codes}")

        # resume under mpirun: 1 epoch, then a second, against 2 at once
        full, part = os.path.join(tmp, "full"), os.path.join(tmp, "part")
        r1 = train(full, "--epochs", "2")[0]
        r2 = train(part, "--epochs", "1")[0]
        r3, so, se = train(part, "--epochs", "2", "--resume", os.path.join(part, "checkpoint.safetensors"))
        same = False
        if r1 == r2 == r3 == 0:
            same = tensors(os.path.join(full, "checkpoint.safetensors"))[0] == \
                tensors(os.path.join(part, "checkpoint.safetensors"))[0]
        ok(same, "a run resumed under mpirun ends bit-identical to the uninterrupted one (parameters and "
           "optimizer state)", so + se)
        r4, so, se = train(os.path.join(tmp, "alone"), "--epochs", "3", "--resume",
                           os.path.join(part, "checkpoint.safetensors"), ranks=0)
        ok(r4 == 1 and "written by a run on 2 ranks, resumed on 1" in se,
           "one process refuses the checkpoint of 2 ranks, saying why", se)

        if a.example:  # docs/examples/dist_mlp.c: a model of one's own, alone and on 2 ranks
            runs = [subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
                    for cmd in ([a.example], mpirun + ["-np", "2", a.example])]
            loss = [float(p.stdout.split("final loss")[1].split()[0]) if "final loss" in p.stdout else None
                    for p in runs]
            ok(all(p.returncode == 0 for p in runs) and None not in loss and abs(loss[0] - loss[1]) <= 1e-4 * loss[0],
               f"docs/examples/dist_mlp: one process and 2 ranks end at the same loss ({loss})",
               runs[0].stdout + runs[1].stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
