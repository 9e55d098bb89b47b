#!/usr/bin/python3
"""Writes PyTorch reference fixtures for nabla's nn tests into tests/fixtures/*.safetensors.

Run by hand with Debian's interpreter (which has torch):  /usr/bin/python3 scripts/make_fixtures.py

Conventions (see tests/fixtures/README.md):
- every fixture reseeds torch with its own seed (recorded in the "config" metadata);
- inputs are drawn as float32 and stored as F32; references are computed in float64 from the
  same values upcast and stored as F64 (optimizer fixtures are F64 throughout);
- "gy" is a random N(0, 1) float32 cotangent of the output's shape; "g<name>" is
  d(sum(gy * y))/d(<name>), computed by autograd in float64;
- the "__metadata__" holds "config" (a JSON string of the parameters) and "torch" (the version).

The safetensors writer and reader are our own (json + struct); every file is re-read and
compared bit for bit after it is written.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
OUT = os.path.normpath(OUT)

DTYPES = {torch.float32: ("F32", "<f", 4), torch.float64: ("F64", "<d", 8)}
BY_NAME = {v[0]: (k, v[1], v[2]) for k, v in DTYPES.items()}

# ---- safetensors writer / reader ------------------------------------------------------------


def st_write(path, tensors, metadata):
    """tensors: list of (name, tensor) in the order written; metadata: {str: str}."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    names = set()
    for name, t in tensors:
        assert name not in names and name != "__metadata__", name
        names.add(name)
        t = t.detach().cpu().contiguous()
        code, fmt, size = DTYPES[t.dtype]
        vals = t.reshape(-1).tolist()
        blob = struct.pack("<%d%s" % (len(vals), fmt[1]), *vals)
        assert len(blob) == t.numel() * size
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def st_read(path):
    """Returns (list of (name, tensor) in data order, metadata), validating the layout."""
    with open(path, "rb") as f:
        buf = f.read()
    assert len(buf) >= 8, "short file"
    (n,) = struct.unpack("<Q", buf[:8])
    assert n % 8 == 0 and 8 + n <= len(buf), "bad header length"
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = buf[8 + n:]
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out, pos = [], 0
    for name, e in entries:
        dtype, fmt, size = BY_NAME[e["dtype"]]
        shape = e["shape"]
        b, end = e["data_offsets"]
        count = math.prod(shape)
        assert b == pos, f"{name}: hole or overlap at {b} (expected {pos})"
        assert end - b == count * size, f"{name}: size mismatch"
        vals = struct.unpack("<%d%s" % (count, fmt[1]), data[b:end])
        out.append((name, torch.tensor(vals, dtype=dtype).reshape(shape)))
        pos = end
    assert pos == len(data), "trailing bytes after the data"
    return out, meta


WRITTEN = []


def save(fname, tensors, config):
    path = os.path.join(OUT, fname)
    meta = {"config": json.dumps(config, sort_keys=True), "torch": torch.__version__}
    tensors = [(k, v.detach()) for k, v in tensors]
    for k, v in tensors:
        assert v.dtype in DTYPES, (fname, k, v.dtype)
        assert torch.isfinite(v).all(), (fname, k)
    st_write(path, tensors, meta)
    back, meta2 = st_read(path)
    assert meta2 == meta, fname
    assert [k for k, _ in back] == [k for k, _ in tensors], fname
    for (k, a), (_, b) in zip(tensors, back):
        assert a.dtype == b.dtype and a.shape == b.shape, (fname, k)
        # bitwise: compare the raw integer views
        ia = a.contiguous().view(torch.int32 if a.dtype == torch.float32 else torch.int64)
        ib = b.contiguous().view(torch.int32 if b.dtype == torch.float32 else torch.int64)
        assert torch.equal(ia, ib), (fname, k)
    WRITTEN.append((fname, os.path.getsize(path), [k for k, _ in tensors]))


# ---- helpers ----------------------------------------------------------------------------------


def seed(s):
    torch.manual_seed(s)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def uniform(lo, hi, *shape):
    return torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo


def leaf64(t32):
    """The f32 values upcast to f64, as an autograd leaf."""
    return t32.to(torch.float64).requires_grad_(True)


def vjp(y, inputs, gy32):
    gs = torch.autograd.grad(y, inputs, grad_outputs=gy32.to(torch.float64), allow_unused=False)
    return gs


# ---- 1. linear --------------------------------------------------------------------------------


