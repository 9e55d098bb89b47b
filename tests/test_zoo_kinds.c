/* tests/test_zoo_kinds.c — the VQ-VAE, the VampPrior and the two-layer VAE: whole-loss f64
 * gradient checks, the loss against a plain f64 reference written here, the IS log-likelihood
 * against direct integration over a 1-D (or 2-D) latent, the codebook's perplexity and dead-code
 * reset, training on Fashion-MNIST and bit-identical resume through checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

enum { B = 2, D = 12 };
static const double LOG_2PI = 1.8378770664093454836;

static nb_model_cfg tiny(nb_model_kind kind)
{
    nb_model_cfg c = nb_model_defaults();
    c.kind = kind, c.channels = 1, c.height = 3, c.width = 4, c.latent = 3, c.nhidden = 1, c.hidden[0] = 5;
    c.act = NB_ACT_TANH, c.codebook = 4, c.code_dim = 2, c.codes = 3, c.pseudo_inputs = 3;
    c.hvae_hidden1 = 5, c.hvae_z1 = 3, c.hvae_hidden2 = 4, c.hvae_z2 = 2;
    return c;
}

/* ---- a plain f64 reference ----------------------------------------------------------------- */

static void ref_linear(const nb_linear_layer *l, const double *x, double *y)
{
    for (int64_t o = 0; o < l->out; o++) {
        double s = nb_get(l->bias, o);
        for (int64_t i = 0; i < l->in; i++) s += nb_get(l->weight, o * l->in + i) * x[i];
        y[o] = s;
    }
}

static void ref_mlp(const nb_mlp *m, const double *x, double *y)
{
    double a[64], b[64];
    memcpy(a, x, sizeof(double) * (size_t)m->layer[0].in);
    for (int i = 0; i < m->n; i++) {
        ref_linear(&m->layer[i], a, b);
        for (int64_t j = 0; j < m->layer[i].out; j++)
            a[j] = i < m->n - 1 || m->act_last ? (m->act == NB_ACT_TANH ? tanh(b[j]) : fmax(b[j], 0)) : b[j];
    }
    memcpy(y, a, sizeof(double) * (size_t)m->layer[m->n - 1].out);
}

static double ref_bce(const double *logit, const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += fmax(logit[i], 0) - logit[i] * x[i] + log1p(exp(-fabs(logit[i])));
    return s;
}

static double ref_log_normal(const double *z, const double *mu, const double *lv, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++) {
        const double m = mu ? mu[i] : 0, v = lv ? lv[i] : 0;
        s += -0.5 * (LOG_2PI + v + (z[i] - m) * (z[i] - m) * exp(-v));
    }
    return s;
}

/* mu and logvar of a Gaussian net (body, then two heads) at x */
static void ref_gauss(const nb_mlp *body, const nb_linear_layer *hm, const nb_linear_layer *hv, const double *x,
                      double *mu, double *lv)
{
    double h[64];
    ref_mlp(body, x, h);
    ref_linear(hm, h, mu), ref_linear(hv, h, lv);
}

