/* tests/test_likelihood.c — the importance-sampled log-likelihood and the IWAE example model:
 * k = 1 equals the ELBO in expectation, the estimate rises with k, and the new model's loss
 * passes the shared gradient check. Bounds hold for any model, so a small untrained VAE on
 * synthetic images is enough. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "docs/examples/iwae.h"
#include "models/internal.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

enum { N = 256, H = 4, W = 5, D = H * W };

static nb_model_cfg small_vae(void)
{
    nb_model_cfg c = nb_model_defaults();
    c.channels = 1, c.height = H, c.width = W, c.latent = 3, c.nhidden = 1, c.hidden[0] = 8;
    c.act = NB_ACT_TANH;
    return c;
}

/* A data set of N bytes images: two blobs, so that the model has something to explain. */
static nb_dataset synthetic(void)
{
    nb_dataset ds = {.n = N, .channels = 1, .rows = H, .cols = W, .owned = 1};
    ds.images = malloc(N * D);
    nb_rng r = nb_rng_seed(3);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            const int on = (i % 2) ? j < D / 2 : j >= D / 2;
            ds.images[i * D + j] = (uint8_t)(on ? 200 + nb_rng_below(&r, 56) : nb_rng_below(&r, 40));
        }
    return ds;
}

static void test_log_likelihood(void)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model m;
    nb_model_cfg cfg = small_vae();
    nb_model_init(&m, &cfg, ps, &r);
    nb_dataset ds = synthetic();
    /* -ELBO averaged over 40 evaluations (each a fresh ε per image) against log p(x) with k = 1 */
    double elbo = 0, elbo2 = 0;
    const int R = 40;
    for (int rep = 0; rep < R; rep++) {
        nb_eval e;
        nb_model_evaluate(&m, &ds, 64, NB_BIN_NONE, NULL, 100 + rep, &e);
        elbo += -e.elbo_loss / R, elbo2 += e.elbo_loss * e.elbo_loss / R;
    }
    const double elbo_se = sqrt(fmax(0, elbo2 - elbo * elbo) / R);
    double ll[3], se[3];
    const int ks[3] = {1, 10, 100};
    nb_status st = NB_OK;
    double ll1 = 0, ll1_sq = 0;
    for (int rep = 0; rep < R; rep++) {
        double v, s;
        st |= nb_model_log_likelihood(&m, &ds, 0, 1, NB_BIN_NONE, 500 + rep, &v, &s);
        ll1 += v / R, ll1_sq += v * v / R;
    }
    const double ll1_se = sqrt(fmax(0, ll1_sq - ll1 * ll1) / R);
    ok(!st && fabs(ll1 - elbo) < 3 * hypot(ll1_se, elbo_se) + 1e-9,
       "IS log-likelihood with k = 1 (%.4f ± %.4f) equals the ELBO (%.4f ± %.4f) in expectation", ll1, ll1_se, elbo, elbo_se);
    for (int i = 0; i < 3; i++) st |= nb_model_log_likelihood(&m, &ds, 0, ks[i], NB_BIN_NONE, 7, &ll[i], &se[i]);
    ok(!st && ll[1] > ll[0] && ll[2] > ll[1], "the estimate rises with k: %.3f (k=1) < %.3f (k=10) < %.3f (k=100) nats",
       ll[0], ll[1], ll[2]);
    ok(se[2] > 0 && se[2] < 1, "its standard error over images is reported: %.4f", se[2]);
    /* the mean, not the sum, of the k weights: from k = 10 to 100 the estimate moves by
     * hundredths of a nat here, where a missing log k would add log 10 */
    ok(ll[2] - ll[1] < 0.3, "it converges in k: %.3f (k=10) and %.3f (k=100)", ll[1], ll[2]);
    nb_dataset_free(&ds);
    nb_params_free(ps);
}

/* ---- the IWAE example ---------------------------------------------------------------------- */

typedef struct iwae_case { nb_model m; int k; } iwae_case;

static nb_tensor *build_iwae(nb_tape *tp, nb_tensor **in, void *ctx)
{
    iwae_case *c = ctx;
    return iwae_loss(tp, &c->m, in[0], c->k, in[1], NULL);
}