def fx_linear():
    seed(1)
    x, w, b = randn(4, 5), randn(3, 5), randn(3)
    X, W, B = leaf64(x), leaf64(w), leaf64(b)
    y = F.linear(X, W, B)
    gy = randn(*y.shape)
    gx, gw, gb = vjp(y, (X, W, B), gy)
    save("linear.safetensors",
         [("x", x), ("weight", w), ("bias", b), ("y", y), ("gy", gy), ("gx", gx),
          ("gweight", gw), ("gbias", gb)],
         {"seed": 1, "in": 5, "out": 3, "bias": True})

    seed(2)
    x, w = randn(2, 3, 5), randn(3, 5)
    X, W = leaf64(x), leaf64(w)
    y = F.linear(X, W)
    gy = randn(*y.shape)
    gx, gw = vjp(y, (X, W), gy)
    save("linear_nobias.safetensors",
         [("x", x), ("weight", w), ("y", y), ("gy", gy), ("gx", gx), ("gweight", gw)],
         {"seed": 2, "in": 5, "out": 3, "bias": False})


# ---- 2, 3. convolutions -------------------------------------------------------------------------

CONV = {  # out, k, stride, pad, dilation, bias
    "a": dict(out=4, k=3, stride=1, padding=0, dilation=1, bias=True),
    "b": dict(out=4, k=3, stride=2, padding=1, dilation=1, bias=True),
    "c": dict(out=2, k=4, stride=2, padding=1, dilation=1, bias=True),
    "d": dict(out=3, k=3, stride=1, padding=2, dilation=2, bias=True),
    "e": dict(out=4, k=3, stride=2, padding=1, dilation=1, bias=False),
}
CONVT = {
    "a": dict(out=4, k=3, stride=1, padding=0, output_padding=0, dilation=1, bias=True),
    "b": dict(out=4, k=3, stride=2, padding=1, output_padding=1, dilation=1, bias=True),
    "c": dict(out=2, k=4, stride=2, padding=1, output_padding=0, dilation=1, bias=True),
    "d": dict(out=3, k=3, stride=2, padding=0, output_padding=1, dilation=2, bias=True),
    "e": dict(out=4, k=4, stride=2, padding=1, output_padding=0, dilation=1, bias=False),
    "f": dict(out=4, k=3, stride=3, padding=1, output_padding=2, dilation=1, bias=True),
}
N, C, H, W = 3, 5, 9, 11


