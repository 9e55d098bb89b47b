#!/usr/bin/python3
"""Data-parallel training on MPI: steps per second of the MLP and conv VAEs at global batch 128
on 1 and 2 ranks (1 thread each), the time of the gradient all-reduce within a step, and the
all-reduce alone from 8 bytes to 16 MB. Repetitions are interleaved; the table gives medians.

Writes its section of bench/RESULTS.md ("## Data-parallel training on MPI", to the end of the
file; bench/run.py keeps it when it rewrites the rest) and prints it.

    bench/dist.py [--reps 3] [--build build] [--steps 200]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADING = "## Data-parallel training on MPI"
MODELS = {"mlp": "MLP VAE 784-400-20", "conv": "conv VAE (32-64, k4 s2)"}


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_WAIT_POLICY="PASSIVE")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "bench_dist")
    mpirun = ["mpirun", "--oversubscribe"]
    rows, loads = {}, [load()]
    for rep in range(a.reps):
        for arch in MODELS:
            steps = a.steps if arch == "mlp" else max(20, a.steps // 5)
            for ranks in (1, 2, "2y"):  # 2y: 2 ranks that yield their core while they wait, unbound
                opts = ["-np", "2", "--mca", "mpi_yield_when_idle", "1", "--bind-to", "none"] if ranks == "2y" \
                    else ["-np", str(ranks)]
                r = run(mpirun + opts + [exe, "--arch", arch, "--steps", str(steps), "--threads", "1"])[0]
                rows.setdefault((arch, ranks), []).append(r)
                loads.append(load())
    sweep = {}
    for rep in range(a.reps):
        for r in run(mpirun + ["-np", "2", exe, "--sweep"]):
            sweep.setdefault(r["bytes"], []).append(r["us"])
    loads.append(load())

    med = lambda xs: statistics.median(xs)
    when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    out = [HEADING, "",
           f"`bench/dist.py` on {os.cpu_count()} cores, {when}: Open MPI 4.1 shared memory (one machine), global "
           f"batch 128, 1 thread per rank, {a.reps} interleaved repetitions, medians. The 1-minute load average "
           f"ran from {min(loads):.1f} to {max(loads):.1f} during the run, the run's own ranks included"
           + (" (a busy machine: other work shared the cores, so the 2-rank rows are pessimistic)."
              if max(loads) > os.cpu_count() + 0.5 else " (little else ran)."), "",
           "| model | ranks | steps/s | step | all-reduce per step | of the step | speed-up |",
           "|---|---|---|---|---|---|---|"]
    for arch, name in MODELS.items():
        one = med([r["steps_per_s"] for r in rows[(arch, 1)]])
        for ranks in (1, 2, "2y"):
            rs = rows[(arch, ranks)]
            sps, ms, ar = (med([r[k] for r in rs]) for k in ("steps_per_s", "step_ms", "allreduce_ms"))
            label = "2, yielding" if ranks == "2y" else ranks
            out.append(f"| {name} ({rs[0]['grad_bytes'] / 1e6:.2f} MB of gradients) | {label} | {sps:.1f} | "
                       f"{ms:.2f} ms | {ar:.2f} ms | {100 * ar / ms:.0f}% | {sps / one:.2f}x |")
    out += ["", "The all-reduce per step is measured inside nb_dist_allreduce_grads: it includes the wait for the "
            "slower rank, so on a busy machine it is mostly the other rank's lateness, not the transfer. "
            "\"2, yielding\" runs `mpirun --mca mpi_yield_when_idle 1 --bind-to none`: a waiting rank gives its core "
            "away instead of spinning, and no rank is pinned to a core that other work holds.", "",
            "The all-reduce alone (nb_dist_sum of doubles, 2 ranks, best of many calls, median over repetitions):", "",
            "| bytes | " + " | ".join(f"{b:,}" for b in sorted(sweep)) + " |",
            "|---|" + "---|" * len(sweep),
            "| µs | " + " | ".join(f"{med(sweep[b]):.1f}" for b in sorted(sweep)) + " |", ""]
    text = "\n".join(out) + "\n"
    old = open(a.out).read() if os.path.exists(a.out) else ""
    keep = old.split("\n" + HEADING)[0].rstrip("\n") if HEADING in old else old.rstrip("\n")
    with open(a.out, "w") as f:
        f.write((keep + "\n\n" if keep else "") + text)
    print(text)
    print(json.dumps({"rows": {f"{k[0]}/{k[1]}": v for k, v in rows.items()}, "sweep": sweep, "loads": loads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
