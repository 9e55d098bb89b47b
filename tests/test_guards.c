/* tests/test_guards.c — checks that hold only if the numbers are the ones meant, not merely
 * self-consistent: the loss's value against a plain f64 reference of the same formula (the
 * gradient checks cannot see a wrong formula whose gradient matches it), the per-dimension KL
 * diagnostic, free bits per dimension, a denoising model judged on corrupted inputs, and a
 * conditional decoder that listens to its label. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

enum { D = 6, H = 4, Z = 2, B = 3, K = 3 };

static nb_model make(nb_model_kind kind, nb_params **ps)
{
    nb_model_cfg cfg = nb_model_defaults();
    cfg.kind = kind;
    cfg.channels = 1, cfg.height = 2, cfg.width = 3, cfg.nhidden = 1, cfg.hidden[0] = H, cfg.latent = Z;
    cfg.nclasses = K;
    *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(11);
    nb_model m;
    nb_model_init(&m, &cfg, *ps, &r);
    return m;
}

/* y[o] = b[o] + Σ_i W[o][i] x[i] for the Linear layer `name`, from the store */
static void linear(nb_params *ps, const char *name, int in, int out, const double *x, double *y)
{
    char w[64], b[64];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    const nb_tensor *W = nb_params_find(ps, w), *bias = nb_params_find(ps, b);
    for (int o = 0; o < out; o++) {
        double s = nb_get(bias, o);
        for (int i = 0; i < in; i++) s += nb_get(W, o * in + i) * x[i];
        y[o] = s;
    }
}

static void relu(double *v, int n)
{
    for (int i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0;
}

/* The MLP VAE's loss for one batch, written out in plain f64 loops: recon (BCE with logits) +
 * beta·KL, the KL per dimension floored at lambda over the batch mean when lambda > 0. */
static double reference_loss(nb_params *ps, const double *x, const double *eps, double beta, double lambda)
{
    double recon = 0, kl_dim[Z] = {0};
    for (int b = 0; b < B; b++) {
        double h[H], mu[Z], lv[Z], z[Z], hd[H], out[D];
        linear(ps, "enc.fc.0", D, H, x + b * D, h);
        relu(h, H);
        linear(ps, "enc.mu", H, Z, h, mu);
        linear(ps, "enc.logvar", H, Z, h, lv);
        for (int j = 0; j < Z; j++) {
            z[j] = mu[j] + exp(0.5 * lv[j]) * eps[b * Z + j]; /* σ = e^{lv/2} */
            kl_dim[j] += -0.5 * (1 + lv[j] - mu[j] * mu[j] - exp(lv[j])) / B;
        }
        linear(ps, "dec.fc.0", Z, H, z, hd);
        relu(hd, H);
        linear(ps, "dec.fc.1", H, D, hd, out);
        for (int p = 0; p < D; p++) /* -[x log σ(o) + (1-x) log(1-σ(o))] = softplus(o) - x·o */
            recon += (fmax(out[p], 0) + log1p(exp(-fabs(out[p]))) - x[b * D + p] * out[p]) / B;
    }
    double kl = 0;
    for (int j = 0; j < Z; j++) kl += lambda > 0 ? fmax(lambda, kl_dim[j]) : kl_dim[j];
    return recon + beta * kl;
}

static void test_loss_value(void)
{
    nb_params *ps;
    nb_model m = make(NB_VAE, &ps);
    double x[B * D], eps[B * Z];
    nb_rng r = nb_rng_seed(5);
    for (int i = 0; i < B * D; i++) x[i] = 0.05 + 0.9 * nb_rng_uniform1(&r);
    for (int i = 0; i < B * Z; i++) eps[i] = 2 * nb_rng_uniform1(&r) - 1;
    /* beta, free bits: 0.15 lies between the two dims' KL (0.17 and 0.14), so the floor must be
     * per dimension, not on their total */
    const double cases[][2] = {{1, 0}, {4, 0}, {1, 0.15}, {1, 0.5}, {1, 5.0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_tape *tp = nb_tape_new();
        nb_tensor *xt = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), x, B * D);
        nb_loss_opts o = {.beta = cases[c][0], .free_bits = cases[c][1],
                          .eps = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, Z), eps, B * Z)};
        nb_loss_terms t;
        const nb_status st = nb_model_loss(tp, &m, &(nb_batch){xt, xt, NULL}, &o, &t);
        const double got = st ? NAN : nb_get(t.loss, 0), want = reference_loss(ps, x, eps, cases[c][0], cases[c][1]);
        ok(fabs(got - want) <= 1e-12 * fabs(want), "VAE loss (beta %g, free bits %g) equals the f64 reference: "
           "%.15g against %.15g", cases[c][0], cases[c][1], got, want);
        nb_tape_free(tp);
    }
    nb_params_free(ps);
}

/* A data set of n synthetic 2x3 images. */
static nb_dataset tiny(uint8_t *px, uint8_t *labels, int n)
{
    for (int i = 0; i < n * D; i++) px[i] = (uint8_t)((i * 53 + 7) % 256);
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)(i % K);
    return (nb_dataset){.n = n, .channels = 1, .rows = 2, .cols = 3, .images = px, .labels = labels, .nclasses = K};
}