/* The loss per batch as the objective of each kind reads, in f64 from the parameters. */
static double ref_loss(const nb_model *m, const double *x, const double *eps)
{
    const nb_model_cfg *c = &m->cfg;
    double total = 0;
    for (int i = 0; i < B; i++) {
        const double *xi = x + i * D;
        double h[64], out[64], mu[64], lv[64], z[64];
        if (c->kind == NB_VQVAE) {
            const int L = c->codes, dc = c->code_dim;
            double ze[64], zq[64], vq = 0;
            ref_mlp(&m->enc, xi, h);
            ref_linear(&m->head_mu, h, ze);
            for (int p = 0; p < L; p++) {
                int best = 0;
                double bd = INFINITY;
                for (int k = 0; k < c->codebook; k++) {
                    double dd = 0;
                    for (int j = 0; j < dc; j++) dd += pow(ze[p * dc + j] - nb_get(m->codebook, k * dc + j), 2);
                    if (dd < bd) bd = dd, best = k;
                }
                for (int j = 0; j < dc; j++) zq[p * dc + j] = nb_get(m->codebook, best * dc + j);
                vq += (1 + c->commitment) * bd;
            }
            ref_mlp(&m->dec, zq, out);
            total += ref_bce(out, xi, D) + vq;
        } else if (c->kind == NB_VAMP) {
            const int d = c->latent;
            ref_gauss(&m->enc, &m->head_mu, &m->head_logvar, xi, mu, lv);
            for (int j = 0; j < d; j++) z[j] = mu[j] + exp(0.5 * lv[j]) * eps[i * d + j];
            double lp[64], mx = -INFINITY, s = 0;
            for (int k = 0; k < c->pseudo_inputs; k++) {
                double u[D], mk[64], vk[64];
                for (int j = 0; j < D; j++) u[j] = fmin(fmax(nb_get(m->pseudo, k * D + j), 0), 1);
                ref_gauss(&m->enc, &m->head_mu, &m->head_logvar, u, mk, vk);
                lp[k] = ref_log_normal(z, mk, vk, d), mx = fmax(mx, lp[k]);
            }
            for (int k = 0; k < c->pseudo_inputs; k++) s += exp(lp[k] - mx);
            ref_mlp(&m->dec, z, out);
            total += ref_bce(out, xi, D) + ref_log_normal(z, mu, lv, d) - (mx + log(s) - log(c->pseudo_inputs));
        } else { /* HVAE */
            const int d1 = c->hvae_z1, d2 = c->hvae_z2;
            double mu2[64], lv2[64], z2[64], pm[64], pv[64], kl2 = 0;
            ref_gauss(&m->enc, &m->head_mu, &m->head_logvar, xi, mu, lv);
            for (int j = 0; j < d1; j++) z[j] = mu[j] + exp(0.5 * lv[j]) * eps[i * (d1 + d2) + j];
            ref_gauss(&m->enc2, &m->head_mu2, &m->head_logvar2, z, mu2, lv2);
            for (int j = 0; j < d2; j++) {
                z2[j] = mu2[j] + exp(0.5 * lv2[j]) * eps[i * (d1 + d2) + d1 + j];
                kl2 += -0.5 * (1 + lv2[j] - mu2[j] * mu2[j] - exp(lv2[j]));
            }
            ref_gauss(&m->prior1, &m->prior_mu, &m->prior_logvar, z2, pm, pv);
            ref_mlp(&m->dec, z, out);
            total += ref_bce(out, xi, D) + ref_log_normal(z, mu, lv, d1) - ref_log_normal(z, pm, pv, d1) + kl2;
        }
    }
    return total / B;
}

/* ---- gradient checks and values ------------------------------------------------------------ */

typedef struct kind_case {
    nb_model m;
    nb_params *ps;
    int neps;            /* ε per example */
    double x[B * D];     /* VQ: the input, fixed so that its codes are */
    double gap[B * 8];   /* VQ: C = z_q - z_e at the checked point, and the codes */
    double codes[B * 8];
    double ze0[B * 8], zq0[B * 8]; /* VQ: z_e and z_q there */
} kind_case;

static nb_tensor *build_vae(nb_tape *tp, nb_tensor **in, void *ctx)
{
    kind_case *k = ctx;
    nb_batch b = {in[0], in[0], NULL};
    nb_loss_opts o = {.beta = 1, .eps = nb_reshape(tp, in[1], NB_SHAPE(B, k->neps))};
    nb_loss_terms t;
    nb_model_loss(tp, &k->m, &b, &o, &t);
    return t.loss;
}

