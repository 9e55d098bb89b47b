/* tests/test_models.c — f64 gradient checks of each model's whole loss (ε fixed), in the shared
 * harness: every parameter and the input, through encoder, reparameterisation and decoder. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nabla/models.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

typedef struct model_case {
    const char *label;
    nb_model_cfg cfg;
    double beta;
    int denoise; /* the input is a separate (corrupted) tensor */
    nb_model m;
    nb_params *ps;
} model_case;

enum { B = 2, K = 3 };

static nb_tensor *build(nb_tape *tp, nb_tensor **in, void *ctx)
{
    model_case *c = ctx;
    const int64_t d = c->cfg.latent;
    nb_tensor *y = NULL;
    if (c->cfg.kind == NB_CVAE) {
        double onehot[B * K] = {0};
        for (int i = 0; i < B; i++) onehot[i * K + (i * 2) % K] = 1;
        y = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, K), onehot, B * K);
    }
    nb_tensor *eps = nb_reshape(tp, in[1], NB_SHAPE(B, d));
    nb_batch batch = {c->denoise ? in[2] : in[0], in[0], y};
    nb_loss_opts o = {.beta = c->beta, .eps = eps};
    nb_loss_terms t;
    nb_model_loss(tp, &c->m, &batch, &o, &t);
    return t.loss;
}

static nb_model_cfg mlp(nb_model_kind kind, nb_decoder dec)
{
    nb_model_cfg c = nb_model_defaults();
    c.kind = kind, c.decoder = dec, c.channels = 1, c.height = 3, c.width = 4;
    c.latent = 3, c.nhidden = 1, c.hidden[0] = 5, c.nclasses = K, c.act = NB_ACT_TANH, c.sigma = 0.5;
    return c;
}

static nb_model_cfg conv(nb_model_kind kind)
{
    nb_model_cfg c = mlp(kind, NB_DEC_BERNOULLI);
    c.arch = NB_ARCH_CONV, c.height = 8, c.width = 8, c.conv1 = 2, c.conv2 = 3, c.latent = 2;
    return c;
}

static nb_model_cfg linear_ae(void)
{
    nb_model_cfg c = mlp(NB_AE, NB_DEC_GAUSSIAN);
    c.nhidden = 0, c.act = NB_ACT_IDENTITY, c.output = NB_OUT_IDENTITY;
    return c;
}

/* A linear AE is two affine maps: decode(encode(x)) = W_d (W_e x + b_e) + b_d, exactly. */
static void test_linear_ae(void)
{
    nb_model_cfg c = linear_ae();
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(3);
    nb_model m;
    if (!ok(nb_model_init(&m, &c, ps, &r) == NB_OK, "linear AE builds with no hidden layer (%s)", nb_last_error())) return;
    ok(nb_params_count(ps) == 4, "linear AE: two Linear layers only (%d tensors)", nb_params_count(ps));
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_randn(tp, &r, NB_F64, NB_SHAPE(2, 12)), *mu, *lv;
    nb_model_encode(tp, &m, x, NULL, &mu, &lv);
    nb_tensor *xr = nb_model_mean(tp, &m, nb_model_decode(tp, &m, mu, NULL));
    double err = xr ? 0 : INFINITY;
    const nb_tensor *we = m.head_mu.weight, *be = m.head_mu.bias, *wd = m.dec.layer[0].weight, *bd = m.dec.layer[0].bias;
    for (int i = 0; xr && i < 2; i++)
        for (int j = 0; j < 12; j++) {
            double v = nb_get(bd, j);
            for (int k = 0; k < 3; k++) {
                double z = nb_get(be, k);
                for (int l = 0; l < 12; l++) z += nb_get(we, k * 12 + l) * nb_get(x, i * 12 + l);
                v += nb_get(wd, j * 3 + k) * z;
            }
            err = fmax(err, fabs(v - nb_get(xr, i * 12 + j)));
        }
    ok(err < 1e-12, "linear AE: the reconstruction is W_d (W_e x + b_e) + b_d, no sigmoid (%.2g)", err);
    nb_tape_free(tp);
    nb_params_free(ps);
    c.decoder = NB_DEC_BERNOULLI;
    ps = nb_params_new(NB_F64);
    ok(nb_model_init(&m, &c, ps, &r) == NB_ERR_ARG && strstr(nb_last_error(), "Bernoulli"),
       "identity output with a Bernoulli decoder is refused (%s)", nb_last_error());
    nb_params_free(ps);
    c = mlp(NB_AE, NB_DEC_GAUSSIAN_HEAD);
    ps = nb_params_new(NB_F64);
    ok(nb_model_init(&m, &c, ps, &r) == NB_ERR_ARG && strstr(nb_last_error(), "VAE"),
       "a log-variance head on an AE is refused (%s)", nb_last_error());
    nb_params_free(ps);
}

