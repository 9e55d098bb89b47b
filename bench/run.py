#!/usr/bin/python3
"""nabla against PyTorch on the same CPU, the same data, model, recipe and threads, interleaved.

Each repetition runs nabla and PyTorch back to back (alternating which goes first) for every row,
so both see the same machine state; the table reports medians and the nabla/PyTorch ratio.
Writes the table to bench/RESULTS.md (or --out) and prints it.

    bench/run.sh                 # installs what it needs, builds, runs the full comparison
    bench/run.py --smoke         # tiny sizes, nabla only (run by meson test so it cannot rot)
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import peer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def isa_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(l for l in f if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    have = [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if x in flags]
    return ", ".join(have)


def run_json(cmd, env=None, timeout=3600):
    """Runs cmd, returns (list of JSON objects it printed, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return rows, wall


def nabla_cmd(build, arch, epochs, threads, extra):
    return [os.path.join(build, "bench", "bench_vae"), "--arch", arch, "--epochs", str(epochs),
            "--threads", str(threads)] + extra


def torch_cmd(arch, epochs, threads, extra):
    return ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_vae.py"), "--arch", arch,
            "--epochs", str(epochs), "--threads", str(threads)] + extra


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions of every timing row")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the loss-equivalence row (MLP)")
    ap.add_argument("--timing-epochs", type=int, default=2, help="epochs per timing run (the first is dropped)")
    ap.add_argument("--conv-steps", type=int, default=100, help="steps per conv timing epoch")
    ap.add_argument("--is-images", type=int, default=1000, help="test images of the importance-sampling rows")
    ap.add_argument("--is-epochs", type=int, default=3, help="epochs of the checkpoint the IS rows evaluate")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, nabla only: checks the runner works")
    args = ap.parse_args()

    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "ACTIVE"))
    if args.smoke:
        rows, _ = run_json(nabla_cmd(args.build, "mlp", 1, 1, ["--train-size", "512", "--steps", "4"]), env)
        rows2, _ = run_json(nabla_cmd(args.build, "conv", 1, 1, ["--train-size", "256", "--steps", "2", "--no-eval"]), env)
        floor, _ = run_json([os.path.join(args.build, "bench", "bench_vae"), "--gemm-floor", "--threads", "1"], env)
        layers, _ = run_json([os.path.join(args.build, "bench", "bench_layers"), "--threads", "1", "--reps", "2"], env)
        ok = rows and "test_loss" in rows[0] and rows2 and floor and "gemm_floor_ms" in floor[0] and len(layers) == 6
        print("1..1")
        print(("ok" if ok else "not ok") + f" 1 - bench runner smoke: nabla MLP and conv steps ran, "
              f"{rows[0].get('seconds', 0):.3f} s for {rows[0].get('steps', 0)} MLP steps")
        return 0 if ok else 1
    env, blas_note = peer.openblas_env(env)

    results = {}  # key -> {"nabla": [...], "torch": [...]}

    def add(key, side, value):
        results.setdefault(key, {"nabla": [], "torch": []})[side].append(value)

    for rep in range(args.reps):
        for threads in (1, 2):
            for arch in ("mlp", "conv"):
                extra = ["--no-eval"] + (["--steps", str(args.conv_steps)] if arch == "conv" else [])
                sides = [("nabla", nabla_cmd(args.build, arch, args.timing_epochs, threads, extra)),
                         ("torch", torch_cmd(arch, args.timing_epochs, threads, extra))]
                if rep % 2:
                    sides.reverse()
                for side, cmd in sides:
                    rows, _ = run_json(cmd, env)
                    epochs = [r for r in rows if "epoch" in r][1:] or [r for r in rows if "epoch" in r]
                    summary = next(r for r in rows if r.get("summary"))
                    if side == "torch" and summary.get("blas") not in ("openblas", "mkl", "blis"):
                        sys.exit(f"PyTorch runs on {summary.get('blas')} BLAS; install libopenblas0-openmp")
                    per_step = statistics.mean(r["seconds"] / r["steps"] for r in epochs)
                    add((arch, threads, "step_ms"), side, 1e3 * per_step)
                    add((arch, threads, "epoch_s"), side, per_step * 469)
                    for part in ("ms_forward", "ms_backward", "ms_optimizer"):
                        add((arch, threads, part), side, statistics.mean(r[part] for r in epochs))
                    add((arch, threads, "rss_mb"), side, summary["peak_rss_mb"])
            print(f"rep {rep + 1}/{args.reps}, threads {threads} done", file=sys.stderr, flush=True)
        for threads in (1, 2):
            floor, _ = run_json([os.path.join(args.build, "bench", "bench_vae"), "--gemm-floor", "--threads", str(threads)], env)
            add(("mlp", threads, "gemm_floor_ms"), "nabla", floor[0]["gemm_floor_ms"])
        # single layers at the VAE's shapes, forward and backward
        sides = [("nabla", [os.path.join(args.build, "bench", "bench_layers"), "--threads", "2"]),
                 ("torch", ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_layers.py"), "--threads", "2"])]
        for side, cmd in (sides if rep % 2 == 0 else sides[::-1]):
            rows, _ = run_json(cmd, env)
            for r in rows:
                add(("layer", r["layer"], "fwd"), side, r["ms_forward"])
                add(("layer", r["layer"], "bwd"), side, r["ms_backward"])

    # bf16 and the large step: the MLP VAE at 784-400-20 (batch 128) and 784-2000-20 (batch 512),
    # f32 and bf16, 1 thread, against PyTorch in f32 and under torch.autocast(bfloat16)
    peak = run_json([os.path.join(args.build, "bench", "bench_peak")], env)[0][0]["fma_peak_gflops"]
    shapes = (("small", 400, 128, 200), ("large", 2000, 512, 40))
    for rep in range(args.reps):
        for name, hidden, batch, steps in shapes:
            for prec in ("f32", "bf16"):
                extra = ["--no-eval", "--steps", str(steps), "--hidden", str(hidden), "--batch", str(batch),
                         "--precision", prec]
                sides = [("nabla", nabla_cmd(args.build, "mlp", 2, 1, extra)),
                         ("torch", torch_cmd("mlp", 2, 1, extra))]
                for side, cmd in (sides if rep % 2 == 0 else sides[::-1]):
                    rows, _ = run_json(cmd, env)
                    ep = [r for r in rows if "epoch" in r][-1]
                    add(("prec", name, prec), side, 1e3 * ep["seconds"] / ep["steps"])

    # importance sampling: the same IS estimate from the same weights (a nabla checkpoint of the
    # MLP VAE, which torch_is.py reads), at k = 100 and 1000, interleaved
    ckpt_dir = os.path.join(args.build, "bench-is")
    subprocess.run([os.path.join(args.build, "apps", "nabla"), "train", "--epochs", str(args.is_epochs),
                    "--out", ckpt_dir, "--threads", "2"], check=True, capture_output=True, env=env)
    ckpt = os.path.join(ckpt_dir, "checkpoint.safetensors")
    for rep in range(args.reps):
        for threads in (1, 2):
            for k in (100, 1000):
                common = [ckpt, "--k", str(k), "--images", str(args.is_images), "--threads", str(threads)]
                sides = [("nabla", [os.path.join(args.build, "bench", "bench_is")] + common),
                         ("torch", ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_is.py")] + common)]
                for side, cmd in (sides if rep % 2 == 0 else sides[::-1]):
                    r = run_json(cmd, env)[0][0]
                    add(("is", threads, k, "s"), side, r["seconds"])
                    add(("is", threads, k, "ll"), side, r["ll"])
                    add(("is", threads, k, "se"), side, r["se"])
                fl = run_json([os.path.join(args.build, "bench", "bench_is"), "--floor"] + common[1:], env)[0][0]
                add(("is", threads, k, "floor"), "nabla", fl["gemm_floor_s"])

    # the loss-equivalence row: the full MLP recipe for --epochs, once each, same seed
    curves = {}
    for side, cmd in (("nabla", nabla_cmd(args.build, "mlp", args.epochs, 2, [])),
                      ("nabla_bf16", nabla_cmd(args.build, "mlp", args.epochs, 2, ["--precision", "bf16"])),
                      ("torch", torch_cmd("mlp", args.epochs, 2, []))):
        rows, _ = run_json(cmd, env)
        curves[side] = [r["test_loss"] for r in rows if "test_loss" in r]
        if side != "nabla_bf16":
            add(("mlp", 2, "rss_full_mb"), side, next(r for r in rows if r.get("summary"))["peak_rss_mb"])

    lines = []
    w = lines.append
    w("# nabla against PyTorch")
    w("")
    w(f"Machine: {cpu_model()}, {os.cpu_count()} cores ({isa_flags()}); "
      f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `bench/run.sh`.")
    w(f"Peer: PyTorch (Debian python3-torch) on OpenBLAS ({blas_note}). Both sides: Fashion-MNIST, batch 128, Adam 1e-3, "
      f"seed 1, threads set explicitly. {args.reps} interleaved repetitions; medians; "
      f"the first epoch of every timing run is dropped (warm-up).")
    w("")
    w("| row | threads | nabla | PyTorch | nabla / PyTorch |")
    w("|---|---|---|---|---|")

    def row(name, key, unit, fmt="{:.3f}"):
        r = results.get(key)
        if not r:
            return
        n, t = med(r["nabla"]), med(r["torch"])
        ratio = f"{n / t:.2f}" if r["torch"] else ""
        tt = (fmt.format(t) + " " + unit) if r["torch"] else ""
        w(f"| {name} | {key[1]} | {fmt.format(n)} {unit} | {tt} | {ratio} |")

    for arch, label in (("mlp", "MLP VAE 784-400-20"), ("conv", "conv VAE (32-64, k4 s2)")):
        for threads in (1, 2):
            row(f"{label}: epoch (469 steps)", (arch, threads, "epoch_s"), "s")
            row(f"{label}: step", (arch, threads, "step_ms"), "ms")
            for part, pname in (("ms_forward", "forward"), ("ms_backward", "backward"), ("ms_optimizer", "optimizer")):
                row(f"{label}: {pname}", (arch, threads, part), "ms")
            row(f"{label}: peak RSS (timing run)", (arch, threads, "rss_mb"), "MB", "{:.0f}")
    row("MLP VAE: peak RSS (10-epoch run with evaluation)", ("mlp", 2, "rss_full_mb"), "MB", "{:.0f}")
    for threads in (1, 2):
        fl = results.get(("mlp", threads, "gemm_floor_ms"))
        st = results.get(("mlp", threads, "step_ms"))
        if fl and st:
            w(f"| MLP VAE step against its GEMMs alone (dnnl_sgemm, same shapes) | {threads} | {med(st['nabla']):.3f} ms | "
              f"floor {med(fl['nabla']):.3f} ms | {med(st['nabla']) / med(fl['nabla']):.2f} of the floor |")
    s1, s2 = results.get(("mlp", 1, "step_ms")), results.get(("mlp", 2, "step_ms"))
    if s1 and s2:
        w(f"| MLP VAE step, 1 thread / 2 threads | 1→2 | {med(s1['nabla']) / med(s2['nabla']):.2f}x | "
          f"{med(s1['torch']) / med(s2['torch']):.2f}x | |")
    if any(k[0] == "prec" for k in results):
        w("")
        w(f"Precision, 1 thread, ms per MLP VAE training step (median). bf16: Linear products on bf16 inputs, "
          f"f32 accumulation, weights, optimizer and loss; PyTorch: `torch.autocast('cpu', dtype=torch.bfloat16)`. "
          f"The FMA peak of one core, measured by bench_peak: {peak:.1f} GFLOP/s.")
        w("")
        w("| model, batch | nabla f32 | nabla bf16 | bf16 speed-up | PyTorch f32 | PyTorch autocast | nabla/PyTorch f32 | nabla/PyTorch bf16 | nabla f32 GFLOP/s (% of peak) |")
        w("|---|---|---|---|---|---|---|---|---|")
        for name, hidden, batch, _ in shapes:
            f, b = results.get(("prec", name, "f32")), results.get(("prec", name, "bf16"))
            if not f or not b:
                continue
            # fwd 2·B·(784·H + H·40 + 20·H + H·784); backward twice that, less the input's gradient
            fwd = 2 * batch * (784 * hidden + hidden * 40 + 20 * hidden + hidden * 784)
            flop = 3 * fwd - 2 * batch * 784 * hidden
            nf, nbf, tf, tb = med(f["nabla"]), med(b["nabla"]), med(f["torch"]), med(b["torch"])
            rate = flop / (nf * 1e-3) * 1e-9
            w(f"| 784-{hidden}-20, {batch} | {nf:.2f} | {nbf:.2f} | {nf / nbf:.2f}x | {tf:.2f} | {tb:.2f} | "
              f"{nf / tf:.2f} | {nbf / tb:.2f} | {rate:.1f} ({100 * rate / peak:.1f}%) |")
    if any(k[0] == "is" for k in results):
        w("")
        w(f"Importance-sampled log p(x) of the first {args.is_images} test images (`nabla evaluate`'s "
          f"estimator), the same weights on both sides (a {args.is_epochs}-epoch checkpoint); the floor is the "
          f"decoder's and encoder's GEMMs alone on dnnl_sgemm:")
        w("")
        w("| k | threads | nabla | PyTorch | nabla / PyTorch | GEMM floor | nabla / floor | estimate, nabla | estimate, PyTorch |")
        w("|---|---|---|---|---|---|---|---|---|")
        for threads in (1, 2):
            for k in (100, 1000):
                t, fl = results.get(("is", threads, k, "s")), results.get(("is", threads, k, "floor"))
                ll, se = results.get(("is", threads, k, "ll")), results.get(("is", threads, k, "se"))
                if not t:
                    continue
                n, p = med(t["nabla"]), med(t["torch"])
                w(f"| {k} | {threads} | {n:.2f} s | {p:.2f} s | {n / p:.2f} | {med(fl['nabla']):.2f} s | "
                  f"{n / med(fl['nabla']):.2f} | {med(ll['nabla']):.2f} ± {med(se['nabla']):.2f} | "
                  f"{med(ll['torch']):.2f} ± {med(se['torch']):.2f} |")
    w("")
    w("Single layers at the VAE's shapes (batch 128, 2 threads), median milliseconds:")
    w("")
    w("| layer | nabla forward | PyTorch forward | ratio | nabla backward | PyTorch backward | ratio |")
    w("|---|---|---|---|---|---|---|")
    for key in [k for k in results if k[0] == "layer" and k[2] == "fwd"]:
        f, b = results[key], results[("layer", key[1], "bwd")]
        w(f"| {key[1]} | {med(f['nabla']):.3f} | {med(f['torch']):.3f} | {med(f['nabla']) / med(f['torch']):.2f} | "
          f"{med(b['nabla']):.3f} | {med(b['torch']):.3f} | {med(b['nabla']) / med(b['torch']):.2f} |")
    w("")
    w(f"Test -ELBO (nats per image) after each epoch, MLP VAE, 2 threads:")
    w("")
    w("| epoch | " + " | ".join(str(i + 1) for i in range(len(curves.get('nabla', [])))) + " |")
    w("|---|" + "---|" * len(curves.get("nabla", [])))
    for side, name in (("nabla", "nabla"), ("nabla_bf16", "nabla, bf16"), ("torch", "PyTorch")):
        w(f"| {name} | " + " | ".join(f"{v:.2f}" for v in curves.get(side, [])) + " |")
    if curves.get("nabla") and curves.get("torch"):
        n, t = curves["nabla"][-1], curves["torch"][-1]
        w("")
        w(f"After {len(curves['nabla'])} epochs: nabla {n:.2f}, PyTorch {t:.2f} nats "
          f"({100 * (n - t) / t:+.2f}%). The two draw different random numbers (initialisation, "
          f"shuffling, ε), so single runs differ by their seed noise.")
    if curves.get("nabla") and curves.get("nabla_bf16"):
        n, b = curves["nabla"][-1], curves["nabla_bf16"][-1]
        w(f"bf16 against f32, the same seed and draws: {b:.2f} against {n:.2f} nats ({100 * (b - n) / n:+.2f}%).")
    text = "\n".join(lines) + "\n"
    # the sections other scripts write (bench/zoo.py's zoo, bench/dist.py's data-parallel
    # training) stay as they were
    old = open(args.out).read() if os.path.exists(args.out) else ""
    if "\n## " in old:
        text += old[old.index("\n## "):]
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