/* The straight-through gradient is not the loss's own (the decoder reads z_q, which does not move
 * with z_e), but at the checked point θ0 it is the gradient of the surrogate
 *   S(θ) = recon(dec(z_e(θ) + C)) + ‖z_e(θ0) − e_codes(θ)‖² + β_c·‖z_e(θ) − z_q(θ0)‖²
 * with C = z_q(θ0) − z_e(θ0) and the codes of θ0. The case returns loss + sg(S − loss): the tape
 * differentiates the library's loss, the finite differences see S. */
static nb_tensor *build_vq(nb_tape *tp, nb_tensor **in, void *ctx)
{
    (void)in;
    kind_case *k = ctx;
    const nb_model *m = &k->m;
    const int64_t rows = B * m->cfg.codes, dc = m->cfg.code_dim;
    nb_tensor *x = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), k->x, B * D);
    nb_batch b = {x, x, NULL};
    nb_loss_opts o = {.beta = 1};
    nb_loss_terms t;
    nb_model_loss(tp, m, &b, &o, &t);
    nb_tensor *gap = nb_tensor_from(tp, NB_F64, NB_SHAPE(rows, dc), k->gap, rows * dc);
    nb_tensor *zq = nb_index_select(tp, m->codebook, 0, nb_tensor_from(tp, NB_F64, NB_SHAPE(rows), k->codes, rows));
    nb_tensor *recon = nb_model_nll(tp, m, nb_model_decode(tp, m, nb_reshape(tp, nb_add(tp, t.z_e, gap), NB_SHAPE(B, -1)), NULL), x);
    nb_tensor *ze0 = nb_tensor_from(tp, NB_F64, NB_SHAPE(rows, dc), k->ze0, rows * dc);
    nb_tensor *zq0 = nb_tensor_from(tp, NB_F64, NB_SHAPE(rows, dc), k->zq0, rows * dc);
    nb_tensor *cb = nb_sum_all(tp, nb_square(tp, nb_sub(tp, ze0, zq)));
    nb_tensor *cm = nb_sum_all(tp, nb_square(tp, nb_sub(tp, t.z_e, zq0)));
    nb_tensor *s = nb_add(tp, nb_mean_all(tp, recon), nb_scale(tp, nb_add(tp, cb, nb_scale(tp, cm, m->cfg.commitment)), 1.0 / B));
    return nb_add(tp, t.loss, nb_detach(tp, nb_sub(tp, s, t.loss)));
}

/* VQ: the smallest gap between a row's nearest and second-nearest code, and C and the codes. */
static double vq_point(kind_case *k)
{
    const nb_model *m = &k->m;
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), k->x, B * D);
    nb_batch b = {x, x, NULL};
    nb_loss_opts o = {.beta = 1};
    nb_loss_terms t;
    double margin = INFINITY;
    if (!nb_model_loss(tp, m, &b, &o, &t)) {
        const int dc = m->cfg.code_dim;
        for (int64_t r = 0; r < B * m->cfg.codes; r++) {
            double d1 = INFINITY, d2 = INFINITY;
            for (int c = 0; c < m->cfg.codebook; c++) {
                double dd = 0;
                for (int j = 0; j < dc; j++) dd += pow(nb_get(t.z_e, r * dc + j) - nb_get(m->codebook, c * dc + j), 2);
                if (dd < d1) d2 = d1, d1 = dd;
                else if (dd < d2) d2 = dd;
            }
            margin = fmin(margin, d2 - d1);
            const int64_t code = (int64_t)nb_get(t.codes, r);
            k->codes[r] = (double)code;
            for (int j = 0; j < dc; j++) {
                k->ze0[r * dc + j] = nb_get(t.z_e, r * dc + j), k->zq0[r * dc + j] = nb_get(m->codebook, code * dc + j);
                k->gap[r * dc + j] = k->zq0[r * dc + j] - k->ze0[r * dc + j];
            }
        }
    }
    nb_tape_free(tp);
    return margin;
}

