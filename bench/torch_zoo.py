#!/usr/bin/python3
"""The PyTorch twins of nabla's autoencoder zoo (docs: /work/zoo-spec.md's networks and losses),
trained with the recipe of bench/torch_vae.py: Fashion-MNIST /255, Adam 1e-3, batch 128, shuffled
each epoch, losses in nats per image (sums over pixels and latent dims, means over the batch).

Variants: vae, iwae5, iwae50 (or iwae with --samples), tcvae, wae, infovae, vqvae, vqvae-conv,
vamp, hvae. The VAE-based objectives take --arch conv as nabla does.

One JSON object per epoch: train_loss (the objective trained), test_bound (the variant's own bound
on the whole test set, as a loss: -ELBO, -IWAE-K, recon + L log K for the VQ-VAE), seconds (the
training loop alone) and the variant's diagnostics. Then a summary line with the importance-
sampled log p(x) (k samples for each of the first --is-images test images, log-sum-exp in f64,
mean and standard error; "n/a" for the VQ-VAE, whose posterior is a point mass).

    /usr/bin/python3 bench/torch_zoo.py --variant tcvae --epochs 10 --threads 2
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from torch_vae import ConvVAE, MLPVAE, blas_in_use, load

LOG2PI = math.log(2 * math.pi)
MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def log_normal(z, mu, logvar):
    """log N(z; mu, exp(logvar)) summed over the last dim (broadcasts)."""
    return -0.5 * (LOG2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def log_std_normal(z):
    return -0.5 * (LOG2PI + z.pow(2)).sum(-1)


def bce(logits, x):
    """-log p(x|z) per image, Bernoulli logits; x broadcasts against logits' leading dims."""
    return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def kl_std_normal(mu, logvar):
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def reparam(mu, logvar, k=None):
    eps = torch.randn_like(mu) if k is None else torch.randn(k, *mu.shape)
    return mu + torch.exp(0.5 * logvar) * eps


# ---- the Gaussian VAEs: elbo, iwae, tcvae, wae, infovae --------------------------------------

class GaussianVAE(nn.Module):
    """The base VAE networks with one of the objectives. loss() returns the mean objective and the
    diagnostics of the batch (sums over its images)."""

    def __init__(self, objective, arch, samples, n_train, tc_beta, mmd_lambda):
        super().__init__()
        self.net = MLPVAE() if arch == "mlp" else ConvVAE()
        self.objective, self.samples, self.n_train = objective, samples, n_train
        self.tc_beta, self.mmd_lambda = tc_beta, mmd_lambda

    def iwae_bound(self, x, k):
        """log (1/k) sum_k p(x, z_k) / q(z_k|x) per image, the k*B codes decoded as one batch."""
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar, k)                                  # (k, B, D)
        logits = self.net.decode(z.reshape(-1, z.shape[-1])).view(k, x.shape[0], -1)
        logw = -bce(logits, x) + log_std_normal(z) - log_normal(z, mu, logvar)
        return torch.logsumexp(logw, 0) - math.log(k)

    def loss(self, x):
        B = x.shape[0]
        if self.objective == "iwae":
            return -self.iwae_bound(x, self.samples).mean(), {}
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar)
        rec = F.binary_cross_entropy_with_logits(self.net.decode(z), x, reduction="sum") / B
        kl = kl_std_normal(mu, logvar).mean()
        if self.objective == "elbo":
            return rec + kl, {"recon": rec.item() * B, "kl": kl.item() * B}
        if self.objective == "tcvae":
            mi, tc, dwkl = self.tc_terms(z, mu, logvar)
            loss = rec + mi + self.tc_beta * tc + dwkl            # alpha = gamma = 1
            return loss, {"mi": mi.item() * B, "tc": tc.item() * B, "dwkl": dwkl.item() * B}
        mmd = self.mmd(z, torch.randn_like(z))
        if self.objective == "wae":
            loss = rec + self.mmd_lambda * mmd
        else:  # infovae, alpha = 0
            loss = rec + kl + (self.mmd_lambda - 1) * mmd
        return loss, {"mmd": mmd.item() * B, "kl": kl.item() * B}

    def tc_terms(self, z, mu, logvar):
        """MI, TC and dimension-wise KL by minibatch-weighted sampling (Chen et al. 2018)."""
        B = z.shape[0]
        # log q(z_id | x_j): (B, B, D), i the code, j the image
        logq = -0.5 * (LOG2PI + logvar[None] + (z[:, None] - mu[None]).pow(2) / logvar.exp()[None])
        norm = math.log(self.n_train * B)
        log_qz = torch.logsumexp(logq.sum(2), 1) - norm
        log_qz_prod = (torch.logsumexp(logq, 1) - norm).sum(1)
        log_qzx = log_normal(z, mu, logvar)
        mi = (log_qzx - log_qz).mean()
        tc = (log_qz - log_qz_prod).mean()
        dwkl = (log_qz_prod - log_std_normal(z)).mean()
        return mi, tc, dwkl

    @staticmethod
    def mmd(z, zp):
        """Unbiased MMD^2 with the inverse multiquadratic kernel summed over scales."""
        B, D = z.shape

        def kernel(a, b):
            d2 = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T
            return sum(2 * D * s / (2 * D * s + d2) for s in MMD_SCALES)

        off = 1 - torch.eye(B)
        same = ((kernel(z, z) + kernel(zp, zp)) * off).sum() / (B * (B - 1))
        return same - 2 * kernel(z, zp).sum() / (B * B)

    @torch.no_grad()
    def test_bound(self, x):
        """(the variant's bound as a loss, summed over x; extra sums)."""
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar)
        elbo = (bce(self.net.decode(z), x) + kl_std_normal(mu, logvar)).sum().item()
        extra = {"elbo": elbo}
        if self.objective == "iwae":
            return -self.iwae_bound(x, self.samples).sum().item(), extra
        return elbo, extra

    @torch.no_grad()
    def means(self, x):
        return {"z": self.net.encode(x)[0]}

    def log_weights(self, x, k):
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar, k)
        logits = self.net.decode(z.reshape(-1, z.shape[-1])).view(k, x.shape[0], -1)
        return -bce(logits, x) + log_std_normal(z) - log_normal(z, mu, logvar)