static void test_kl_per_dimension(void)
{
    nb_params *ps;
    nb_model m = make(NB_VAE, &ps);
    uint8_t px[10 * D], lab[10];
    nb_dataset ds = tiny(px, lab, 10);
    nb_eval e;
    const nb_status st = nb_model_evaluate(&m, &ds, 4, NB_BIN_NONE, NULL, 1, &e);
    /* the same diagnostic from the encoder's outputs, image by image */
    double want[Z] = {0};
    nb_tape *tp = nb_tape_new();
    for (int i = 0; i < 10; i++) {
        nb_tape_reset(tp);
        nb_tensor *x, *y, *mu, *lv;
        nb_model_batch(tp, &m, &ds, (const int64_t[]){i}, 1, NB_BIN_NONE, NULL, &x, &y);
        nb_model_encode(tp, &m, x, NULL, &mu, &lv);
        for (int j = 0; j < Z; j++) {
            const double u = nb_get(mu, j), v = nb_get(lv, j);
            want[j] += -0.5 * (1 + v - u * u - exp(v)) / 10;
        }
    }
    nb_tape_free(tp);
    ok(!st && fabs(e.kl_dim[0] - want[0]) < 1e-12 && fabs(e.kl_dim[1] - want[1]) < 1e-12 &&
           fabs(e.kl - (want[0] + want[1])) < 1e-12,
       "evaluation's KL per dimension (%.6f, %.6f) is KL(q ‖ N(0, 1)) of each dimension (%.6f, %.6f)",
       e.kl_dim[0], e.kl_dim[1], want[0], want[1]);
    nb_params_free(ps);
}

/* Active units: the dims whose posterior mean varies over the data by more than 0.01 (Burda et
 * al.), at encoder scales that put one variance on each side of that line. */
static void test_active_units(void)
{
    nb_params *ps;
    nb_model m = make(NB_VAE, &ps);
    uint8_t px[40 * D], lab[40];
    nb_dataset ds = tiny(px, lab, 40);
    nb_tensor *w = nb_params_find(ps, "enc.mu.weight");
    double keep[Z * H];
    for (int i = 0; i < Z * H; i++) keep[i] = nb_get(w, i);
    const double scales[] = {0.05, 0.2, 0.5, 1, 2, 4};
    int agree = 1, straddled = 0;
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        for (int i = 0; i < Z * H; i++) nb_set(w, i, keep[i] * scales[k]);
        nb_eval e;
        nb_model_evaluate(&m, &ds, 16, NB_BIN_NONE, NULL, 1, &e);
        double s1[Z] = {0}, s2[Z] = {0};
        nb_tape *tp = nb_tape_new();
        for (int i = 0; i < 40; i++) {
            nb_tape_reset(tp);
            nb_tensor *x, *y, *mu, *lv;
            nb_model_batch(tp, &m, &ds, (const int64_t[]){i}, 1, NB_BIN_NONE, NULL, &x, &y);
            nb_model_encode(tp, &m, x, NULL, &mu, &lv);
            for (int j = 0; j < Z; j++) s1[j] += nb_get(mu, j) / 40, s2[j] += nb_get(mu, j) * nb_get(mu, j) / 40;
        }
        nb_tape_free(tp);
        int want = 0;
        for (int j = 0; j < Z; j++) {
            const double var = s2[j] - s1[j] * s1[j];
            want += var > 0.01;
            straddled |= var > 0.01 && var < 0.1;
        }
        agree &= e.active_units == want;
    }
    ok(agree && straddled, "active units count the dims whose mean varies by more than 0.01, at every scale "
       "(one of them between 0.01 and 0.1: %s)", straddled ? "yes" : "no");
    nb_params_free(ps);
}

