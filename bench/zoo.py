#!/usr/bin/python3
"""The zoo on both sides: every variant trained by nabla (`nabla train`, then `nabla evaluate
--k 1000` for the importance-sampled log p(x)) and by its PyTorch twin (bench/torch_zoo.py), with
the same epochs, threads, data and seed, the two sides run back to back (alternating which goes
first). Writes the "## Zoo" section of bench/RESULTS.md (the other sections stay) and prints it.

    bench/zoo.sh                       # installs what it needs, builds, runs every variant
    bench/zoo.py --quick               # 2000 training images, 1 epoch: checks the runner works
    bench/zoo.py --variants vae,iwae5,iwae50 --epochs 10 --threads 2
    bench/zoo.py --seed-check wae,infovae --seeds 4   # adds their bounds over 4 seeds
"""
import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time

import peer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADING = "## Zoo"

# variant: (label, nabla train flags, torch_zoo.py flags). The spec's values are given explicitly
# on both sides, so neither leans on the other's defaults.
VARIANTS = {
    "vae": ("VAE (ELBO)", ["--model", "vae"], ["--variant", "vae"]),
    "iwae5": ("IWAE-5", ["--model", "vae", "--objective", "iwae", "--samples", "5"], ["--variant", "iwae5"]),
    "iwae50": ("IWAE-50", ["--model", "vae", "--objective", "iwae", "--samples", "50"], ["--variant", "iwae50"]),
    "tcvae": ("β-TCVAE (β 6)", ["--model", "vae", "--objective", "tcvae", "--tc-beta", "6"],
              ["--variant", "tcvae", "--tc-beta", "6"]),
    "wae": ("WAE-MMD (λ 10)", ["--model", "vae", "--objective", "wae", "--mmd-lambda", "10"],
            ["--variant", "wae", "--mmd-lambda", "10"]),
    "infovae": ("InfoVAE (λ 1000)", ["--model", "vae", "--objective", "infovae", "--mmd-lambda", "1000"],
                ["--variant", "infovae", "--mmd-lambda", "1000"]),
    "vqvae": ("VQ-VAE MLP (K 128, Dc 16, L 8)",
              ["--model", "vqvae", "--arch", "mlp", "--codebook", "128", "--code-dim", "16", "--codes", "8",
               "--commitment", "0.25"],
              ["--variant", "vqvae", "--codebook", "128", "--code-dim", "16", "--codes", "8", "--commitment", "0.25"]),
    "vqvae-conv": ("VQ-VAE conv (K 128, Dc 16, L 49)",
                   ["--model", "vqvae", "--arch", "conv", "--codebook", "128", "--code-dim", "16",
                    "--commitment", "0.25"],
                   ["--variant", "vqvae-conv", "--codebook", "128", "--code-dim", "16", "--commitment", "0.25"]),
    "vamp": ("VampPrior (500 pseudo-inputs)", ["--model", "vamp", "--pseudo-inputs", "500"],
             ["--variant", "vamp", "--pseudo-inputs", "500"]),
    "hvae": ("HVAE, two stochastic layers", ["--model", "hvae"], ["--variant", "hvae"]),
}
NO_IS = ("vqvae", "vqvae-conv")  # a point-mass posterior: no importance-sampled log p(x)

# where each side's bound and diagnostics are: metrics.csv columns tried in order (nabla), the
# keys of torch_zoo.py's epoch line (PyTorch)
NABLA_BOUND = ("test_bound", "test_loss")
DIAGNOSTICS = {
    "tcvae": (("MI", ("train_mi", "mi")), ("TC", ("train_tc", "tc")), ("dwKL", ("train_dwkl", "dwkl"))),
    "wae": (("MMD", ("train_mmd", "mmd")),),
    "infovae": (("MMD", ("train_mmd", "mmd")),),
    "vqvae": (("perplexity", ("perplexity",)), ("dead codes", ("dead_codes",))),
    "vqvae-conv": (("perplexity", ("perplexity",)), ("dead codes", ("dead_codes",))),
    "hvae": (("KL z1", ("test_kl1", "kl1")), ("KL z2", ("test_kl2", "kl2")),
             ("active z1", ("active_z1", "active_units_1")), ("active z2", ("active_z2", "active_units_2"))),
}