# ---- VampPrior ------------------------------------------------------------------------------

class Vamp(nn.Module):
    """The MLP VAE with the prior 1/Kp sum_k q(z|u_k) over learned pseudo-inputs u = clamp(P, 0, 1)."""

    def __init__(self, pseudo_inputs):
        super().__init__()
        self.net = MLPVAE()
        self.pseudo = nn.Parameter(torch.empty(pseudo_inputs, 784).normal_(0.05, 0.01))

    def log_prior(self, z, prior=None):
        """log (1/Kp) sum_k q(z|u_k); the (rows, Kp) Gaussian log densities expanded into matmuls."""
        pm, plv = prior if prior is not None else self.net.encode(self.pseudo.clamp(0, 1))
        prec = torch.exp(-plv)                                                  # (Kp, D)
        zf = z.reshape(-1, z.shape[-1])
        const = (pm.pow(2) * prec + plv + LOG2PI).sum(1)                        # (Kp,)
        logq = -0.5 * (zf.pow(2) @ prec.T - 2 * zf @ (pm * prec).T + const)    # (rows, Kp)
        return (torch.logsumexp(logq, -1) - math.log(pm.shape[0])).view(z.shape[:-1])

    def terms(self, x):
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar)
        rec = bce(self.net.decode(z), x)
        kl = log_normal(z, mu, logvar) - self.log_prior(z)
        return rec, kl

    def loss(self, x):
        rec, kl = self.terms(x)
        return (rec + kl).mean(), {"recon": rec.sum().item(), "kl": kl.sum().item()}

    @torch.no_grad()
    def test_bound(self, x):
        rec, kl = self.terms(x)
        return (rec + kl).sum().item(), {"kl": kl.sum().item()}

    @torch.no_grad()
    def means(self, x):
        return {"z": self.net.encode(x)[0]}

    def log_weights(self, x, k, prior=None):
        mu, logvar = self.net.encode(x)
        z = reparam(mu, logvar, k)
        logits = self.net.decode(z.reshape(-1, z.shape[-1])).view(k, x.shape[0], -1)
        return -bce(logits, x) + self.log_prior(z, prior) - log_normal(z, mu, logvar)

    def is_context(self):
        return self.net.encode(self.pseudo.clamp(0, 1))