/* Each corruption does what its name says, in proportion to its parameter. */
static void test_corruptions(void)
{
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(4);
    const int64_t N = 64, Hh = 16, W = 16, n = N * Hh * W;
    nb_tensor *ones = nb_full(tp, NB_F64, NB_SHAPE(N, Hh * W), 1.0), *half = nb_full(tp, NB_F64, NB_SHAPE(N, Hh * W), 0.5);
    nb_corruption c;
    int64_t zeros = 0, salt = 0, pepper = 0, blocked = 0;
    double moved = 0, sq = 0;
    nb_corruption_parse(&c, "dropout:0.2");
    nb_tensor *y = nb_corrupt(tp, &c, ones, 1, (int)Hh, (int)W, &r);
    for (int64_t i = 0; y && i < n; i++) zeros += nb_get(y, i) == 0;
    ok(y && fabs((double)zeros / n - 0.2) < 0.02, "dropout:0.2 zeroes a fifth of the pixels (%.3f)", (double)zeros / n);
    nb_corruption_parse(&c, "saltpepper:0.1");
    y = nb_corrupt(tp, &c, half, 1, (int)Hh, (int)W, &r);
    for (int64_t i = 0; y && i < n; i++) salt += nb_get(y, i) == 1, pepper += nb_get(y, i) == 0;
    ok(y && fabs((double)salt / n - 0.05) < 0.01 && fabs((double)pepper / n - 0.05) < 0.01,
       "saltpepper:0.1 sets 5%% of the pixels to 1 and 5%% to 0 (%.3f, %.3f)", (double)salt / n, (double)pepper / n);
    nb_corruption_parse(&c, "gaussian:0.1");
    y = nb_corrupt(tp, &c, half, 1, (int)Hh, (int)W, &r);
    for (int64_t i = 0; y && i < n; i++) moved += (nb_get(y, i) - 0.5) / n, sq += (nb_get(y, i) - 0.5) * (nb_get(y, i) - 0.5) / n;
    ok(y && fabs(moved) < 0.005 && fabs(sqrt(sq) - 0.1) < 0.005, "gaussian:0.1 adds noise of standard deviation 0.1 "
       "(mean %.4f, sd %.4f)", moved, sqrt(sq));
    nb_corruption_parse(&c, "block:5");
    y = nb_corrupt(tp, &c, ones, 1, (int)Hh, (int)W, &r);
    for (int64_t i = 0; y && i < n; i++) blocked += nb_get(y, i) == 0;
    ok(y && blocked == N * 25, "block:5 zeroes one 5x5 square per image (%lld of %lld)", (long long)blocked, (long long)(N * 25));
    nb_corruption_parse(&c, "blur:1");
    nb_tensor *dot = nb_zeros(tp, NB_F64, NB_SHAPE(1, Hh * W));
    nb_set(dot, 8 * W + 8, 1);
    y = nb_corrupt(tp, &c, dot, 1, (int)Hh, (int)W, &r);
    double total = 0;
    for (int64_t i = 0; y && i < Hh * W; i++) total += nb_get(y, i);
    ok(y && fabs(total - 1) < 1e-9 && nb_get(y, 8 * W + 8) < 0.25 && nb_get(y, 8 * W + 9) > 0.05,
       "blur:1 spreads a dot over its neighbours and keeps its mass (%.4f at the centre)", y ? nb_get(y, 8 * W + 8) : 0);
    nb_tape_free(tp);
}

static void test_denoiser_judged_on_noise(void)
{
    nb_params *ps;
    nb_model m = make(NB_DAE, &ps);
    uint8_t px[12 * D], lab[12];
    nb_dataset ds = tiny(px, lab, 12);
    nb_corruption c;
    nb_corruption_parse(&c, "dropout:0.5");
    nb_eval clean, noisy, again;
    const int st = nb_model_evaluate(&m, &ds, 4, NB_BIN_NONE, NULL, 7, &clean) ||
                   nb_model_evaluate(&m, &ds, 4, NB_BIN_NONE, &c, 7, &noisy) ||
                   nb_model_evaluate(&m, &ds, 4, NB_BIN_NONE, &c, 7, &again);
    ok(!st && noisy.recon != clean.recon && noisy.recon == again.recon,
       "a denoising model is judged on corrupted inputs (%.4f), not the clean ones (%.4f), the same "
       "corruption for the same seed", noisy.recon, clean.recon);
    nb_params_free(ps);
}

static void test_conditional_decoder(void)
{
    nb_params *ps;
    nb_model m = make(NB_CVAE, &ps);
    nb_tape *tp = nb_tape_new();
    nb_tensor *z = nb_full(tp, NB_F64, NB_SHAPE(K, Z), 0.3);
    nb_tensor *y = nb_zeros(tp, NB_F64, NB_SHAPE(K, K));
    for (int k = 0; k < K; k++) nb_set(y, k * K + k, 1); /* the same code under each label */
    nb_tensor *out = nb_model_decode(tp, &m, z, y);
    double spread = 0;
    for (int k = 1; out && k < K; k++)
        for (int p = 0; p < D; p++) spread = fmax(spread, fabs(nb_get(out, k * D + p) - nb_get(out, p)));
    ok(out && spread > 1e-3, "a conditional decoder's output depends on the label (largest change %.4f)", spread);
    /* and its encoder's too */
    nb_tensor *x = nb_full(tp, NB_F64, NB_SHAPE(K, D), 0.5), *mu, *lv;
    nb_model_encode(tp, &m, x, y, &mu, &lv);
    spread = 0;
    for (int k = 1; mu && k < K; k++)
        for (int j = 0; j < Z; j++) spread = fmax(spread, fabs(nb_get(mu, k * Z + j) - nb_get(mu, j)));
    ok(mu && spread > 1e-3, "and so does its encoder's (largest change %.4f)", spread);
    nb_tape_free(tp);
    nb_params_free(ps);
}

int main(void)
{
    test_loss_value();
    test_kl_per_dimension();
    test_active_units();
    test_corruptions();
    test_denoiser_judged_on_noise();
    test_conditional_decoder();
    return tap_done();
}