static void test_kind(const char *label, nb_model_cfg cfg, int neps)
{
    kind_case k = {.neps = neps};
    nb_rng r = nb_rng_seed(77);
    k.ps = nb_params_new(NB_F64);
    if (!ok(nb_model_init(&k.m, &cfg, k.ps, &r) == NB_OK, "%s: builds (%s)", label, nb_last_error())) return;
    if (cfg.kind == NB_VQVAE) { /* codes spread out, and an input whose codes are far from ties */
        nb_init_uniform(k.m.codebook, &r, -1, 1);
        double margin = 0;
        for (int tries = 0; tries < 50 && margin < 0.05; tries++) {
            for (int i = 0; i < B * D; i++) k.x[i] = 0.05 + 0.9 * nb_rng_uniform1(&r);
            margin = vq_point(&k);
        }
        ok(margin >= 0.05, "%s: an input with every code chosen by a margin (%.3f)", label, margin);
    }
    nb_gradcheck_case g = {.label = label, .ctx = &k, .params = k.ps, .seed = 31};
    if (cfg.kind == NB_VQVAE) {
        g.build = build_vq, g.nin = 0;
    } else {
        g.build = build_vae, g.nin = 2;
        g.in[0] = (nb_gc_input)NB_GC_IN(NB_GC_UNIT, B, D);
        g.in[1] = (nb_gc_input)NB_GC_IN(NB_GC_CONST, B * neps);
    }
    gc_tap(&g);

    /* the value, against the reference */
    nb_tape *tp = nb_tape_new();
    double x[B * D], eps[B * 8];
    for (int i = 0; i < B * D; i++) x[i] = cfg.kind == NB_VQVAE ? k.x[i] : nb_rng_uniform1(&r);
    for (int i = 0; i < B * neps; i++) eps[i] = nb_rng_uniform1(&r) * 2 - 1;
    nb_tensor *xt = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), x, B * D);
    nb_batch b = {xt, xt, NULL};
    nb_loss_opts o = {.beta = 1, .eps = neps ? nb_tensor_from(tp, NB_F64, NB_SHAPE(B, neps), eps, B * neps) : NULL};
    nb_loss_terms t;
    const double want = ref_loss(&k.m, x, eps);
    const double got = nb_model_loss(tp, &k.m, &b, &o, &t) ? NAN : nb_get(t.loss, 0);
    ok(fabs(got - want) < 1e-10 * fmax(1, fabs(want)), "%s: the loss is the objective's value (%.12g, reference %.12g)",
       label, got, want);
    nb_tape_free(tp);
    nb_params_free(k.ps);
}

/* ---- log-likelihood against direct integration --------------------------------------------- */

/* log ∫ p(x|z1) p(z1|z2) p(z2) dz (HVAE, z1 and z2 of one dim) or log ∫ p(x|z) p(z) dz (vamp,
 * and the VAE's N(0, 1)), on a grid, the decoder run on every point. */