# ---- two stochastic layers ------------------------------------------------------------------

def tanh_mlp(*sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    def __init__(self, body, hidden, out):
        super().__init__()
        self.body, self.mu, self.logvar = body, nn.Linear(hidden, out), nn.Linear(hidden, out)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class HVAE(nn.Module):
    """x -> z1 (100) -> z2 (50), the IWAE paper's two-layer model (Burda et al. 2015, section 5)."""

    def __init__(self):
        super().__init__()
        self.q1 = GaussianHead(tanh_mlp(784, 200, 200), 200, 100)
        self.q2 = GaussianHead(tanh_mlp(100, 100, 100), 100, 50)
        self.p1 = GaussianHead(tanh_mlp(50, 100, 100), 100, 100)
        self.px = nn.Sequential(tanh_mlp(100, 200, 200), nn.Linear(200, 784))

    def sample(self, x, k=None):
        mu1, lv1 = self.q1(x)
        z1 = reparam(mu1, lv1, k)
        mu2, lv2 = self.q2(z1)
        z2 = reparam(mu2, lv2)
        pm, plv = self.p1(z2)
        rec = bce(self.px(z1), x)
        return rec, (z1, mu1, lv1), (z2, mu2, lv2), (pm, plv)

    def terms(self, x):
        rec, (z1, mu1, lv1), (_, mu2, lv2), (pm, plv) = self.sample(x)
        kl1 = log_normal(z1, mu1, lv1) - log_normal(z1, pm, plv)   # one sample
        kl2 = kl_std_normal(mu2, lv2)                               # analytic
        return rec, kl1, kl2

    def loss(self, x):
        rec, kl1, kl2 = self.terms(x)
        return (rec + kl1 + kl2).mean(), {"kl1": kl1.sum().item(), "kl2": kl2.sum().item()}

    @torch.no_grad()
    def test_bound(self, x):
        rec, kl1, kl2 = self.terms(x)
        return (rec + kl1 + kl2).sum().item(), {"kl1": kl1.sum().item(), "kl2": kl2.sum().item()}

    @torch.no_grad()
    def means(self, x):
        mu1, _ = self.q1(x)
        return {"z1": mu1, "z2": self.q2(mu1)[0]}

    def log_weights(self, x, k):
        rec, (z1, mu1, lv1), (z2, mu2, lv2), (pm, plv) = self.sample(x, k)
        return (-rec + log_normal(z1, pm, plv) + log_std_normal(z2)
                - log_normal(z1, mu1, lv1) - log_normal(z2, mu2, lv2))


# ---- VQ-VAE ---------------------------------------------------------------------------------

class VQVAE(nn.Module):
    def __init__(self, arch, codebook, code_dim, codes, commitment):
        super().__init__()
        self.arch, self.K, self.Dc, self.beta_c = arch, codebook, code_dim, commitment
        self.codebook = nn.Parameter(torch.empty(codebook, code_dim).uniform_(-1 / codebook, 1 / codebook))
        if arch == "mlp":
            self.L = codes
            self.enc = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, codes * code_dim))
            self.dec = nn.Sequential(nn.Linear(codes * code_dim, 400), nn.ReLU(), nn.Linear(400, 784))
        else:
            self.L = 7 * 7
            self.enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                     nn.Conv2d(64, code_dim, 1))
            self.dec = nn.Sequential(nn.Conv2d(code_dim, 64, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1),
                                     nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
        self.usage = torch.zeros(codebook, dtype=torch.long)
        self.window = torch.zeros(codebook, dtype=torch.long)  # use since the last restart
        self.restart_steps = 100
        self.last_ze = None

    @torch.no_grad()
    def init_codebook(self, train):
        """The codebook starts at K distinct encoder outputs of the first images (at least 256,
        and enough for 2K outputs), as nabla's nb_vq_init_codebook."""
        n = min(train.shape[0], max(256, -(-2 * self.K // self.L)))
        self.restart(self.encode(train[:n]), torch.arange(self.K))

    def encode(self, x):
        """(B*L, Dc) encoder outputs."""
        if self.arch == "mlp":
            return self.enc(x).view(-1, self.Dc)
        return self.enc(x.view(-1, 1, 28, 28)).permute(0, 2, 3, 1).reshape(-1, self.Dc)

    def decode(self, zq, B):
        if self.arch == "mlp":
            return self.dec(zq.view(B, self.L * self.Dc))
        return self.dec(zq.view(B, 7, 7, self.Dc).permute(0, 3, 1, 2)).flatten(1)

    def quantise(self, ze):
        e = self.codebook
        d = ze.pow(2).sum(1, keepdim=True) - 2 * ze @ e.T + e.pow(2).sum(1)
        k = d.argmin(1)
        return e[k], k

    def loss(self, x):
        B = x.shape[0]
        ze = self.encode(x)
        zq, k = self.quantise(ze)
        zst = ze + (zq - ze).detach()
        rec = F.binary_cross_entropy_with_logits(self.decode(zst, B), x, reduction="sum") / B
        vq = (ze.detach() - zq).pow(2).sum() / B
        commit = (ze - zq.detach()).pow(2).sum() / B
        used = torch.bincount(k, minlength=self.K)
        self.usage += used
        self.window += used
        self.last_ze = ze.detach()
        return rec + vq + self.beta_c * commit, {"recon": rec.item() * B, "vq": vq.item() * B,
                                                 "commit": commit.item() * B}

    @torch.no_grad()
    def restart(self, ze, codes):
        """The given codes set to distinct random rows of ze (while there are enough rows)."""
        if len(codes):
            n = ze.shape[0]
            pick = torch.randperm(n)[: len(codes)] if len(codes) <= n else torch.randint(n, (len(codes),))
            self.codebook[codes] = ze[pick]

    def after_step(self, step, steps):
        """Every restart_steps steps of the epoch (and at its end, end_epoch) the codes unused since
        the last restart move to encoder outputs of the last batch, as nabla's trainer does."""
        if step % self.restart_steps == 0 and step < steps:
            self.restart(self.last_ze, (self.window == 0).nonzero().flatten())
            self.window.zero_()

    @torch.no_grad()
    def end_epoch(self):
        """Perplexity of the epoch's code usage and its dead codes (unused all epoch), then a restart."""
        p = self.usage.double() / self.usage.sum()
        h = -(p[p > 0] * p[p > 0].log()).sum().item()
        dead = int((self.usage == 0).sum().item())
        self.restart(self.last_ze, (self.window == 0).nonzero().flatten())
        self.window.zero_()
        self.usage.zero_()
        return {"perplexity": math.exp(h), "dead_codes": dead}

    @torch.no_grad()
    def test_bound(self, x):
        zq, k = self.quantise(self.encode(x))
        rec = bce(self.decode(zq, x.shape[0]), x).sum().item()
        self.test_usage = getattr(self, "test_usage", 0) + torch.bincount(k, minlength=self.K)
        return rec + x.shape[0] * self.L * math.log(self.K), {"recon": rec}

    log_weights = None


# ---- driver ---------------------------------------------------------------------------------

VARIANTS = ("vae", "iwae", "iwae5", "iwae50", "tcvae", "wae", "infovae", "vqvae", "vqvae-conv", "vamp", "hvae")


def build(args, n_train):
    v = args.variant
    if v in ("vae", "iwae", "iwae5", "iwae50", "tcvae", "wae", "infovae"):
        objective = {"vae": "elbo", "iwae5": "iwae", "iwae50": "iwae"}.get(v, v)
        samples = {"iwae5": 5, "iwae50": 50}.get(v, args.samples)
        lam = args.mmd_lambda if args.mmd_lambda is not None else (10.0 if v == "wae" else 1000.0)
        return GaussianVAE(objective, args.arch, samples, n_train, args.tc_beta, lam)
    if v in ("vqvae", "vqvae-conv"):
        return VQVAE("conv" if v == "vqvae-conv" else args.arch, args.codebook, args.code_dim, args.codes,
                     args.commitment)
    if v == "vamp":
        return Vamp(args.pseudo_inputs)
    return HVAE()


@torch.no_grad()
def importance_sampled(model, x_all, k):
    """Mean and standard error of log (1/k) sum_k w_k over x_all, log-sum-exp in f64."""
    ctx = model.is_context() if hasattr(model, "is_context") else None
    rows = getattr(model, "is_rows", 16384)
    chunk = max(1, rows // k)
    lls = []
    for i in range(0, x_all.shape[0], chunk):
        x = x_all[i:i + chunk]
        logw = model.log_weights(x, k, ctx) if ctx is not None else model.log_weights(x, k)
        lls.append(torch.logsumexp(logw.double(), 0) - math.log(k))
    ll = torch.cat(lls)
    n = ll.shape[0]
    se = ll.std().item() / math.sqrt(n) if n > 1 else 0.0
    return ll.mean().item(), se


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=VARIANTS, default="vae")
    ap.add_argument("--arch", choices=("mlp", "conv"), default="mlp", help="base networks of the VAE objectives")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-size", type=int, default=0)
    ap.add_argument("--samples", type=int, default=5, help="iwae: K")
    ap.add_argument("--tc-beta", type=float, default=6.0)
    ap.add_argument("--mmd-lambda", type=float, default=None, help="default 10 (wae), 1000 (infovae)")
    ap.add_argument("--codebook", type=int, default=128)
    ap.add_argument("--code-dim", type=int, default=16)
    ap.add_argument("--codes", type=int, default=8, help="vqvae MLP: code positions L")
    ap.add_argument("--commitment", type=float, default=0.25)
    ap.add_argument("--pseudo-inputs", type=int, default=500)
    ap.add_argument("--k", type=int, default=1000, help="importance samples of log p(x) (0: skip)")
    ap.add_argument("--is-images", type=int, default=1000)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    blas = blas_in_use()
    if blas == "reference":
        print(json.dumps({"error": "torch mapped the reference BLAS; install libopenblas0-openmp"}))
        sys.exit(3)
    train = load(args.data, "train").float().div_(255).view(-1, 784)
    test = load(args.data, "t10k").float().div_(255).view(-1, 784)
    if args.train_size:
        train = train[: args.train_size]
    model = build(args, train.shape[0])
    if hasattr(model, "init_codebook"):
        model.init_codebook(train)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(train.shape[0])
        total, diag, steps = 0.0, {}, 0
        t0 = time.perf_counter()
        for i in range(0, train.shape[0], args.batch):
            x = train[perm[i:i + args.batch]]
            loss, d = model.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
            for key, val in d.items():
                diag[key] = diag.get(key, 0.0) + val
            steps += 1
            if hasattr(model, "after_step"):
                model.after_step(steps, -(-train.shape[0] // args.batch))
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "seconds": seconds, "steps": steps, "train_loss": total / train.shape[0]}
        row.update({f"train_{key}": val / train.shape[0] for key, val in diag.items()})
        if hasattr(model, "end_epoch"):
            row.update(model.end_epoch())
        model.eval()
        s, extra, means = 0.0, {}, {}
        for i in range(0, test.shape[0], 500):
            b, e = model.test_bound(test[i:i + 500])
            s += b
            for key, val in e.items():
                extra[key] = extra.get(key, 0.0) + val
            if model.log_weights is not None:
                for key, val in model.means(test[i:i + 500]).items():
                    means.setdefault(key, []).append(val)
        row["test_bound"] = s / test.shape[0]
        row.update({f"test_{key}": val / test.shape[0] for key, val in extra.items()})
        for key, val in means.items():  # active units: Cov_x(E_q[z_d]) > 0.01 (Burda et al.)
            row[f"active_{key}"] = int((torch.cat(val).var(0) > 0.01).sum().item())
        if hasattr(model, "test_usage"):
            p = model.test_usage.double() / model.test_usage.sum()
            row["test_perplexity"] = math.exp(-(p[p > 0] * p[p > 0].log()).sum().item())
            del model.test_usage
        print(json.dumps(row), flush=True)

    summary = {"summary": True, "variant": args.variant, "threads": torch.get_num_threads(), "blas": blas,
               "torch": torch.__version__}
    if model.log_weights is None or args.k == 0:
        summary.update({"is_ll": "n/a", "is_se": "n/a"})
    else:
        t0 = time.perf_counter()
        model.eval()
        ll, se = importance_sampled(model, test[: args.is_images], args.k)
        summary.update({"is_ll": ll, "is_se": se, "is_k": args.k, "is_images": min(args.is_images, test.shape[0]),
                        "is_seconds": time.perf_counter() - t0})
    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
