#!/usr/bin/env python3
"""Runs every `nabla` command at tiny size and checks what it wrote: PNGs decode with the right
size and carry their title and labels, CSVs have the right rows, report links resolve and its
sections come in order (every lesson of compare, as MLPs and as conv nets), bad usage exits 2.
Prints TAP.

    tests/test_apps.py build/apps/nabla [data dir]
"""
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

NABLA = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
TINY = ["--data", DATA, "--train-size", "512", "--test-size", "256", "--epochs", "1", "--batch", "64",
        "--threads", "2"]
count = failed = 0


def ok(cond, msg):
    global count, failed
    count += 1
    if not cond:
        failed += 1
    print(f"{'' if cond else 'not '}ok {count} - {msg}", flush=True)
    return cond


ENV = dict(os.environ)


def run(*args, expect=0):
    p = subprocess.run([NABLA, *args], capture_output=True, text=True, timeout=600, env=ENV)
    if p.returncode != expect:
        print(f"# nabla {' '.join(args)} -> {p.returncode}\n# " + p.stderr[-1500:].replace("\n", "\n# "))
    return p


def png_size(path):
    """Width, height, channels of a PNG, checking every chunk's CRC and that the image data
    inflates to the size the header promises; None for a missing or broken file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return None
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype, 0)
    if depth != 8 or len(zlib.decompress(idat)) != h * (1 + w * channels):
        return None
    return w, h, channels


def png_pixels(path):
    """The grey or RGB rows of an 8-bit PNG (filters undone), as lists of bytes."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, w, h, ch = 8, b"", 0, 0, 1
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, _, ctype = struct.unpack(">IIBB", body[:10])
            ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * ch, [], bytearray(w * ch)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return rows


def cells_drawn(path, n_rows, n_cols, pad=2, scale=2, size=28):
    """How many cells of a grey image grid hold a picture: not one flat value (an empty cell is
    all border colour, a dead decoder all black). The grid sits in the picture's bottom-right
    corner (apps/image.h), each row a grid of its own, below the title and right of the labels."""
    rows, cell, drawn = png_pixels(path), size * scale, 0
    w, h = len(rows[0]), len(rows)
    sw, sh = stack([1] * n_rows, n_cols)
    ox, oy = w - sw, h - sh
    for r in range(n_rows):
        for c in range(n_cols):
            y0, x0 = oy + pad + r * (cell + 2 * pad), ox + pad + c * (cell + pad)
            values = {rows[y][x] for y in range(y0, y0 + cell) for x in range(x0, x0 + cell)}
            drawn += len(values) > 8
    return drawn