static double direct_log_px(const nb_model *m, const double *x)
{
    enum { G = 801 };
    const double lo = -8, step = 16.0 / (G - 1);
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    double z[G], xr[G * D];
    for (int i = 0; i < G; i++) z[i] = lo + step * i;
    for (int i = 0; i < G * D; i++) xr[i] = x[i % D];
    nb_tensor *zt = nb_tensor_from(tp, NB_F64, NB_SHAPE(G, 1), z, G);
    nb_tensor *nll = nb_model_nll(tp, m, nb_model_decode(tp, m, zt, NULL), nb_tensor_from(tp, NB_F64, NB_SHAPE(G, D), xr, G * D));
    double lpx[G], lpz[G], acc = 0, mx = -INFINITY;
    for (int i = 0; i < G; i++) lpx[i] = -nb_get(nll, i);
    if (m->cfg.kind == NB_VAMP) { /* p(z) = (1/Kp) Σ_k N(z; μ_k, σ_k²), from the reference encoder */
        for (int i = 0; i < G; i++) {
            double s = 0;
            for (int k = 0; k < m->cfg.pseudo_inputs; k++) {
                double u[D], mk, vk;
                for (int j = 0; j < D; j++) u[j] = fmin(fmax(nb_get(m->pseudo, k * D + j), 0), 1);
                ref_gauss(&m->enc, &m->head_mu, &m->head_logvar, u, &mk, &vk);
                s += exp(ref_log_normal(&z[i], &mk, &vk, 1)) / m->cfg.pseudo_inputs;
            }
            lpz[i] = log(s);
        }
    } else if (m->cfg.kind == NB_VAE) { /* N(0, 1) */
        for (int i = 0; i < G; i++) lpz[i] = ref_log_normal(&z[i], NULL, NULL, 1);
    } else { /* p(z1) = ∫ p(z1|z2) p(z2) dz2 */
        for (int i = 0; i < G; i++) lpz[i] = 0;
        for (int j = 0; j < G; j++) {
            double pm, pv;
            ref_gauss(&m->prior1, &m->prior_mu, &m->prior_logvar, &z[j], &pm, &pv);
            const double w = exp(ref_log_normal(&z[j], NULL, NULL, 1)) * step;
            for (int i = 0; i < G; i++) lpz[i] += w * exp(ref_log_normal(&z[i], &pm, &pv, 1));
        }
        for (int i = 0; i < G; i++) lpz[i] = log(lpz[i]);
    }
    for (int i = 0; i < G; i++) mx = fmax(mx, lpx[i] + lpz[i]);
    for (int i = 0; i < G; i++) acc += exp(lpx[i] + lpz[i] - mx) * step;
    nb_tape_free(tp);
    return mx + log(acc);
}

static void test_log_likelihood(const char *label, nb_model_cfg cfg, int ni, int k)
{
    cfg.latent = 1, cfg.hvae_z1 = 1, cfg.hvae_z2 = 1;
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(5);
    nb_model m;
    if (!ok(nb_model_init(&m, &cfg, ps, &r) == NB_OK, "%s (1-D latents): builds (%s)", label, nb_last_error())) return;
    /* ni images, up to 3: with k = 4000 all are decoded in one chunk, sample-major (a mix-up of
     * their rows would show) */
    uint8_t img[3 * D];
    double x[3 * D], want = 0;
    for (int j = 0; j < 3 * D; j++) img[j] = (uint8_t)((j * 53 + 17 + j / D * 90) % 256), x[j] = img[j] / 255.0;
    nb_dataset ds = {.n = ni, .channels = 1, .rows = 3, .cols = 4, .images = img};
    double ll = NAN, se = NAN;
    const nb_status st = nb_model_log_likelihood(&m, &ds, ni, k, NB_BIN_NONE, 3, &ll, &se);
    for (int i = 0; i < ni; i++) want += direct_log_px(&m, x + i * D) / ni;
    ok(!st && fabs(ll - want) < 0.02, "%s: IS log p(x) of %d image(s), k = %d: %.4f, by integration over a grid "
       "%.4f (%s)", label, ni, k, ll, want, st ? nb_last_error() : "");
    nb_params_free(ps);
}

/* ---- the codebook -------------------------------------------------------------------------- */