def conv_fixture(fname, s, c, transposed):
    seed(s)
    k, o = c["k"], c["out"]
    x = randn(N, C, H, W)
    w = randn(C, o, k, k) if transposed else randn(o, C, k, k)
    # PyTorch's default init scale keeps the outputs O(1)
    w = w * (1.0 / math.sqrt(C * k * k))
    b = randn(o) if c["bias"] else None
    X, Wt = leaf64(x), leaf64(w)
    B = leaf64(b) if b is not None else None
    if transposed:
        y = F.conv_transpose2d(X, Wt, B, stride=c["stride"], padding=c["padding"],
                               output_padding=c["output_padding"], dilation=c["dilation"])
    else:
        y = F.conv2d(X, Wt, B, stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
    gy = randn(*y.shape)
    ins = (X, Wt, B) if B is not None else (X, Wt)
    gs = vjp(y, ins, gy)
    ts = [("x", x), ("weight", w)] + ([("bias", b)] if b is not None else [])
    ts += [("y", y), ("gy", gy), ("gx", gs[0]), ("gweight", gs[1])]
    if B is not None:
        ts.append(("gbias", gs[2]))
    cfg = dict(c, seed=s, batch=N, in_channels=C, out_channels=o, kernel_size=k, height=H,
               width=W, out_height=y.shape[2], out_width=y.shape[3])
    del cfg["out"], cfg["k"]
    save(fname, ts, cfg)


def fx_conv():
    for i, (key, c) in enumerate(CONV.items()):
        conv_fixture(f"conv2d_{key}.safetensors", 10 + i, c, False)
    for i, (key, c) in enumerate(CONVT.items()):
        conv_fixture(f"conv_transpose2d_{key}.safetensors", 20 + i, c, True)


# ---- 4. activations -----------------------------------------------------------------------------

ACTS = {
    "leaky_relu": lambda x: F.leaky_relu(x, negative_slope=0.2),
    "elu": lambda x: F.elu(x, alpha=1.0),
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "softplus": lambda x: F.softplus(x),
    "logsigmoid": lambda x: F.logsigmoid(x),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
}


def fx_activations():
    seed(30)
    # |x| in [0.1, 4] with a random sign: no value within 0.05 of the kink at 0
    mag = uniform(0.1, 4.0, 6, 7)
    sign = torch.where(torch.rand(6, 7) < 0.5, -1.0, 1.0)
    x = (mag * sign).to(torch.float32)
    gy = randn(6, 7)
    ts = [("x", x), ("gy", gy)]
    for name, f in ACTS.items():
        X = leaf64(x)
        y = f(X)
        (gx,) = vjp(y, (X,), gy)
        ts += [("y_" + name, y), ("gx_" + name, gx)]
    save("activations.safetensors", ts,
         {"seed": 30, "leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 1.0},
          "gelu": {"approximate": "none"}, "softplus": {"beta": 1, "threshold": 20},
          "x_range": [-4, 4], "min_abs_x": 0.1})


# ---- 4b. the ops models are built from: maths, reductions, softmax, indexing -----------------


def fx_ops():
    seed(35)
    # x away from 0 (abs), positive p for pow, distinct values for the extremes
    x = (uniform(0.1, 3.0, 5, 6) * torch.where(torch.rand(5, 6) < 0.5, -1.0, 1.0)).to(torch.float32)
    p = uniform(0.2, 3.0, 5, 6)
    b = (torch.randperm(60)[:30].reshape(5, 6).to(torch.float32) / 10 - 3).to(torch.float32)
    a = (torch.randperm(60)[30:].reshape(5, 6).to(torch.float32) / 10 - 3).to(torch.float32)
    idx = torch.tensor([4, 0, 2, 2, 1, 3, 4], dtype=torch.int64)
    gidx = torch.randint(0, 6, (5, 4), dtype=torch.int64)
    mean, logvar = randn(6), randn(5, 1)
    ts = [("x", x), ("p", p), ("a", a), ("b", b), ("idx", idx.to(torch.float32)),
          ("gidx", gidx.to(torch.float32)), ("mean", mean), ("logvar", logvar)]
    X, P, A, B = leaf64(x), leaf64(p), leaf64(a), leaf64(b)
    M, LV = leaf64(mean), leaf64(logvar)
    cases = {
        "abs": (lambda: X.abs(), (X,)),
        "pow": (lambda: P.pow(2.7), (P,)),
        "maximum": (lambda: torch.maximum(A, B), (A, B)),
        "minimum": (lambda: torch.minimum(A, B), (A, B)),
        "amax1": (lambda: A.amax(dim=1), (A,)),
        "amin0": (lambda: A.amin(dim=0), (A,)),
        "mean_all": (lambda: X.mean(), (X,)),
        "softmax1": (lambda: torch.softmax(X, dim=1), (X,)),
        "log_softmax0": (lambda: torch.log_softmax(X, dim=0), (X,)),
        "index_select0": (lambda: torch.index_select(X, 0, idx[idx < 5]), (X,)),
        "gather1": (lambda: torch.gather(X, 1, gidx), (X,)),
        "normal_log_prob": (lambda: torch.distributions.Normal(M, torch.exp(0.5 * LV)).log_prob(X), (X, M, LV)),
    }
    for name, (f, ins) in cases.items():
        y = f()
        gy = torch.randn(y.shape, dtype=torch.float32)
        gs = vjp(y, ins, gy)
        ts += [("y_" + name, y), ("gy_" + name, gy)]
        for k, g in enumerate(gs):
            ts.append((f"g{k}_" + name, g))
    ts += [("argmax1", A.argmax(dim=1).to(torch.float64)), ("argmin0", A.argmin(dim=0).to(torch.float64))]
    save("ops.safetensors", ts, {"seed": 35, "pow": 2.7, "index_select": "idx < 5, dim 0",
                                 "gather": "dim 1", "softmax": "dim 1", "log_softmax": "dim 0",
                                 "amax": "dim 1", "amin": "dim 0",
                                 "normal_log_prob": "Normal(mean, exp(logvar / 2)).log_prob(x)"})


# ---- 5. losses --------------------------------------------------------------------------------

B_ = 4


def per_example(e):
    """Sums the per-element terms over every dim but the batch: shape (B,)."""
    return e.reshape(e.shape[0], -1).sum(1)


def reduce(per, r):
    return {"mean": per.sum() / per.shape[0], "sum": per.sum(), "none": per}[r]


def fx_losses():
    seed(40)
    shape = (B_, 3, 5)
    ts = []
    gy_none = randn(B_)

    # bce with logits
    l = randn(*shape) * 2
    t = torch.rand(*shape, dtype=torch.float32)
    pick = torch.rand(*shape)
    t = torch.where(pick < 0.25, torch.zeros_like(t), t)
    t = torch.where(pick > 0.75, torch.ones_like(t), t)
    ts += [("l", l), ("t", t)]
    for r in ("mean", "sum", "none"):
        L, T = leaf64(l), leaf64(t)
        per = per_example(F.softplus(L) - T * L)
        ref = F.binary_cross_entropy_with_logits(L, T, reduction="none")
        assert torch.allclose(per, per_example(ref), rtol=1e-12, atol=1e-12)
        y = reduce(per, r)
        ts.append((f"y_bce_{r}", y))
        if r == "mean":
            gl, gt = torch.autograd.grad(y, (L, T))
            ts += [("gl_bce", gl), ("gt_bce", gt)]
        if r == "none":
            (gl,) = torch.autograd.grad(y, (L,), grad_outputs=gy_none.double())
            ts.append(("gl_bce_none", gl))

    # mse
    p, q = randn(*shape), randn(*shape)
    ts += [("p", p), ("q", q)]
    for r in ("mean", "sum", "none"):
        P, Q = leaf64(p), leaf64(q)
        y = reduce(per_example((P - Q) ** 2), r)
        ts.append((f"y_mse_{r}", y))
        if r == "mean":
            gp, gq = torch.autograd.grad(y, (P, Q))
            ts += [("gp_mse", gp), ("gq_mse", gq)]

    # gaussian nll, three logvar shapes
    x, m = randn(*shape), randn(*shape)
    lvs = {"elem": randn(*shape) * 0.5, "shared": randn(()) * 0.5, "pixel": randn(3, 5) * 0.5}
    ts += [("x", x), ("m", m)] + [("lv_" + k, v) for k, v in lvs.items()]
    for k, lv in lvs.items():
        for r in ("mean", "sum"):
            X, M, LV = leaf64(x), leaf64(m), leaf64(lv)
            e = 0.5 * (math.log(2 * math.pi) + LV + (X - M) ** 2 * torch.exp(-LV))
            assert e.shape == shape
            y = reduce(per_example(e), r)
            ts.append((f"y_gnll_{k}_{r}", y))
            if r == "mean":
                gx, gm, glv = torch.autograd.grad(y, (X, M, LV))
                ts += [(f"gx_gnll_{k}", gx), (f"gm_gnll_{k}", gm), (f"glv_gnll_{k}", glv)]

    # kl to the standard normal
    mu, lvk = randn(B_, 6), randn(B_, 6) * 0.5
    ts += [("mu", mu), ("lvk", lvk)]
    for r in ("mean", "sum", "none"):
        MU, LV = leaf64(mu), leaf64(lvk)
        y = reduce(per_example(-0.5 * (1 + LV - MU ** 2 - torch.exp(LV))), r)
        ts.append((f"y_kl_{r}", y))
        if r == "mean":
            gmu, glv = torch.autograd.grad(y, (MU, LV))
            ts += [("gmu_kl", gmu), ("glv_kl", glv)]

    ts.append(("gy_none", gy_none))
    save("losses.safetensors", ts,
         {"seed": 40, "batch": B_, "shape": list(shape), "kl_shape": [B_, 6],
          "reduction": "per-example sum over all dims but 0; mean = total / batch, "
                       "sum = total, none = per-example (B,)",
          "gy_none": "cotangent of the (B,) 'none' output, used for gl_bce_none",
          "gaussian_nll": "0.5*(log(2*pi) + lv + (x-m)^2*exp(-lv))"})


# ---- 6. optimizers ------------------------------------------------------------------------------

STEPS = 5
OPTIMS = {
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    "adam_wd": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    "adamw": (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                          initial_accumulator_value=0.1, eps=1e-10)),
    "adam_clip": (torch.optim.Adam, dict(lr=0.01)),
}