def csv_rows(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def png_dims(path):
    sz = png_size(path)
    return sz[:2] if sz else None


def grid(n_rows, n_cols, pad=2, scale=2, size=28):
    """The size of an image grid (apps/image.h): cells of size*scale with pad around and between."""
    return n_cols * size * scale + (n_cols + 1) * pad, n_rows * size * scale + (n_rows + 1) * pad


def stack(rows, n_cols, pad=2):
    """Grids stacked vertically: each keeps its border, with one more pad between grids."""
    return grid(1, n_cols)[0], sum(grid(r, n_cols)[1] for r in rows) + (len(rows) - 1) * pad


def labelled(path, rows, n_cols, row_labels=True):
    """True when the PNG is the stack of `rows` grids with a title above (dark text in the band
    over the stack) and, if asked, labels on its left (dark text left of it)."""
    sz = png_size(path)
    if not sz:
        return False
    sw, sh = stack(rows, n_cols)
    w, h = sz[:2]
    if w < sw or h <= sh:
        return False
    px = png_pixels(path)
    ch = sz[2]
    dark = lambda y0, y1, x0, x1: sum(1 for y in range(y0, y1) for x in range(x0, x1) if px[y][x * ch] < 100)
    title = dark(0, h - sh, 0, w) > 30
    labels = w - sw > 8 and dark(h - sh, h, 0, w - sw) > 30
    return title and (labels or not row_labels)


def sections(path):
    """The numbers of the report's '## N.' headings, in the order they appear."""
    try:
        text = open(path).read()
    except OSError:
        return []
    return [int(l[3:].split(".")[0]) for l in text.splitlines() if l.startswith("## ") and l[3:4].isdigit()]


def links_ok(outdir):
    report = os.path.join(outdir, "report.md")
    text = open(report).read() if os.path.exists(report) else ""
    links = [l.split("](", 1)[1].split(")", 1)[0] for l in text.splitlines() if "](" in l]
    return links, all(png_size(os.path.join(outdir, l)) for l in links)


def main():
    if not os.path.isdir(DATA):
        print(f"1..1\nok 1 # SKIP {DATA} not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="nb_apps_")
    ENV["XDG_STATE_HOME"] = os.path.join(tmp, "state")  # the last run is remembered here, not in $HOME
    try:
        out = os.path.join(tmp, "vae")
        p = run("train", *TINY, "--out", out)
        ok(p.returncode == 0, "train: a VAE for one epoch on 512 images")
        rows = csv_rows(os.path.join(out, "metrics.csv"))
        ok(len(rows) == 1 and float(rows[0]["test_loss"]) > 0, f"train: metrics.csv has 1 epoch row ({len(rows)})")
        ok(os.path.exists(os.path.join(out, "checkpoint.safetensors")) and os.path.exists(os.path.join(out, "config.json")),
           "train: checkpoint.safetensors and config.json")
        sz = png_size(os.path.join(out, "loss_curve.png"))
        ok(sz is not None and sz[0] > 300 and sz[1] > 150, f"train: loss_curve.png decodes ({sz})")

        p = run("reconstruct", "--out", out, "--data", DATA, "--n", "6", "--rows", "2")
        ok(p.returncode == 0 and labelled(os.path.join(out, "reconstruction.png"), [1] * 4, 6),
           "reconstruct: 4 rows of 6 images, titled, each row labelled")
        ok(len(csv_rows(os.path.join(out, "reconstruction.csv"))) == 12, "reconstruct: 12 CSV rows")

        p = run("sample", "--n", "5")
        ok(p.returncode == 0 and labelled(os.path.join(out, "samples.png"), [5], 5),
           "sample without --out: the last run's model, a titled 5x5 grid beside it")
        ok(len(csv_rows(os.path.join(out, "samples.csv"))) == 25, "sample: 25 CSV rows")
        ok(p.returncode == 0 and cells_drawn(os.path.join(out, "samples.png"), 5, 5) == 25,
           "sample: every cell of the grid holds a decoded image")
        saved = ENV["XDG_STATE_HOME"]
        ENV["XDG_STATE_HOME"] = os.path.join(tmp, "nothing")
        p = run("sample", expect=2)
        ok(p.returncode == 2 and "--out DIR" in p.stderr, f"sample with no run known: says what to pass ({p.stderr[:70]})")
        ENV["XDG_STATE_HOME"] = saved
        p = run("sample", "--latent", "3", expect=2)
        ok(p.returncode == 2 and "does not apply" in p.stderr, "sample --latent: refused, the model's own is used")
        p = run("sample", "--help")
        ok(p.returncode == 0 and "--seed" in p.stdout and "--latent" not in p.stdout and "--preset" not in p.stdout,
           "sample --help lists only the options it uses")

        p = run("interpolate", "--out", out, "--data", DATA, "--n", "7")
        ok(p.returncode == 0 and labelled(os.path.join(out, "interpolation.png"), [1], 7),
           "interpolate: one labelled row of 7 under a title")
        ok(len(csv_rows(os.path.join(out, "interpolation.csv"))) == 7, "interpolate: 7 CSV rows")

        p = run("scatter", "--out", out, "--data", DATA, "--n", "200")
        ok(p.returncode == 0 and png_size(os.path.join(out, "scatter.png")) is not None, "scatter: PCA of 20-D codes drawn")
        ok(len(csv_rows(os.path.join(out, "scatter.csv"))) == 200, "scatter: 200 CSV rows")

        p = run("evaluate", "--out", out, "--data", DATA, "--k", "20", "--n", "64")
        rows = {r["metric"]: float(r["value"]) for r in csv_rows(os.path.join(out, "evaluate.csv"))}
        ok(p.returncode == 0 and rows.get("log_likelihood_k20", 0) < 0 and
           -rows["log_likelihood_k20"] <= rows["elbo_loss"] * 1.02 and "kl_dim_19" in rows,
           f"evaluate: metrics, KL per dimension and log p(x) ({rows.get('log_likelihood_k20')}) near the ELBO")

        p = run("manifold", "--out", out)
        ok(p.returncode == 1 and "latent 2" in p.stderr, "manifold refuses a 20-D latent with a clear message")
        out2 = os.path.join(tmp, "vae2d")
        p = run("train", *TINY, "--latent", "2", "--out", out2)
        p = run("manifold", "--out", out2, "--n", "8")
        ok(p.returncode == 0 and labelled(os.path.join(out2, "manifold.png"), [1] * 8, 8), "manifold: an 8x8 grid, rows labelled")
        ok(len(csv_rows(os.path.join(out2, "manifold.csv"))) == 64, "manifold: 64 CSV rows")
        ok(p.returncode == 0 and cells_drawn(os.path.join(out2, "manifold.png"), 8, 8) == 64,
           "manifold: every cell holds a decoded image")

        out3 = os.path.join(tmp, "cvae")
        p = run("train", *TINY, "--model", "cvae", "--out", out3)
        p = run("sample", "--out", out3, "--n", "4")
        ok(p.returncode == 0 and labelled(os.path.join(out3, "samples_by_class.png"), [1] * 10, 4),
           "sample: a CVAE draws one labelled row per class (10 x 4)")

        # the objectives: evaluate measures the one the model trained on beside the ELBO
        for obj, extra, want in (("iwae", ["--samples", "3"], "-IWAE-3"), ("tcvae", [], "MI "), ("wae", [], "MMD ")):
            outo = os.path.join(tmp, "obj_" + obj)
            p = run("train", *TINY, "--objective", obj, *extra, "--out", outo)
            ok(p.returncode == 0, f"train --objective {obj}: one epoch ({p.stderr.strip()[-200:]})")
            p = run("evaluate", "--out", outo, "--data", DATA, "--k", "20", "--n", "64")
            rows = {r["metric"]: float(r["value"]) for r in csv_rows(os.path.join(outo, "evaluate.csv"))}
            line = next((l for l in p.stdout.splitlines() if l.startswith("objective")), "")
            if obj == "iwae":  # -ELBO >= -IWAE-3 >= -log p(x), up to the estimates' noise
                ll = rows.get("log_likelihood_k20", 0)
                ok(p.returncode == 0 and want in line and rows["bound"] < rows["elbo_loss"] and -ll < rows["bound"] * 1.02,
                   f"evaluate --objective iwae: -ELBO {rows['elbo_loss']:.2f} > -IWAE-3 {rows['bound']:.2f} >~ -log p(x) {-ll:.2f}")
            else:
                ok(p.returncode == 0 and want in line and abs(rows["bound"] - rows["elbo_loss"]) < 1e-3,
                   f"evaluate --objective {obj}: its terms ({line}), the bound is the ELBO")

        # the zoo's kinds: train, evaluate, reconstruct, sample
        for kind, extra in (("vqvae", []), ("vqvae", ["--arch", "conv"]), ("vamp", ["--pseudo-inputs", "50"]),
                            ("hvae", [])):
            name = kind + "".join(extra).replace("--", "_")
            outk = os.path.join(tmp, name)
            p = run("train", *TINY, "--model", kind, *extra, "--out", outk)
            line = next((l for l in p.stdout.splitlines() if l.startswith("epoch")), "")
            want = {"vqvae": "dead codes", "vamp": "-ELBO", "hvae": "z2"}[kind]
            ok(p.returncode == 0 and want in line, f"train --model {kind} {' '.join(extra)}: one epoch ({line[:90]})")
            p = run("evaluate", "--out", outk, "--data", DATA, "--k", "20", "--n", "64")
            rows = {r["metric"]: float(r["value"]) for r in csv_rows(os.path.join(outk, "evaluate.csv"))}
            if kind == "vqvae":
                ok(p.returncode == 0 and "perplexity" in p.stdout and "n/a" in p.stdout and rows.get("elbo_loss", 0) > 0
                   and "log_likelihood_k20" not in rows, f"evaluate --model {kind}: the bound, perplexity, log p(x) n/a")
            else:
                ll = rows.get("log_likelihood_k20", 0)
                ok(p.returncode == 0 and ll < 0 and -ll <= rows["elbo_loss"] * 1.05,
                   f"evaluate --model {kind}: -ELBO {rows.get('elbo_loss')} and log p(x) {ll} under its own prior")
            p = run("reconstruct", "--out", outk, "--data", DATA, "--n", "6", "--rows", "2")
            ok(p.returncode == 0 and labelled(os.path.join(outk, "reconstruction.png"), [1] * 4, 6),
               f"reconstruct --model {kind} {' '.join(extra)}: 4 labelled rows of 6")
            p = run("sample", "--out", outk, "--n", "4")
            ok(p.returncode == 0 and cells_drawn(os.path.join(outk, "samples.png"), 4, 4) == 16,
               f"sample --model {kind} {' '.join(extra)}: a 4x4 grid from its prior")

        p = run("traverse", "--out", out, "--data", DATA, "--n", "5", "--eval", "64")
        ok(p.returncode == 0 and labelled(os.path.join(out, "traverse.png"), [1] * 20, 5) and
           len(csv_rows(os.path.join(out, "traverse.csv"))) == 100,
           "traverse: one labelled row per latent dimension (20 x 5), and its CSV")

        out4 = os.path.join(tmp, "dae")
        p = run("train", *TINY, "--model", "dae", "--decoder", "gaussian", "--corrupt", "dropout:0.5", "--out", out4)
        ok(p.returncode == 0, "train: a denoising AE")
        p = run("denoise", "--out", out4, "--data", DATA, "--n", "4", "--eval", "64", "--toy", "--toy-steps", "200")
        rows = csv_rows(os.path.join(out4, "denoise.csv"))
        ok(p.returncode == 0 and labelled(os.path.join(out4, "denoise.png"), [1] * 3, 4) and len(rows) == 1 and
           rows[0]["corruption"] == "dropout:0.5", "denoise: by default only the corruption the model was trained with")
        ok(png_size(os.path.join(out4, "denoise_toy.png")) is not None and "toy DAE: step 200/200" in p.stdout and
           len(csv_rows(os.path.join(out4, "denoise_toy.csv"))) == 17 * 17,
           "denoise --toy: a progress line, the three panels and the map's CSV")
        p = run("denoise", "--out", out4, "--data", DATA, "--n", "4", "--eval", "64", "--all")
        rows = csv_rows(os.path.join(out4, "denoise.csv"))
        ok(p.returncode == 0 and labelled(os.path.join(out4, "denoise.png"), [1] * 18, 4) and len(rows) == 6 and
           all(float(r["squared_error_denoised"]) >= 0 for r in rows), "denoise --all: the six corruptions of the lesson")

        # every lesson of compare, as MLPs and (on a data directory named like MNIST) as conv nets
        mnist = os.path.join(tmp, "mnist")
        os.makedirs(mnist)
        for f in os.listdir(DATA):
            os.symlink(os.path.join(DATA, f), os.path.join(mnist, f))
        for arch, data, size in (("mlp", DATA, ["--train-size", "512", "--test-size", "256"]),
                                 ("conv", mnist, ["--train-size", "128", "--test-size", "64"])):
            outc = os.path.join(tmp, "compare_" + arch)
            args = [a for a in TINY if a not in ("512", "256", "--train-size", "--test-size", "--data", DATA)]
            p = run("compare", *args, *size, "--data", data, "--arch", arch, "--toy-steps", "100", "--codes", "256",
                    "--out", outc)
            ok(p.returncode == 0, f"compare --arch {arch}: the whole lesson at tiny size")
            secs = sections(os.path.join(outc, "report.md"))
            ok(secs == list(range(1, 13)), f"compare --arch {arch}: 12 sections, in order ({secs})")
            links, decode = links_ok(outc)
            ok(len(links) >= 12 and decode, f"compare --arch {arch}: report.md links {len(links)} pictures, all decode")
            text = open(os.path.join(outc, "report.md")).read() if secs else ""
            if arch == "conv":
                ok("MNIST" in text.splitlines()[0] and "garment" not in text and "digit" in text,
                   "compare on MNIST: the title names it, and it speaks of digits, not garments")
            else:
                ok("Fashion-MNIST" in text.splitlines()[0] and "principal angles" in text and "Every dimension" in text
                   or "collapsed" in text, "compare: the data set named, the linear AE's angles, the collapse sentence")

        outd = os.path.join(tmp, "demo")
        p = run("demo", *TINY, "--out", outd)
        ok(p.returncode == 0 and os.path.exists(os.path.join(outd, "report.md")), "demo: runs end to end at tiny size")
        links, decode = links_ok(outd)
        ok(len(links) >= 6 and decode, f"demo: report.md links {len(links)} pictures that decode")
        outm = os.path.join(tmp, "demo_mnist")
        p = run("demo", *TINY, "--data", mnist, "--train-size", "128", "--test-size", "64", "--out", outm)
        title = open(os.path.join(outm, "report.md")).readline() if p.returncode == 0 else ""
        ok("on MNIST" in title, f"demo: the report's title names the data set ({title.strip()})")

        # usage errors and help
        for args, what in ((["train", "--latnet", "3"], "a misspelt flag"), (["train", "--latent", "x"], "a bad value"),
                           (["bogus"], "an unknown command"), (["sample", "--n"], "a flag without its value")):
            p = run(*args, expect=2)
            ok(p.returncode == 2 and p.stderr.strip(), f"{what}: exit 2 and a message ({p.stderr.strip()[:60]})".replace("\n", " "))
        p = run("train", "--preset=aevb", "--help")
        p2 = subprocess.run([NABLA, "train", "--preset=aevb", "--epochs", "0", "--data", DATA, "--train-size", "64",
                             "--test-size", "64", "--out", os.path.join(tmp, "aevb")], capture_output=True, text=True)
        cfg = json.load(open(os.path.join(tmp, "aevb", "config.json"))) if p2.returncode == 0 else {}
        ok(cfg.get("optimizer") == "adagrad" and cfg.get("batch") == 100 and cfg.get("act") == "tanh",
           "--preset=aevb (with =) applies the preset")
        p = run("train", "--help")
        ok(p.returncode == 0 and "--kl-warmup" in p.stdout and "[0.1]" in p.stdout and "0.10000" not in p.stdout,
           "train --help lists the configuration keys, defaults as typed (0.1)")
        p = run("train", *TINY, "--model", "ae", "--decoder", "gaussian", "--out", os.path.join(tmp, "ae"))
        ok(p.returncode == 0 and "squared error per image" in p.stdout, "an AE's epoch line says its unit")
        lines = p.stdout.splitlines()
        ok(any(l.startswith("  step") for l in lines) and lines.index(next(l for l in lines if l.startswith("epoch"))) >
           lines.index(next(l for l in lines if l.startswith("  step"))), "progress and results on one stream, in order")
        p = run("train", *TINY, "--model", "ae", "--hidden", "none", "--act", "identity", "--output", "identity",
                "--decoder", "gaussian", "--latent", "4", "--out", os.path.join(tmp, "linear"))
        ok(p.returncode == 0, "train --hidden none --act identity --output identity: a linear AE")
        p = run("train", "--data", os.path.join(tmp, "nowhere"), "--out", os.path.join(tmp, "x"), expect=1)
        ok(p.returncode == 1 and "nowhere" in p.stderr, "a missing data directory: exit 1 naming it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