static void test_codebook(void)
{
    const int64_t use[4] = {1, 1, 0, 2};
    int dead = -1;
    const double p = nb_vq_perplexity(use, 4, &dead);
    ok(fabs(p - exp(-(0.25 * log(0.25) * 2 + 0.5 * log(0.5)))) < 1e-12 && dead == 1,
       "perplexity exp(H(usage)) = %.6f, 1 dead code of 4", p);
    const int64_t one[4] = {0, 5, 0, 0}, all[4] = {3, 3, 3, 3};
    ok(fabs(nb_vq_perplexity(one, 4, NULL) - 1) < 1e-12 && fabs(nb_vq_perplexity(all, 4, NULL) - 4) < 1e-12,
       "perplexity 1 for one code used, K for all used alike");

    nb_model_cfg cfg = tiny(NB_VQVAE);
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(8);
    nb_model m;
    nb_model_init(&m, &cfg, ps, &r);
    double before[8], ze[5 * 2];
    for (int i = 0; i < 8; i++) before[i] = nb_get(m.codebook, i);
    for (int i = 0; i < 10; i++) ze[i] = 10 + i;
    const int64_t u[4] = {4, 0, 7, 0};
    nb_rng a = nb_rng_seed(9);
    int reset = -1;
    nb_status st = nb_vq_reset_dead(&m, u, 4, ze, NB_F64, 5, 2, &a, &reset);
    int kept = 1, moved = 1;
    for (int k = 0; k < 4; k++) {
        const double c0 = nb_get(m.codebook, k * 2), c1 = nb_get(m.codebook, k * 2 + 1);
        if (u[k]) kept &= c0 == before[k * 2] && c1 == before[k * 2 + 1];
        else moved &= c0 >= 10 && c0 <= 18 && fmod(c0, 2) == 0 && c1 == c0 + 1; /* a whole row of z_e */
    }
    ok(!st && reset == 2 && kept && moved, "dead-code reset: the 2 unused codes become rows of z_e, the others stay");
    double first[8];
    for (int i = 0; i < 8; i++) first[i] = nb_get(m.codebook, i);
    a = nb_rng_seed(9);
    nb_vq_reset_dead(&m, u, 4, ze, NB_F64, 5, 2, &a, NULL);
    int same = 1;
    for (int i = 0; i < 8; i++) same &= nb_get(m.codebook, i) == first[i];
    ok(same, "the reset is a function of the generator: the same draw gives the same codes");
    ok(nb_vq_reset_dead(&m, u, 3, ze, NB_F64, 5, 2, &a, NULL) == NB_ERR_ARG, "a usage of the wrong size is refused");
    /* all four dead, from four rows, many draws: never two codes on one row (they would tie) */
    const int64_t none[4] = {0};
    int distinct = 1;
    for (int draw = 0; draw < 200; draw++) {
        nb_vq_reset_dead(&m, none, 4, ze, NB_F64, 4, 2, &a, NULL);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < i; j++) distinct &= nb_get(m.codebook, i * 2) != nb_get(m.codebook, j * 2);
    }
    ok(distinct, "dead-code reset: the codes get distinct rows of z_e when there are as many rows as codes");
    ok(nb_vq_reset_dead(&m, none, 4, ze, NB_F64, 1, 2, &a, NULL) == NB_OK && nb_get(m.codebook, 6) == 10,
       "dead-code reset: more codes than rows reuses rows");

    /* the data-dependent start: every code one of the encoder's outputs of the first images */
    uint8_t px[6 * D];
    nb_rng g = nb_rng_seed(10);
    for (int i = 0; i < 6 * D; i++) px[i] = (uint8_t)nb_rng_below(&g, 256);
    nb_dataset six = {.n = 6, .channels = 1, .rows = 3, .cols = 4, .images = px};
    double outs[6 * 8];
    const int L = cfg.codes, dc = cfg.code_dim;
    for (int i = 0; i < 6; i++) {
        double xi[D], h[64];
        for (int j = 0; j < D; j++) xi[j] = px[i * D + j] / 255.0;
        ref_mlp(&m.enc, xi, h);
        ref_linear(&m.head_mu, h, outs + i * L * dc);
    }
    st = nb_vq_init_codebook(&m, &six, &a);
    int rows[4], found = 1, apart = 1;
    for (int k = 0; k < 4; k++) {
        rows[k] = -1;
        for (int r2 = 0; r2 < 6 * L; r2++)
            if (fabs(nb_get(m.codebook, k * dc) - outs[r2 * dc]) < 1e-12 &&
                fabs(nb_get(m.codebook, k * dc + 1) - outs[r2 * dc + 1]) < 1e-12)
                rows[k] = r2;
        found &= rows[k] >= 0;
        for (int j = 0; j < k; j++) apart &= rows[j] != rows[k];
    }
    ok(!st && found && apart, "nb_vq_init_codebook: the 4 codes are 4 distinct encoder outputs of the 6 images (%s)",
       st ? nb_last_error() : "");
    nb_dataset wrong = six;
    wrong.cols = 5;
    ok(nb_vq_init_codebook(&m, &wrong, &a) == NB_ERR_SHAPE, "nb_vq_init_codebook: images of another shape are "
       "refused (%s)", nb_last_error());
    nb_dataset ds = {.n = 1, .channels = 1, .rows = 3, .cols = 4, .images = (uint8_t[D]){0}};
    double ll, se;
    ok(nb_model_log_likelihood(&m, &ds, 1, 10, NB_BIN_NONE, 1, &ll, &se) == NB_ERR_ARG &&
       strstr(nb_last_error(), "point mass"), "IS log-likelihood of a VQ-VAE is refused (%s)", nb_last_error());
    nb_params_free(ps);
}

