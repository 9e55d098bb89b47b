/* docs/examples/mog_vae.c — a VAE whose prior is a learned mixture of Gaussians, with the
 * mixture's log-density written as a new op: a model and an op defined outside the library.
 *
 *     p(z) = Σ_k π_k N(z; μ_k, diag e^{v_k}),   π = softmax(logits)
 *     loss(x) = -log p(x|z) + log q(z|x) - log p(z),   z = μ(x) + σ(x)·ε
 *
 * The KL term has no closed form against a mixture, so it is estimated by the one sample z.
 * log p(z) is a log-sum-exp over K components of sums over d dimensions: as built-in ops it
 * would record K·d-sized intermediates per example; as one op it keeps only the (B, K)
 * responsibilities, and its backward is written out below (the derivation is in
 * docs/new-model.md). The program checks the op against the same density built from ops,
 * gradient-checks the op and the whole loss, and trains:
 *
 *     mog_vae --check
 *     mog_vae --train [--data DIR] [--components K] [--images N] [--epochs E]
 *
 * Built against an installed nabla with nothing but pkg-config:
 *     cc -std=c17 mog_vae.c example.c $(pkg-config --cflags --libs nabla) -o mog_vae
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

/* ---- the op: log p(z) under the mixture, per example ---------------------------------------- */
/* in: z (B, d), means (K, d), logvars (K, d), logits (K), contiguous; out (B).
 * saved: r (B, K), the posterior responsibilities of the components, in double. */

/* no M_PI: -std=c17 without feature macros does not define it */
static const double LOG_2PI = 1.8378770664093454836;