/* nb_model_init_logvar starts each learned variance at the data's; the head predicts it. */
static void test_init_logvar(void)
{
    enum { N = 4, D = 12 };
    uint8_t img[N * D];
    for (int i = 0; i < N * D; i++) img[i] = (uint8_t)((i % D) < 2 ? 7 : (37 * i + 11 * (i / D)) % 256);
    nb_dataset ds = {.n = N, .channels = 1, .rows = 3, .cols = 4, .images = img};
    double var[D], mean_var = 0;
    for (int j = 0; j < D; j++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++) s += img[i * D + j] / 255.0, s2 += (img[i * D + j] / 255.0) * (img[i * D + j] / 255.0);
        var[j] = s2 / N - (s / N) * (s / N);
        mean_var += var[j] / D;
    }
    const nb_decoder decs[3] = {NB_DEC_GAUSSIAN_SHARED, NB_DEC_GAUSSIAN_PIXEL, NB_DEC_GAUSSIAN_HEAD};
    const char *names[3] = {"shared", "per-pixel", "head"};
    for (int k = 0; k < 3; k++) {
        nb_model_cfg c = mlp(NB_VAE, decs[k]);
        nb_params *ps = nb_params_new(NB_F64);
        nb_rng r = nb_rng_seed(9);
        nb_model m;
        if (!ok(nb_model_init(&m, &c, ps, &r) == NB_OK && nb_model_init_logvar(&m, &ds) == NB_OK,
                "%s log-variance: builds and starts from the data (%s)", names[k], nb_last_error())) {
            nb_params_free(ps);
            continue;
        }
        nb_tape *tp = nb_tape_new();
        nb_tensor *z = nb_randn(tp, &r, NB_F64, NB_SHAPE(2, 3));
        nb_tensor *out = nb_model_decode(tp, &m, z, NULL), *lv = nb_model_logvar(tp, &m, out);
        double err = lv ? 0 : INFINITY;
        for (int i = 0; lv && i < (k ? 2 * D : 1); i++) {
            const double want = k ? fmax(log(var[i % D]), NB_LOGVAR_INIT_FLOOR) : log(mean_var);
            err = fmax(err, fabs(nb_get(lv, k == 1 ? i % D : i) - want));
        }
        ok(err < 1e-9, "%s log-variance starts at log of the data's variance (floored at log 1e-3 for the "
           "constant pixels) (%.2g)", names[k], err);
        if (k == 2)
            ok(out && nb_dim(out, 1) == 2 * D && nb_model_mean(tp, &m, out) && nb_dim(nb_model_mean(tp, &m, out), 1) == D,
               "head: the decoder output holds the mean's pre-activation, then log-variance");
        nb_tape_free(tp);
        nb_params_free(ps);
    }
    nb_model_cfg c = mlp(NB_VAE, NB_DEC_GAUSSIAN_PIXEL);
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(9);
    nb_model m;
    nb_model_init(&m, &c, ps, &r);
    nb_dataset small = ds;
    small.cols = 5;
    ok(nb_model_init_logvar(&m, &small) == NB_ERR_SHAPE && strstr(nb_last_error(), "3x4"),
       "a data set of other images is refused (%s)", nb_last_error());
    ok(nb_model_init_logvar(&m, NULL) == NB_ERR_ARG, "a NULL data set is refused");
    nb_params_free(ps);
}