/* ---- training and resume on Fashion-MNIST -------------------------------------------------- */

static const char *data_dir = "/usr/share/datasets/fashion-mnist";
static char tmp[256];

static nb_train_cfg small(const char *out, const char *kind, const char *arch)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.data, sizeof c.data, "%s", data_dir);
    snprintf(c.out, sizeof c.out, "%s/%s", tmp, out);
    c.train_size = 512, c.test_size = 256, c.batch = 32, c.epochs = 1, c.progress = 0;
    nb_train_set(&c, "model", kind), nb_train_set(&c, "arch", arch);
    nb_train_set(&c, "pseudo-inputs", "50");
    return c;
}

static int run(nb_train_cfg c, const char *resume, nb_epoch_log *last)
{
    nb_trainer *t = nb_trainer_new(&c, resume);
    if (!t) return 0;
    nb_status st = nb_trainer_run(t, &(nb_train_hooks){NULL, NULL, NULL});
    if (!st && last) {
        nb_eval e;
        st = nb_model_evaluate(nb_trainer_model(t), nb_trainer_data(t, 1), 256, NB_BIN_NONE, NULL, 5, &e);
        last->test = e;
    }
    nb_trainer_free(t);
    return st == NB_OK;
}

static void keep_log(const nb_epoch_log *l, void *ctx) { *(nb_epoch_log *)ctx = *l; }

static int same_file_params(const char *a, const char *b)
{
    nb_safetensors *fa, *fb;
    if (nb_st_open(&fa, a)) return 0;
    if (nb_st_open(&fb, b)) return nb_st_close(fa), 0;
    int same = nb_st_count(fa) == nb_st_count(fb);
    for (int i = 0; same && i < nb_st_count(fa); i++) {
        nb_tensor x, y;
        const char *name = nb_st_name(fa, i);
        same = !nb_st_get(fa, name, &x) && !nb_st_get(fb, name, &y) && nb_same_shape(&x, &y) &&
               !memcmp(x.data, y.data, (size_t)nb_numel(&x) * nb_dtype_size(x.dtype));
    }
    nb_st_close(fa), nb_st_close(fb);
    return same;
}

