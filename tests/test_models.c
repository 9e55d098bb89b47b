/* tests/test_models.c — f64 gradient checks of each model's whole loss (ε fixed), in the shared
 * harness: every parameter and the input, through encoder, reparameterisation and decoder. */
#include <math.h>
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

int main(void)
{
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
    };
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
