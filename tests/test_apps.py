#!/usr/bin/env python3
"""Runs every `nabla` command at tiny size and checks what it wrote: PNGs decode with the right
size, CSVs have the right rows, report links resolve, bad usage exits 2. Prints TAP.

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


def run(*args, expect=0):
    p = subprocess.run([NABLA, *args], capture_output=True, text=True, timeout=600)
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
    all border colour, a dead decoder all black)."""
    rows, cell, drawn = png_pixels(path), size * scale, 0
    for r in range(n_rows):
        for c in range(n_cols):
            y0, x0 = pad + r * (cell + pad), pad + c * (cell + pad)
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


def main():
    if not os.path.isdir(DATA):
        print(f"1..1\nok 1 # SKIP {DATA} not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="nb_apps_")
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
        ok(p.returncode == 0 and png_dims(os.path.join(out, "reconstruction.png")) == stack([1] * 4, 6),
           f"reconstruct: 4 rows of 6 images {stack([1] * 4, 6)}")
        ok(len(csv_rows(os.path.join(out, "reconstruction.csv"))) == 12, "reconstruct: 12 CSV rows")

        p = run("sample", "--out", out, "--n", "5")
        ok(p.returncode == 0 and png_dims(os.path.join(out, "samples.png")) == grid(5, 5), "sample: a 5x5 grid")
        ok(len(csv_rows(os.path.join(out, "samples.csv"))) == 25, "sample: 25 CSV rows")
        ok(p.returncode == 0 and cells_drawn(os.path.join(out, "samples.png"), 5, 5) == 25,
           "sample: every cell of the grid holds a decoded image")

        p = run("interpolate", "--out", out, "--data", DATA, "--n", "7")
        ok(p.returncode == 0 and png_dims(os.path.join(out, "interpolation.png")) == grid(1, 7),
           "interpolate: one row of 7")
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
        ok(p.returncode == 0 and png_dims(os.path.join(out2, "manifold.png")) == grid(8, 8), "manifold: an 8x8 grid")
        ok(len(csv_rows(os.path.join(out2, "manifold.csv"))) == 64, "manifold: 64 CSV rows")
        ok(p.returncode == 0 and cells_drawn(os.path.join(out2, "manifold.png"), 8, 8) == 64,
           "manifold: every cell holds a decoded image")

        out3 = os.path.join(tmp, "cvae")
        p = run("train", *TINY, "--model", "cvae", "--out", out3)
        p = run("sample", "--out", out3, "--n", "4")
        ok(p.returncode == 0 and png_dims(os.path.join(out3, "samples_by_class.png")) == grid(10, 4),
           "sample: a CVAE draws one row per class (10 x 4)")

        out4 = os.path.join(tmp, "dae")
        p = run("train", *TINY, "--model", "dae", "--decoder", "gaussian", "--corrupt", "dropout:0.5", "--out", out4)
        ok(p.returncode == 0, "train: a denoising AE")
        p = run("denoise", "--out", out4, "--data", DATA, "--n", "4", "--eval", "64", "--toy", "--toy-steps", "200")
        ok(p.returncode == 0 and png_dims(os.path.join(out4, "denoise.png")) == stack([1] * 18, 4),
           "denoise: clean/corrupted/denoised rows for 6 corruptions")
        rows = csv_rows(os.path.join(out4, "denoise.csv"))
        ok(len(rows) == 6 and all(float(r["squared_error_denoised"]) >= 0 for r in rows), "denoise: 6 CSV rows")
        ok(png_size(os.path.join(out4, "denoise_toy.png")) is not None and
           len(csv_rows(os.path.join(out4, "denoise_toy.csv"))) == 21 * 21, "denoise --toy: the arrow map and its CSV")

        outc = os.path.join(tmp, "compare")
        p = run("compare", *TINY, "--out", outc)
        ok(p.returncode == 0, "compare: the whole lesson at tiny size")
        report = os.path.join(outc, "report.md")
        links = []
        if os.path.exists(report):
            text = open(report).read()
            links = [l.split("](", 1)[1].split(")", 1)[0] for l in text.splitlines() if "](" in l]
        ok(len(links) >= 4 and all(os.path.exists(os.path.join(outc, l)) for l in links),
           f"compare: report.md links {len(links)} pictures, all present")
        ok(all(png_size(os.path.join(outc, l)) for l in links), "compare: every linked picture decodes")

        outd = os.path.join(tmp, "demo")
        p = run("demo", *TINY, "--out", outd)
        ok(p.returncode == 0 and os.path.exists(os.path.join(outd, "report.md")), "demo: runs end to end at tiny size")
        text = open(os.path.join(outd, "report.md")).read() if p.returncode == 0 else ""
        links = [l.split("](", 1)[1].split(")", 1)[0] for l in text.splitlines() if "](" in l]
        ok(len(links) >= 6 and all(png_size(os.path.join(outd, l)) for l in links),
           f"demo: report.md links {len(links)} pictures that decode")

        # usage errors and help
        for args, what in ((["train", "--latnet", "3"], "a misspelt flag"), (["train", "--latent", "x"], "a bad value"),
                           (["bogus"], "an unknown command"), (["sample", "--n"], "a flag without its value")):
            p = run(*args, expect=2)
            ok(p.returncode == 2 and p.stderr.strip(), f"{what}: exit 2 and a message ({p.stderr.strip()[:60]})")
        p = run("train", "--preset=aevb", "--help")
        p2 = subprocess.run([NABLA, "train", "--preset=aevb", "--epochs", "0", "--data", DATA, "--train-size", "64",
                             "--test-size", "64", "--out", os.path.join(tmp, "aevb")], capture_output=True, text=True)
        cfg = json.load(open(os.path.join(tmp, "aevb", "config.json"))) if p2.returncode == 0 else {}
        ok(cfg.get("optimizer") == "adagrad" and cfg.get("batch") == 100 and cfg.get("act") == "tanh",
           "--preset=aevb (with =) applies the preset")
        p = run("train", "--help")
        ok(p.returncode == 0 and "--kl-warmup" in p.stdout, "train --help lists the configuration keys")
        p = run("train", "--data", os.path.join(tmp, "nowhere"), "--out", os.path.join(tmp, "x"), expect=1)
        ok(p.returncode == 1 and "nowhere" in p.stderr, "a missing data directory: exit 1 naming it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