static void test_training(const char *label, const char *kind, const char *arch)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%s", kind, arch);
    nb_train_cfg c = small(name, kind, arch);
    c.epochs = 2;
    /* a codebook needs steps to settle: a reset after a few dozen sends the decoder codes it never
     * saw; restarts every 10 steps of the 64, so that resuming meets restarts inside an epoch */
    if (!strcmp(kind, "vqvae")) c.train_size = 2048, c.vq_restart = 10;
    nb_trainer *t = nb_trainer_new(&c, NULL);
    if (!t) {
        ok(0, "%s: set-up (%s)", label, nb_last_error());
        return;
    }
    nb_eval e0;
    nb_model_evaluate(nb_trainer_model(t), nb_trainer_data(t, 1), 256, NB_BIN_NONE, NULL, 5, &e0);
    nb_epoch_log el = {0};
    const nb_status st = nb_trainer_run(t, &(nb_train_hooks){NULL, keep_log, &el});
    ok(!st && el.test.elbo_loss < 0.8 * e0.elbo_loss, "%s: two epochs on %lld images: test bound %.2f -> %.2f (%s)",
       label, (long long)c.train_size, e0.elbo_loss, el.test.elbo_loss, st ? nb_last_error() : "");
    if (!strcmp(kind, "vqvae"))
        ok(el.perplexity > 1 && el.perplexity <= c.model.codebook && el.dead_codes >= 0 &&
           el.test.perplexity > 1 && fabs(el.test.kl - nb_trainer_model(t)->positions * log(c.model.codebook)) < 1e-3,
           "%s: perplexity %.1f (test %.1f), %d dead codes, bound = recon + L log K", label, el.perplexity,
           el.test.perplexity, el.dead_codes);
    if (!strcmp(kind, "hvae"))
        ok(fabs(el.test.kl1 + el.test.kl2 - el.test.kl) < 1e-6 && el.test.latent2 == 50 && el.test.active2 >= 0,
           "%s: KL per layer %.2f + %.2f = %.2f; active units %d/%d and %d/%d", label, el.test.kl1, el.test.kl2,
           el.test.kl, el.test.active1, el.test.latent, el.test.active2, el.test.latent2);
    nb_trainer_free(t);

    /* resume after epoch 1 of 2: bit-identical to the uninterrupted run (dead-code resets included) */
    char full[600], part[600], keep[600];
    snprintf(full, sizeof full, "%s/checkpoint.safetensors", c.out);
    nb_train_cfg p = c;
    snprintf(p.out, sizeof p.out, "%s/%s-part", tmp, name);
    snprintf(part, sizeof part, "%s/checkpoint.safetensors", p.out);
    snprintf(keep, sizeof keep, "%s/after1.safetensors", p.out);
    p.epochs = 1;
    int runs = run(p, NULL, NULL) && !rename(part, keep);
    p.epochs = 2;
    runs = runs && run(p, keep, NULL);
    nb_train_cfg back;
    int epoch = -1;
    const int cfg_ok = !nb_checkpoint_config(part, &back, &epoch, NULL) && back.model.kind == c.model.kind &&
                       back.model.codebook == c.model.codebook && back.model.pseudo_inputs == 50 && epoch == 2;
    ok(runs && cfg_ok && same_file_params(full, part), "%s: a run resumed after epoch 1 ends bit-identical, its "
       "checkpoint holds the kind and its sizes (%s)", label, runs ? "" : nb_last_error());
}

int main(void)
{
    nb_model_cfg vq = tiny(NB_VQVAE), vamp = tiny(NB_VAMP), hvae = tiny(NB_HVAE);
    test_kind("VQ-VAE (MLP), straight-through", vq, 0);
    test_kind("VampPrior VAE (MLP)", vamp, vamp.latent);
    test_kind("two-layer VAE", hvae, hvae.hvae_z1 + hvae.hvae_z2);
    test_log_likelihood("VampPrior", vamp, 1, 20000);
    test_log_likelihood("two-layer VAE", hvae, 1, 20000);
    test_log_likelihood("VAE, Bernoulli decoder", tiny(NB_VAE), 3, 4000);
    test_codebook();
    snprintf(tmp, sizeof tmp, "/tmp/nabla_zoo_kinds_%d", (int)getpid());
    if (access(data_dir, R_OK) == 0) {
        test_training("VQ-VAE (MLP)", "vqvae", "mlp");
        test_training("VQ-VAE (conv)", "vqvae", "conv");
        test_training("VampPrior", "vamp", "mlp");
        test_training("two-layer VAE", "hvae", "mlp");
    } else {
        tap_diag("skipped the training tests: no %s", data_dir);
    }
    return tap_done();
}