static void test_iwae(void)
{
    /* gradient check of the whole IWAE-3 loss, noise fixed */
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(2);
    iwae_case c = {.k = 3};
    nb_model_cfg cfg = small_vae();
    cfg.height = 2, cfg.width = 3;
    nb_model_init(&c.m, &cfg, ps, &r);
    nb_gradcheck_case g = {.label = "IWAE-3 loss (docs/examples/iwae.c)", .build = build_iwae, .ctx = &c,
                           .nin = 2, .in = {NB_GC_IN(NB_GC_UNIT, 2, 6), NB_GC_IN(NB_GC_CONST, 3, 2, 3)},
                           .params = ps, .seed = 77};
    gc_tap(&g);
    nb_params_free(ps);

    /* L_1 is the ELBO */
    ps = nb_params_new(NB_F32);
    nb_model_cfg cfg2 = small_vae();
    nb_model_init(&c.m, &cfg2, ps, &r);
    nb_dataset ds = synthetic();
    nb_tape *tp = nb_tape_new();
    int64_t idx[64];
    for (int i = 0; i < 64; i++) idx[i] = i;
    /* with the same ε, IWAE-1 and the VAE loss share the reconstruction and differ by a one-sample
     * Monte Carlo KL against the analytic KL: zero on average */
    double diff = 0, diff2 = 0;
    const int R = 200;
    for (int rep = 0; rep < R; rep++) {
        nb_tape_reset(tp);
        nb_tape_set_grad(tp, 0);
        nb_tensor *xr = nb_empty(tp, NB_F32, NB_SHAPE(64, D));
        if (!xr || nb_dataset_images(&ds, idx, 64, xr, NB_BIN_NONE, NULL)) break;
        nb_tensor *eps = nb_randn(tp, &r, NB_F32, NB_SHAPE(1, 64, 3));
        nb_tensor *l1 = iwae_loss(tp, &c.m, xr, 1, eps, NULL);
        nb_batch b = {xr, xr, NULL};
        nb_loss_opts o = {.beta = 1, .eps = nb_reshape(tp, eps, NB_SHAPE(64, 3))};
        nb_loss_terms t;
        if (nb_model_loss(tp, &c.m, &b, &o, &t) || !l1) break;
        const double d = nb_get(l1, 0) - nb_get(t.loss, 0);
        diff += d / R, diff2 += d * d / R;
    }
    const double se = sqrt(fmax(0, diff2 - diff * diff) / R);
    ok(se > 0 && fabs(diff) < 3 * se, "IWAE-1 equals the VAE's -ELBO on average: difference %.4f ± %.4f nats", diff, se);
    double iw[3];
    const int ks[3] = {1, 5, 50};
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int rep = 0; rep < 30; rep++) {
            nb_tape_reset(tp);
            nb_tape_set_grad(tp, 0);
            nb_tensor *xr = nb_empty(tp, NB_F32, NB_SHAPE(64, D));
            if (!xr || nb_dataset_images(&ds, idx, 64, xr, NB_BIN_NONE, NULL)) {
                ok(0, "IWAE-%d: images: %s", ks[i], nb_last_error());
                break;
            }
            nb_tensor *l = iwae_loss(tp, &c.m, xr, ks[i], NULL, &r);
            if (!l) {
                ok(0, "IWAE-%d: %s", ks[i], nb_tape_error(tp));
                break;
            }
            s += -nb_get(l, 0) / 30;
        }
        iw[i] = s;
    }
    ok(iw[1] > iw[0] && iw[2] > iw[1], "the IWAE bound rises with k: %.3f (k=1) < %.3f (k=5) < %.3f (k=50)", iw[0],
       iw[1], iw[2]);
    nb_tape_free(tp);
    nb_dataset_free(&ds);
    nb_params_free(ps);
}

/* The fused Bernoulli NLL of the IS estimate (the last layer's logits summed block by block)
 * against the plain sum Σ max(l, 0) − l·t + log1p(e^−|l|) in double over the whole decoder's
 * logits: a VAE and a CVAE, 784 pixels, so that the blocks (167 rows) start inside a cycle of
 * the b images (row j·b + i is image i), and a decoder with no hidden layer. */
static void test_fused_nll(nb_model_kind kind, int nhidden)
{
    enum { B = 5, K = 70, R = B * K, P = 784 };
    nb_model_cfg c = nb_model_defaults();
    c.kind = kind, c.latent = 4, c.nhidden = nhidden, c.hidden[0] = 32, c.nclasses = kind == NB_CVAE ? 3 : 0;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(11);
    nb_model m;
    nb_tape *tp = nb_tape_new();
    if (!ok(nb_model_init(&m, &c, ps, &r) == NB_OK && tp, "fused NLL: model builds (%s)", nb_last_error())) return;
    nb_tape_set_grad(tp, 0);
    nb_tensor *x = nb_empty(tp, NB_F32, NB_SHAPE(B, P)), *z = nb_randn(tp, &r, NB_F32, NB_SHAPE(R, c.latent)), *y = NULL;
    nb_rng_uniform(&r, x, 0, 1);
    if (kind == NB_CVAE) {
        y = nb_zeros(tp, NB_F32, NB_SHAPE(R, 3));
        for (int i = 0; i < R; i++) ((float *)y->data)[i * 3 + (i % B) % 3] = 1;
    }
    const nb_linear_layer *last = NULL;
    nb_tensor *h = nb__decode_trunk(tp, &m, z, y, &last), *logits = nb_model_decode(tp, &m, z, y);
    double nll[R], worst = 0;
    nb_status st = NB_ERR_ARG;
    const int done = h && logits && nb__bernoulli_nll(last, h, x, B, nll, &st);
    for (int i = 0; done && i < R; i++) {
        double want = 0;
        for (int j = 0; j < P; j++) {
            const double l = nb_get(logits, (int64_t)i * P + j), t = nb_get(x, (int64_t)(i % B) * P + j);
            want += fmax(l, 0) - l * t + log1p(exp(-fabs(l)));
        }
        worst = fmax(worst, fabs(nll[i] - want) / want);
    }
    ok(done && !st && worst < 1e-5, "fused NLL, %s, %d hidden layer(s): %d rows of %d pixels within %.1e of the "
       "reference", kind == NB_CVAE ? "CVAE" : "VAE", nhidden, R, P, worst);
    nb_tape_free(tp);
    nb_params_free(ps);
}

int main(void)
{
    test_log_likelihood();
    test_iwae();
    test_fused_nll(NB_VAE, 1);
    test_fused_nll(NB_CVAE, 1);
    test_fused_nll(NB_VAE, 0);
    return tap_done();
}