def nabla_train_cmd(build, variant, a, out):
    cmd = [os.path.join(build, "apps", "nabla"), "train"] + VARIANTS[variant][1] + [
        "--epochs", str(a.epochs), "--threads", str(a.threads), "--data", a.data, "--seed", str(a.seed),
        "--out", out]
    return cmd + (["--train-size", str(a.train_size)] if a.train_size else [])


def nabla_eval_cmd(build, a, out):
    return [os.path.join(build, "apps", "nabla"), "evaluate", "--out", out, "--k", str(a.k),
            "--n", str(a.is_images)]


def torch_cmd(variant, a):
    cmd = ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_zoo.py")] + VARIANTS[variant][2] + [
        "--epochs", str(a.epochs), "--threads", str(a.threads), "--data", a.data, "--seed", str(a.seed),
        "--k", str(0 if variant in NO_IS else a.k), "--is-images", str(a.is_images)]
    return cmd + (["--train-size", str(a.train_size)] if a.train_size else [])


def run(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    return p.stdout


def pick(row, names):
    for n in names:
        if n in row and row[n] not in ("", None):
            try:
                return float(row[n])
            except (TypeError, ValueError):
                return None
    return None


def epoch_seconds(secs):
    """The median epoch, the first dropped (warm-up) when there are more."""
    return statistics.median(secs[1:] if len(secs) > 1 else secs)


def run_nabla(build, variant, a, env, with_is=True):
    out = os.path.join(a.workdir, variant)
    run(nabla_train_cmd(build, variant, a, out), env)
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    r = {"bound": pick(last, NABLA_BOUND), "seconds": epoch_seconds([float(x["seconds"]) for x in rows]),
         "last": last, "ll": None, "se": None}
    if with_is and a.k > 0 and variant not in NO_IS:
        run(nabla_eval_cmd(build, a, out), env)
        with open(os.path.join(out, "evaluate.csv")) as f:
            ev = dict(csv.reader(f))
        r["ll"] = float(ev[f"log_likelihood_k{a.k}"])
        r["se"] = float(ev["log_likelihood_stderr"])
    return r


def run_torch(variant, a, env, with_is=True):
    cmd = torch_cmd(variant, a)
    if not with_is:
        cmd[cmd.index("--k") + 1] = "0"
    rows = [json.loads(l) for l in run(cmd, env).splitlines() if l.startswith("{")]
    epochs = [r for r in rows if "epoch" in r]
    summary = next(r for r in rows if r.get("summary"))
    r = {"bound": epochs[-1]["test_bound"], "seconds": epoch_seconds([e["seconds"] for e in epochs]),
         "last": epochs[-1], "ll": None, "se": None}
    if isinstance(summary.get("is_ll"), float):
        r["ll"], r["se"] = summary["is_ll"], summary["is_se"]
    return r


def agree(n, t, se_n=None, se_t=None):
    """'yes' when the two are within 1% of each other, or (with standard errors) within 2 standard
    errors of their difference; 'no' otherwise."""
    if n is None or t is None:
        return ""
    if abs(n - t) <= 0.01 * abs(t):
        return "yes (1%)"
    if se_n is not None and se_t is not None and abs(n - t) <= 2 * math.hypot(se_n, se_t):
        return "yes (2 se)"
    return "no"


def fmt(v, f="{:.2f}"):
    return "n/a" if v is None else f.format(v)


def section(a, res, started, seeds=None):
    lines = []
    w = lines.append
    w(HEADING)
    w("")
    size = f"the first {a.train_size} training images" if a.train_size else "all 60000 training images"
    evaluate = f", then `nabla evaluate --k {a.k}`" if a.k > 0 else ""
    w(f"`bench/zoo.sh` (`bench/zoo.py`), {started}: every variant of the zoo trained by nabla "
      f"(`nabla train`{evaluate}) and by its PyTorch twin (`bench/torch_zoo.py`), "
      f"back to back: {a.epochs} epoch(s) on {size}, {a.threads} threads, seed {a.seed}, batch 128, Adam 1e-3; "
      f"{a.blas_note}. "
      f"Bound: the variant's own, as a loss in nats per image on the 10000 test images (-ELBO; -IWAE-K for "
      f"IWAE-K; recon + L log K for the VQ-VAE). "
      + (f"IS: log p(x) by importance sampling, k = {a.k}, on the first {a.is_images} test images, ± its "
         f"standard error. " if a.k > 0 else "IS: not run (--k 0). ")
      + f"Seconds: the median training epoch (the first "
      f"dropped when there are more). Agreement: within 1%, or within 2 standard errors of the difference "
      f"(IS); the two sides draw different random numbers, so they agree only up to seed noise.")
    w("")
    w("| variant | nabla bound | PyTorch bound | bound agrees | nabla IS log p(x) | PyTorch IS log p(x) | "
      "IS agrees | nabla s/epoch | PyTorch s/epoch | nabla / PyTorch |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for v, r in res.items():
        n, t = r["nabla"], r["torch"]
        if n is None and t is None:
            continue
        nb = n["bound"] if n else None
        tb = t["bound"] if t else None
        nll = f"{n['ll']:.2f} ± {n['se']:.2f}" if n and n["ll"] is not None else "n/a"
        tll = f"{t['ll']:.2f} ± {t['se']:.2f}" if t and t["ll"] is not None else "n/a"
        ns, ts = (n["seconds"] if n else None), (t["seconds"] if t else None)
        isa = agree(n["ll"], t["ll"], n["se"], t["se"]) if n and t and n["ll"] is not None else ""
        w(f"| {VARIANTS[v][0]} | {fmt(nb)} | {fmt(tb)} | {agree(nb, tb)} | {nll} | {tll} | {isa or 'n/a'} | "
          f"{fmt(ns)} | {fmt(ts)} | {fmt(ns / ts) if ns and ts else ''} |")
    failed = [(v, side, r[side + "_error"]) for v, r in res.items() for side in ("nabla", "torch")
              if r.get(side + "_error")]
    iw = [v for v in ("vae", "iwae5", "iwae50") if v in res]
    if len(iw) > 1:
        w("")
        w("IWAE: the bound tightens with K and the model it trains has a higher log p(x) (IS, the same "
          "estimator for all three):")
        w("")
        w("| side | " + " | ".join(f"{VARIANTS[v][0]} bound" for v in iw) + " | " +
          " | ".join(f"{VARIANTS[v][0]} IS log p(x)" for v in iw) + " |")
        w("|---|" + "---|" * (2 * len(iw)))
        for side, name in (("nabla", "nabla"), ("torch", "PyTorch")):
            rs = [res[v][side] for v in iw]
            w(f"| {name} | " + " | ".join(fmt(r["bound"]) if r else "" for r in rs) + " | " +
              " | ".join(f"{r['ll']:.2f} ± {r['se']:.2f}" if r and r["ll"] is not None else "" for r in rs) + " |")
    diag = [v for v in res if v in DIAGNOSTICS]
    if diag:
        w("")
        w("Diagnostics after the last epoch (training-epoch means for MI/TC/dwKL and MMD, the epoch's code "
          "usage for the VQ-VAE before its dead codes are reset, the test set for the HVAE's layers):")
        w("")
        w("| variant | diagnostic | nabla | PyTorch |")
        w("|---|---|---|---|")
        for v in diag:
            for label, names in DIAGNOSTICS[v]:
                n, t = res[v]["nabla"], res[v]["torch"]
                w(f"| {VARIANTS[v][0]} | {label} | {fmt(pick(n['last'], names)) if n else ''} | "
                  f"{fmt(pick(t['last'], names)) if t else ''} |")
    if seeds:
        w("")
        ss = seeds[next(iter(seeds))]["seeds"]
        w(f"Bounds over seeds {ss[0]}-{ss[-1]} (the same recipe, the bound alone): a single run's bound carries "
          f"its seed's noise, so these compare the two sides' means over the seeds, ± the standard error of the "
          f"mean (agreement as above, with those standard errors):")
        w("")
        w("| variant | nabla bounds | PyTorch bounds | nabla mean | PyTorch mean | difference | agrees |")
        w("|---|---|---|---|---|---|---|")
        for v, r in seeds.items():
            n, t = r["nabla"], r["torch"]
            if len(n) < 2 or len(t) < 2:
                continue
            mn, mt = statistics.mean(n), statistics.mean(t)
            sn, st = statistics.stdev(n) / math.sqrt(len(n)), statistics.stdev(t) / math.sqrt(len(t))
            w(f"| {VARIANTS[v][0]} | {', '.join(fmt(x) for x in n)} | {', '.join(fmt(x) for x in t)} | "
              f"{mn:.2f} ± {sn:.2f} | {mt:.2f} ± {st:.2f} | {100 * (mn - mt) / mt:+.2f}% | {agree(mn, mt, sn, st)} |")
    if failed:
        w("")
        for v, side, err in failed:
            w(f"- {VARIANTS[v][0]}, {'nabla' if side == 'nabla' else 'PyTorch'}: did not run "
              f"({err.splitlines()[0][:200]}).")
    return "\n".join(lines) + "\n"


def write_section(path, text):
    """Puts the Zoo section in place of the old one, before the data-parallel section (which
    bench/dist.py writes to the end of the file), or at the end."""
    old = open(path).read() if os.path.exists(path) else ""
    if HEADING + "\n" in old:
        head, rest = old.split("\n" + HEADING + "\n", 1)
        tail = rest[rest.index("\n## "):] if "\n## " in rest else ""
        new = head.rstrip("\n") + "\n\n" + text + tail
    elif "\n## Data-parallel training on MPI" in old:
        head, tail = old.split("\n## Data-parallel training on MPI", 1)
        new = head.rstrip("\n") + "\n\n" + text + "\n## Data-parallel training on MPI" + tail
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + text
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-size", type=int, default=0, help="the first N training images (0: all)")
    ap.add_argument("--k", type=int, default=1000, help="importance samples of log p(x)")
    ap.add_argument("--is-images", type=int, default=1000, help="test images of log p(x)")
    ap.add_argument("--sides", default="nabla,torch", help="nabla, torch or both")
    ap.add_argument("--quick", action="store_true", help="2000 training images, 1 epoch: a smoke test")
    ap.add_argument("--workdir", default=None, help="nabla's run directories [BUILD/zoo]")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--seed-check", default="wae,infovae",
                    help="comma-separated variants also trained with --seeds seeds (none: \"\")")
    # a WAE's 1-epoch bound moves by 2.5 nats (sd) from seed to seed on either side: over 4 seeds
    # nabla's mean once sat +1% above PyTorch's by chance (28 seeds: -0.05%)
    ap.add_argument("--seeds", type=int, default=16, help="seeds of --seed-check: --seed, --seed + 1, ...")
    a = ap.parse_args()
    if a.quick:
        a.epochs, a.train_size = 1, 2000
    a.workdir = a.workdir or os.path.join(a.build, "zoo")
    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    sides = a.sides.split(",")
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "ACTIVE"))
    a.blas_note = "PyTorch not run"
    if "torch" in sides:
        env, a.blas_note = peer.openblas_env(env)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res = {}
    for i, v in enumerate(variants):
        r = res[v] = {"nabla": None, "torch": None}
        order = ("nabla", "torch") if i % 2 == 0 else ("torch", "nabla")
        for side in order:
            if side not in sides:
                continue
            try:
                r[side] = run_nabla(a.build, v, a, env) if side == "nabla" else run_torch(v, a, env)
            except (RuntimeError, OSError, KeyError, ValueError, StopIteration) as e:
                r[side + "_error"] = str(e) or type(e).__name__
            got = r[side]
            print(f"{v:11s} {side:5s} " + (f"bound {fmt(got['bound'])}  IS {fmt(got['ll'])}  "
                                           f"{got['seconds']:.2f} s/epoch" if got else "failed"),
                  file=sys.stderr, flush=True)
    seeds = {}
    for v in [v for v in a.seed_check.split(",") if v]:
        if v not in VARIANTS:
            ap.error(f"--seed-check: unknown variant {v}")
        if v not in variants:  # checked only beside its main run
            continue
        r = seeds[v] = {"seeds": [a.seed + i for i in range(a.seeds)], "nabla": [], "torch": []}
        for s in r["seeds"]:
            b = argparse.Namespace(**vars(a))
            b.seed, b.workdir = s, os.path.join(a.workdir, f"seed{s}")
            for side in sides:
                if s == a.seed and res.get(v, {}).get(side):  # the main run's, not run again
                    r[side].append(res[v][side]["bound"])
                    continue
                try:
                    got = run_nabla(a.build, v, b, env, False) if side == "nabla" else run_torch(v, b, env, False)
                    r[side].append(got["bound"])
                    print(f"{v:11s} {side:5s} seed {s} bound {fmt(got['bound'])}", file=sys.stderr, flush=True)
                except (RuntimeError, OSError, KeyError, ValueError, StopIteration) as e:
                    print(f"{v:11s} {side:5s} seed {s} failed: {e}", file=sys.stderr, flush=True)
    text = section(a, res, started, seeds)
    write_section(a.out, text)
    print(text)
    return 0 if all(r.get(s) for r in res.values() for s in sides) else 1


if __name__ == "__main__":
    sys.exit(main())