static double get(const nb_tensor *t, int64_t i)
{
    return t->dtype == NB_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static void add(nb_tensor *t, int64_t i, double v)
{
    if (t->dtype == NB_F64)
        ((double *)t->data)[i] += v;
    else
        ((float *)t->data)[i] += (float)v;
}

static nb_status mog_shape(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    const nb_tensor *z = n->in[0], *m = n->in[1], *v = n->in[2], *l = n->in[3];
    const int ok = z->ndim == 2 && m->ndim == 2 && v->ndim == 2 && l->ndim == 1 &&
                   m->shape[1] == z->shape[1] && v->shape[0] == m->shape[0] &&
                   v->shape[1] == m->shape[1] && l->shape[0] == m->shape[0] && m->shape[0] > 0;
    if (!ok)
        return nb_tape_fail(tp, NB_ERR_SHAPE, "nb_mog_log_prob: want z (B, d), means and logvars "
                            "(K, d), logits (K)");
    *nd = 1;
    shape[0] = z->shape[0];
    return NB_OK;
}

static nb_status mog_forward(nb_tape *tp, nb_node *n)
{
    const nb_tensor *z = n->in[0], *mu = n->in[1], *lv = n->in[2], *lg = n->in[3];
    const int64_t B = z->shape[0], d = z->shape[1], K = mu->shape[0];
    double *r = nb_op_alloc(tp, (size_t)(B * K + K) * sizeof *r), *logpi = r + B * K;
    if (!r) return nb_tape_status(tp);
    double mx = -INFINITY, s = 0;
    for (int64_t k = 0; k < K; k++) mx = fmax(mx, get(lg, k));
    for (int64_t k = 0; k < K; k++) s += exp(get(lg, k) - mx);
    for (int64_t k = 0; k < K; k++) logpi[k] = get(lg, k) - mx - log(s);
    for (int64_t b = 0; b < B; b++) {
        double *rb = r + b * K, top = -INFINITY, sum = 0;
        for (int64_t k = 0; k < K; k++) { /* log π_k + log N(z_b; μ_k, e^{v_k}) */
            double t = logpi[k];
            for (int64_t j = 0; j < d; j++) {
                const double e = get(z, b * d + j) - get(mu, k * d + j), v = get(lv, k * d + j);
                t -= 0.5 * (LOG_2PI + v + e * e * exp(-v));
            }
            rb[k] = t;
            top = fmax(top, t);
        }
        for (int64_t k = 0; k < K; k++) sum += exp(rb[k] - top);
        const double y = top + log(sum);
        for (int64_t k = 0; k < K; k++) rb[k] = exp(rb[k] - y); /* responsibilities */
        if (n->out->dtype == NB_F64)
            ((double *)n->out->data)[b] = y;
        else
            ((float *)n->out->data)[b] = (float)y;
    }
    n->saved = r;
    return NB_OK;
}

/* With g = dL/dy_b and r_bk the responsibilities, e = z - μ_k and w = e^{-v_k}:
 *   dz_b += -g Σ_k r_bk e w,    dμ_k += Σ_b g r_bk e w,    dv_k += Σ_b g r_bk (e² w - 1) / 2,
 *   dlogits_k += Σ_b g (r_bk - π_k). */
static nb_status mog_backward(nb_tape *tp, nb_node *n)
{
    const nb_tensor *z = n->in[0], *mu = n->in[1], *lv = n->in[2], *gy = n->out->grad;
    nb_tensor *gz = nb_op_grad(tp, n, 0), *gm = nb_op_grad(tp, n, 1), *gv = nb_op_grad(tp, n, 2);
    nb_tensor *gl = nb_op_grad(tp, n, 3);
    const int64_t B = z->shape[0], d = z->shape[1], K = mu->shape[0];
    const double *r = n->saved, *logpi = r + B * K;
    for (int64_t b = 0; b < B; b++) {
        const double g = get(gy, b);
        for (int64_t k = 0; k < K; k++) {
            const double gr = g * r[b * K + k];
            if (gl) add(gl, k, g * (r[b * K + k] - exp(logpi[k])));
            for (int64_t j = 0; j < d; j++) {
                const double e = get(z, b * d + j) - get(mu, k * d + j), w = exp(-get(lv, k * d + j));
                if (gz) add(gz, b * d + j, -gr * e * w);
                if (gm) add(gm, k * d + j, gr * e * w);
                if (gv) add(gv, k * d + j, 0.5 * gr * (e * e * w - 1));
            }
        }
    }
    return NB_OK;
}

static const nb_op_def mog_op = {.name = "mog_log_prob", .flags = NB_OP_CONTIGUOUS,
                                 .shape = mog_shape, .forward = mog_forward, .backward = mog_backward};

/* log Σ_k π_k N(z; μ_k, diag e^{v_k}) for each row of z: (B). */
static nb_tensor *mog_log_prob(nb_tape *tp, nb_tensor *z, nb_tensor *means, nb_tensor *logvars,
                               nb_tensor *logits)
{
    return nb_op_apply(tp, &mog_op, &(nb_node){.nin = 4, .in = {z, means, logvars, logits}});
}

/* The same density from built-in ops, (B, 1, d) against (K, d): the reference for the op. */
static nb_tensor *mog_log_prob_ops(nb_tape *tp, nb_tensor *z, nb_tensor *means,
                                   nb_tensor *logvars, nb_tensor *logits)
{
    const int64_t B = nb_dim(z, 0), d = nb_dim(z, 1);
    nb_tensor *lp = nb_normal_log_prob(tp, nb_reshape(tp, z, NB_SHAPE(B, 1, d)), means, logvars);
    nb_tensor *joint = nb_add(tp, nb_sum(tp, lp, NB_AXES(-1), 0), nb_log_softmax(tp, logits, 0));
    return nb_logsumexp(tp, joint, NB_AXES(1), 0);
}

/* ---- the model ------------------------------------------------------------------------------ */

typedef struct mog_vae {
    nb_model m;                          /* the encoder and decoder of the zoo's VAE */
    nb_tensor *means, *logvars, *logits; /* the prior's K components */
} mog_vae;

static nb_status mog_vae_init(mog_vae *v, const nb_model_cfg *cfg, int K, nb_params *ps, nb_rng *rng)
{
    nb_status st = nb_model_init(&v->m, cfg, ps, rng);
    if (st) return st;
    v->means = nb_param(ps, "prior.means", NB_SHAPE(K, cfg->latent));
    v->logvars = nb_param(ps, "prior.logvars", NB_SHAPE(K, cfg->latent));
    v->logits = nb_param(ps, "prior.logits", NB_SHAPE(K));
    if (!v->means || !v->logvars || !v->logits) return NB_ERR_ARG;
    nb_init_normal(v->means, rng, 0, 1); /* spread out; unit variances, equal weights */
    return NB_OK;
}

/* The negative ELBO per example, averaged: reconstruction + a one-sample KL to the mixture.
 * eps (B, d) fixes the noise; NULL draws it. */
static nb_tensor *mog_vae_loss(nb_tape *tp, const mog_vae *v, nb_tensor *x, nb_tensor *eps, nb_rng *rng)
{
    nb_tensor *mu, *logvar;
    if (nb_model_encode(tp, &v->m, x, NULL, &mu, &logvar)) return NULL;
    if (!eps) eps = nb_randn(tp, rng, mu->dtype, 2, mu->shape);
    nb_tensor *z = nb_add(tp, mu, nb_mul(tp, nb_exp(tp, nb_scale(tp, logvar, 0.5)), eps));
    nb_tensor *recon = nb_model_nll(tp, &v->m, nb_model_decode(tp, &v->m, z, NULL), x);
    nb_tensor *log_q = nb_sum(tp, nb_normal_log_prob(tp, z, mu, logvar), NB_AXES(1), 0);
    nb_tensor *log_p = mog_log_prob(tp, z, v->means, v->logvars, v->logits);
    return nb_mean_all(tp, nb_add(tp, recon, nb_sub(tp, log_q, log_p)));
}

/* ---- checks and training ------------------------------------------------------------------- */

static nb_tensor *build_op(nb_tape *tp, nb_tensor **in, void *ctx)
{
    (void)ctx;
    return mog_log_prob(tp, in[0], in[1], in[2], in[3]);
}

static nb_tensor *build_loss(nb_tape *tp, nb_tensor **in, void *ctx)
{
    return mog_vae_loss(tp, ctx, in[0], in[1], NULL);
}

static nb_tensor *train_loss(nb_tape *tp, nb_tensor *x, nb_rng *rng, void *ctx)
{
    return mog_vae_loss(tp, ctx, x, NULL, rng);
}

static int check(void)
{
    /* the op against the same density from built-in ops, f64, at a few random points */
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(5);
    nb_tensor *z = nb_randn(tp, &r, NB_F64, NB_SHAPE(6, 3)), *m = nb_randn(tp, &r, NB_F64, NB_SHAPE(4, 3));
    nb_tensor *v = nb_randn(tp, &r, NB_F64, NB_SHAPE(4, 3)), *l = nb_randn(tp, &r, NB_F64, NB_SHAPE(4));
    nb_tensor *a = mog_log_prob(tp, z, m, v, l), *b = mog_log_prob_ops(tp, z, m, v, l);
    double worst = a && b ? 0 : INFINITY;
    for (int64_t i = 0; a && b && i < 6; i++)
        worst = fmax(worst, fabs(nb_get(a, i) - nb_get(b, i)) / fmax(1, fabs(nb_get(b, i))));
    const int same = worst < 1e-12;
    printf("%s mog_log_prob equals the density built from ops: max relative difference %.1e%s%s\n",
           same ? "ok" : "FAIL", worst, a && b ? "" : ": ", a && b ? "" : nb_tape_error(tp));
    nb_tape_free(tp);

    nb_gradcheck_case op = {.label = "mog_log_prob", .build = build_op, .nin = 4, .op = &mog_op,
                            .in = {NB_GC_IN(NB_GC_ANY, 5, 3), NB_GC_IN(NB_GC_ANY, 4, 3),
                                   NB_GC_IN(NB_GC_ANY, 4, 3), NB_GC_IN(NB_GC_ANY, 4)}, .seed = 3};
    int rc = !same;
    rc |= example_gradcheck(&op);

    mog_vae vae;
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng rr = nb_rng_seed(4);
    nb_model_cfg cfg = example_vae(2, 3, 4, 3);
    if (mog_vae_init(&vae, &cfg, 4, ps, &rr)) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    nb_gradcheck_case loss = {.label = "MoG-prior VAE loss", .build = build_loss, .ctx = &vae, .nin = 2,
                              .in = {NB_GC_IN(NB_GC_UNIT, 2, 6), NB_GC_IN(NB_GC_CONST, 2, 3)},
                              .params = ps, .seed = 6, .op = &mog_op};
    rc |= example_gradcheck(&loss);
    nb_params_free(ps);
    return rc;
}

static int train(const char *dir, int K, int64_t n, int epochs)
{
    mog_vae vae;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model_cfg cfg = example_vae(28, 28, 64, 8);
    if (mog_vae_init(&vae, &cfg, K, ps, &r)) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    printf("VAE with a %d-component Gaussian-mixture prior, MLP 784-64-8, %lld images, %d epochs\n",
           K, (long long)n, epochs);
    const int rc = example_train(dir, n, epochs, 64, 1e-3, &vae.m, train_loss, &vae);
    nb_params_free(ps);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int mode = 0, K = 10, epochs = 3;
    int64_t n = 512;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "--check")) mode |= 1;
        else if (!strcmp(argv[i], "--train")) mode |= 2;
        else if (!strcmp(argv[i], "--data") && more) dir = argv[++i];
        else if (!strcmp(argv[i], "--components") && more) K = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && more) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && more) epochs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s --check | --train [--data DIR] [--components K] [--images N] "
                    "[--epochs E]\n", argv[0]);
            return 2;
        }
    }
    if (!mode || K < 1 || n < 1 || epochs < 2) {
        fprintf(stderr, "%s: give --check or --train, with components, images >= 1 and epochs >= 2\n", argv[0]);
        return 2;
    }
    int rc = 0;
    if (mode & 1) rc |= check();
    if (mode & 2) rc |= train(dir, K, n, epochs);
    return rc;
}