def fx_optim():
    for i, (name, (cls, hp)) in enumerate(OPTIMS.items()):
        s = 50 + i
        seed(s)
        d = torch.float64
        p0, q0 = torch.randn(7, dtype=d), torch.randn(2, 3, dtype=d)
        gps = [torch.randn(7, dtype=d) for _ in range(STEPS)]
        gqs = [torch.randn(2, 3, dtype=d) for _ in range(STEPS)]
        clip = name == "adam_clip"
        if clip:  # step 2 small enough (norm < 1) that clipping leaves it alone
            gps[2] = gps[2] * 0.1
            gqs[2] = gqs[2] * 0.1
        p = p0.clone().requires_grad_(True)
        q = q0.clone().requires_grad_(True)
        opt = cls([p, q], **hp)
        ts = [("p0", p0), ("q0", q0)]
        for k in range(STEPS):
            p.grad, q.grad = gps[k].clone(), gqs[k].clone()
            ts += [(f"g_p_{k}", gps[k]), (f"g_q_{k}", gqs[k])]
            if clip:
                norm = torch.nn.utils.clip_grad_norm_([p, q], max_norm=1.0)
                ref = torch.sqrt((gps[k] ** 2).sum() + (gqs[k] ** 2).sum())
                assert torch.allclose(norm, ref, rtol=1e-14)
                ts.append((f"norm_{k}", norm.to(d).reshape(())))
            opt.step()
            ts += [(f"p_{k + 1}", p.detach().clone()), (f"q_{k + 1}", q.detach().clone())]
        cfg = {k: v for k, v in opt.defaults.items()
               if k not in ("foreach", "maximize", "capturable", "differentiable", "fused")}
        cfg.update(optimizer=cls.__name__, seed=s, steps=STEPS)
        if clip:
            cfg.update(clip_grad_norm={"max_norm": 1.0, "norm_type": 2.0,
                                       "scale": "max_norm / (total_norm + 1e-6) when < 1"},
                       note="step 2's gradients are scaled by 0.1 (norm < 1: no clipping)")
        save(f"optim_{name}.safetensors", ts, cfg)