int main(void)
{
    test_linear_ae();
    test_init_logvar();
    model_case cases[] = {
        {.label = "AE (MLP, BCE)", .cfg = mlp(NB_AE, NB_DEC_BERNOULLI), .beta = 1, .denoise = 0},
        {.label = "DAE (MLP, squared error, corrupted input)", .cfg = mlp(NB_DAE, NB_DEC_GAUSSIAN), .beta = 1, .denoise = 1},
        {.label = "VAE (MLP, Bernoulli)", .cfg = mlp(NB_VAE, NB_DEC_BERNOULLI), .beta = 1, .denoise = 0},
        {.label = "beta-VAE (MLP, Bernoulli, beta 4)", .cfg = mlp(NB_VAE, NB_DEC_BERNOULLI), .beta = 4, .denoise = 0},
        {.label = "VAE (MLP, Gaussian, fixed sigma)", .cfg = mlp(NB_VAE, NB_DEC_GAUSSIAN), .beta = 1, .denoise = 0},
        {.label = "VAE (MLP, Gaussian, learned shared log-variance)", .cfg = mlp(NB_VAE, NB_DEC_GAUSSIAN_SHARED), .beta = 1, .denoise = 0},
        {.label = "VAE (MLP, Gaussian, learned per-pixel log-variance, clamped)", .cfg = mlp(NB_VAE, NB_DEC_GAUSSIAN_PIXEL), .beta = 1, .denoise = 0},
        {.label = "CVAE (MLP, Bernoulli)", .cfg = mlp(NB_CVAE, NB_DEC_BERNOULLI), .beta = 1, .denoise = 0},
        {.label = "VAE (conv, Bernoulli)", .cfg = conv(NB_VAE), .beta = 1, .denoise = 0},
        {.label = "CVAE (conv, Bernoulli)", .cfg = conv(NB_CVAE), .beta = 1, .denoise = 0},
        {.label = "AE (conv, BCE)", .cfg = conv(NB_AE), .beta = 1, .denoise = 0},
        {.label = "linear AE (no hidden layer, identity output)", .cfg = linear_ae(), .beta = 1, .denoise = 0},
        {.label = "VAE (MLP, Gaussian, log-variance head)", .cfg = mlp(NB_VAE, NB_DEC_GAUSSIAN_HEAD), .beta = 1, .denoise = 0},
        {.label = "VAE (conv, Gaussian, log-variance head)", .cfg = conv(NB_VAE), .beta = 1, .denoise = 0},
    };
    cases[13].cfg.decoder = NB_DEC_GAUSSIAN_HEAD;
    cases[6].cfg.logvar_min = -6, cases[6].cfg.logvar_max = 6;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_case *c = &cases[i];
        c->ps = nb_params_new(NB_F64);
        nb_rng r = nb_rng_seed(500 + i);
        if (!ok(nb_model_init(&c->m, &c->cfg, c->ps, &r) == NB_OK, "%s: builds (%s)", c->label, nb_last_error())) continue;
        /* the learned log-variance starts at 0; move it off that point so its gradient is generic */
        if (c->m.dec_logvar) nb_rng_uniform(&r, c->m.dec_logvar, -0.5, 0.5);
        const int64_t D = (int64_t)c->cfg.channels * c->cfg.height * c->cfg.width;
        nb_gradcheck_case g = {.op = gc_op("linear"), .label = c->label, .build = build, .ctx = c,
                               .nin = c->denoise ? 3 : 2, .params = c->ps, .seed = 900 + (unsigned)i};
        int64_t xs[4];
        int nd = nb_model_input_shape(&c->m, B, xs);
        g.in[0] = (nb_gc_input){.ndim = nd, .dom = NB_GC_UNIT};
        memcpy(g.in[0].shape, xs, sizeof xs);
        g.in[1] = (nb_gc_input){.ndim = 1, .shape = {B * c->cfg.latent}, .dom = NB_GC_CONST};
        g.in[2] = g.in[0];
        (void)D;
        gc_tap(&g);
        nb_params_free(c->ps);
    }
    return tap_done();
}