# ---- 7. learning-rate schedules -------------------------------------------------------------------


def fx_lr():
    out = []
    for key, mk in (("lr_step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
                    ("lr_exp", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9))):
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1)
        sch = mk(opt)
        lrs = [sch.get_last_lr()[0]]
        for _ in range(9):
            opt.step()
            sch.step()
            lrs.append(sch.get_last_lr()[0])
        out.append((key, torch.tensor(lrs, dtype=torch.float64)))
    save("lr_schedule.safetensors", out,
         {"base_lr": 0.1, "epochs": 10, "lr_step": {"step_size": 3, "gamma": 0.5},
          "lr_exp": {"gamma": 0.9},
          "note": "epoch 0 = before any scheduler.step(); values from get_last_lr() "
                  "(chained products, may differ from base*gamma^k in the last ulp)"})


# ---- 8. default-initialisation bounds ---------------------------------------------------------------


def fx_init():
    seed(70)
    ts, cfg = [], {"seed": 70, "formula": "kaiming_uniform_(a=sqrt(5)): bound = "
                   "sqrt(3)*(gain/sqrt(fan_in)), gain = sqrt(2/(1+a^2)); bias bound = "
                   "1/sqrt(fan_in); both equal 1/sqrt(fan_in) up to rounding. fan_in = "
                   "weight.size(1)*receptive field (for ConvTranspose2d that is out_channels)"}
    layers = {"linear": torch.nn.Linear(784, 400),
              "conv2d": torch.nn.Conv2d(1, 32, 4),
              "conv_transpose2d": torch.nn.ConvTranspose2d(64, 32, 4)}
    for name, layer in layers.items():
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
        a = math.sqrt(5)
        gain = torch.nn.init.calculate_gain("leaky_relu", a)
        wb = math.sqrt(3.0) * (gain / math.sqrt(fan_in))  # torch's own order of operations
        bb = 1.0 / math.sqrt(fan_in)
        wmax = layer.weight.detach().abs().max().item()
        bmax = layer.bias.detach().abs().max().item()
        assert 0.9 * wb < wmax <= wb, (name, wmax, wb)
        assert 0.8 * bb < bmax <= bb, (name, bmax, bb)
        ts += [(f"bound_{name}_weight", torch.tensor(wb, dtype=torch.float64)),
               (f"bound_{name}_bias", torch.tensor(bb, dtype=torch.float64)),
               (f"fan_in_{name}", torch.tensor(float(fan_in), dtype=torch.float64)),
               (f"fan_out_{name}", torch.tensor(float(fan_out), dtype=torch.float64))]
        cfg[name] = {"weight_shape": list(layer.weight.shape), "fan_in": fan_in,
                     "fan_out": fan_out, "max_abs_weight_sample": wmax,
                     "max_abs_bias_sample": bmax}
    save("init_stats.safetensors", ts, cfg)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    fx_linear()
    fx_conv()
    fx_activations()
    fx_ops()
    fx_losses()
    fx_optim()
    fx_lr()
    fx_init()
    total = 0
    for fname, size, names in WRITTEN:
        total += size
        print(f"{fname:36s} {size:7d} B  {len(names)} tensors")
    print(f"{len(WRITTEN)} files, {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
