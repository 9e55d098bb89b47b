/* models/model.c — the autoencoders on one API: building blocks, encode, decode, loss; the zoo's
 * kinds (VQ-VAE, VampPrior, HVAE) live in models/zoo_*.c and are dispatched from here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/internal.h"
#include "tensor/error.h"

nb_model_cfg nb_model_defaults(void)
{
    return (nb_model_cfg){.kind = NB_VAE, .arch = NB_ARCH_MLP, .channels = 1, .height = 28,
                          .width = 28, .nclasses = 10, .latent = 20, .nhidden = 1,
                          .hidden = {400}, .conv1 = 32, .conv2 = 64, .act = NB_ACT_RELU,
                          .decoder = NB_DEC_BERNOULLI, .sigma = 0.1, .codebook = 128, .code_dim = 16,
                          .codes = 8, .commitment = 0.25, .pseudo_inputs = 500, .hvae_hidden1 = 200,
                          .hvae_z1 = 100, .hvae_hidden2 = 100, .hvae_z2 = 50};
}

/* ---- building blocks ----------------------------------------------------------------------- */

nb_tensor *nb_act_fwd(nb_tape *tp, nb_act act, nb_tensor *x)
{
    switch (act) {
    case NB_ACT_TANH: return nb_tanh(tp, x);
    case NB_ACT_LEAKY_RELU: return nb_leaky_relu(tp, x, 0.01);
    case NB_ACT_ELU: return nb_elu(tp, x, 1.0);
    case NB_ACT_GELU: return nb_gelu(tp, x);
    case NB_ACT_IDENTITY: return x;
    default: return nb_relu(tp, x);
    }
}

nb_status nb_mlp_init(nb_mlp *m, nb_params *ps, const char *name, int n, const int *sizes,
                      nb_act act, int act_last, nb_rng *rng)
{
    memset(m, 0, sizeof *m);
    if (n < 0 || n > NB_MAX_HIDDEN + 1) return nb_error(NB_ERR_ARG, "%s: %d layers (at most %d)", name, n, NB_MAX_HIDDEN + 1);
    m->n = n, m->act = act, m->act_last = act_last;
    for (int i = 0; i < n; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s.%d", name, i);
        if (nb_linear_init(&m->layer[i], ps, full, sizes[i], sizes[i + 1], 1, rng))
            return nb_error(NB_ERR_ARG, "%s: %s", full, nb_last_error());
    }
    return NB_OK;
}

nb_tensor *nb_mlp_fwd(nb_tape *tp, const nb_mlp *m, nb_tensor *x)
{
    for (int i = 0; i < m->n; i++) {
        const int act = i < m->n - 1 || m->act_last;
        if (act && m->act == NB_ACT_RELU)
            x = nb_linear_relu_fwd(tp, &m->layer[i], x); /* one op, the ReLU inside the GEMM */
        else if (act)
            x = nb_act_fwd(tp, m->act, nb_linear_fwd(tp, &m->layer[i], x));
        else
            x = nb_linear_fwd(tp, &m->layer[i], x);
    }
    return x;
}

/* ---- init ---------------------------------------------------------------------------------- */

int nb_model_is_vae(const nb_model *m)
{
    const nb_model_kind k = m->cfg.kind;
    return k == NB_VAE || k == NB_CVAE || k == NB_VAMP || k == NB_HVAE;
}

static int conditional(const nb_model *m) { return m->cfg.kind == NB_CVAE; }

int nb_model_input_shape(const nb_model *m, int64_t b, int64_t shape[NB_MAX_DIMS])
{
    shape[0] = b;
    if (m->cfg.arch == NB_ARCH_MLP) {
        shape[1] = m->in_dim;
        return 2;
    }
    shape[1] = m->cfg.channels, shape[2] = m->cfg.height, shape[3] = m->cfg.width;
    return 4;
}

static nb_status named(const char *what)
{
    return nb_error(NB_ERR_ARG, "model: %s: %s", what, nb_last_error());
}

static nb_status init_conv(nb_model *m, nb_params *ps, nb_rng *rng, int cond)
{
    const nb_model_cfg *c = &m->cfg;
    const nb_conv_cfg k4 = nb_conv(2, 1);
    const int64_t h1 = nb_conv_out_size(c->height, 4, 2, 1, 1), w1 = nb_conv_out_size(c->width, 4, 2, 1, 1);
    const int64_t h2 = nb_conv_out_size(h1, 4, 2, 1, 1), w2 = nb_conv_out_size(w1, 4, 2, 1, 1);
    if (h2 < 1 || w2 < 1)
        return nb_error(NB_ERR_SHAPE, "model: %dx%d images are too small for two stride-2 convolutions",
                        c->height, c->width);
    m->h2 = (int)h2, m->w2 = (int)w2;
    /* each transposed convolution doubles the size; output padding restores an odd remainder */
    nb_conv_cfg up1 = k4, up2 = k4;
    up1.out_pad[0] = (int)(h1 - 2 * h2), up1.out_pad[1] = (int)(w1 - 2 * w2);
    up2.out_pad[0] = (int)(c->height - 2 * h1), up2.out_pad[1] = (int)(c->width - 2 * w1);
    if (nb_conv2d_init(&m->enc_c1, ps, "enc.conv1", c->channels + cond, c->conv1, 4, k4, 1, rng) ||
        nb_conv2d_init(&m->enc_c2, ps, "enc.conv2", c->conv1, c->conv2, 4, k4, 1, rng))
        return named("encoder convolutions");
    const int64_t flat64 = (int64_t)c->conv2 * m->h2 * m->w2;
    if (flat64 > (1 << 24))
        return nb_error(NB_ERR_ARG, "model: the conv body's output (%d x %d x %d) exceeds 2^24 values",
                        c->conv2, m->h2, m->w2);
    const int flat = (int)flat64;
    const int dec_sizes[2] = {c->latent + cond, flat};
    /* a VQ-VAE's code is already spatial: 1×1 convolutions (zoo_vq.c) replace the dense layers */
    if (c->kind != NB_VQVAE && nb_mlp_init(&m->dec, ps, "dec.fc", 1, dec_sizes, c->act, 1, rng)) return NB_ERR_ARG;
    if (nb_conv_transpose2d_init(&m->dec_c1, ps, "dec.deconv1", c->conv2, c->conv1, 4, up1, 1, rng) ||
        nb_conv_transpose2d_init(&m->dec_c2, ps, "dec.deconv2", c->conv1, c->channels, 4, up2, 1, rng) ||
        (c->decoder == NB_DEC_GAUSSIAN_HEAD &&
         nb_conv_transpose2d_init(&m->dec_lv_conv, ps, "dec.logvar_deconv", c->conv1, c->channels, 4, up2, 1, rng)))
        return named("decoder convolutions");
    return NB_OK;
}

nb_status nb_model_init(nb_model *m, const nb_model_cfg *cfg, nb_params *ps, nb_rng *rng)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->ps = ps;
    if (!cfg || !ps) return nb_error(NB_ERR_ARG, "nb_model_init: the configuration or the store is NULL");
    const nb_model_cfg *c = &m->cfg;
    /* ranges first: every size below is multiplied by another before it is allocated */
    if (c->channels < 1 || c->channels > 64 || c->height < 1 || c->height > 4096 || c->width < 1 ||
        c->width > 4096 || (int64_t)c->channels * c->height * c->width > (1 << 24))
        return nb_error(NB_ERR_ARG, "model: images of %dx%dx%d (channels 1 to 64, height and width "
                        "1 to 4096, at most 2^24 values)", c->channels, c->height, c->width);
    if (c->latent < 1 || c->latent > 4096 || c->nhidden < 0 || c->nhidden > NB_MAX_HIDDEN ||
        (c->kind == NB_CVAE && (c->nclasses < 1 || c->nclasses > 256)))
        return nb_error(NB_ERR_ARG, "model: invalid configuration (latent %d: 1 to 4096; %d hidden "
                        "layers: 0 to %d; %d classes: 1 to 256 for a CVAE)", c->latent, c->nhidden,
                        NB_MAX_HIDDEN, c->nclasses);
    if ((int)c->kind < NB_AE || c->kind > NB_HVAE || (int)c->arch < NB_ARCH_MLP || c->arch > NB_ARCH_CONV ||
        (int)c->decoder < NB_DEC_BERNOULLI || c->decoder > NB_DEC_GAUSSIAN_HEAD ||
        (int)c->act < NB_ACT_RELU || c->act > NB_ACT_IDENTITY || (int)c->output < NB_OUT_SIGMOID ||
        c->output > NB_OUT_IDENTITY)
        return nb_error(NB_ERR_ARG, "model: unknown kind %d, arch %d, decoder %d, activation %d or output %d",
                        (int)c->kind, (int)c->arch, (int)c->decoder, (int)c->act, (int)c->output);
    if (c->decoder == NB_DEC_BERNOULLI && c->output == NB_OUT_IDENTITY)
        return nb_error(NB_ERR_ARG, "model: a Bernoulli decoder outputs logits, so its mean is always their "
                        "sigmoid; --output identity needs a Gaussian decoder (e.g. --decoder gaussian)");
    if (c->decoder == NB_DEC_GAUSSIAN_HEAD && !nb_model_is_vae(m))
        return nb_error(NB_ERR_ARG, "model: a log-variance head needs a VAE (an AE trains on the squared "
                        "error, which has no variance)");
    for (int i = 0; i < c->nhidden; i++)
        if (c->hidden[i] < 1 || c->hidden[i] > (1 << 20))
            return nb_error(NB_ERR_ARG, "model: hidden layer %d has size %d (1 to 2^20)", i, c->hidden[i]);
    if (c->arch == NB_ARCH_CONV && (c->conv1 < 1 || c->conv1 > 1024 || c->conv2 < 1 || c->conv2 > 2048))
        return nb_error(NB_ERR_ARG, "model: conv channels %d and %d (1 to 1024, 1 to 2048)", c->conv1, c->conv2);
    m->in_dim = (int64_t)c->channels * c->height * c->width;
    if (c->kind == NB_HVAE) return nb__hvae_init(m, ps, rng);
    if (c->kind == NB_VQVAE) {
        if (c->codebook < 2 || c->codebook > 65536 || c->code_dim < 1 || c->code_dim > 4096 || c->codes < 1 ||
            c->codes > 4096 || !(c->commitment >= 0))
            return nb_error(NB_ERR_ARG, "model: VQ-VAE with %d codes of %d values at %d positions, commitment %g "
                            "(2 to 65536 codes, 1 to 4096 values and positions, commitment >= 0)", c->codebook,
                            c->code_dim, c->codes, c->commitment);
        if (c->decoder != NB_DEC_BERNOULLI && c->decoder != NB_DEC_GAUSSIAN)
            return nb_error(NB_ERR_ARG, "model: a VQ-VAE trains on the BCE or the squared error; a learned "
                            "variance needs a VAE (--decoder bernoulli or gaussian)");
        m->cfg.latent = c->codes * c->code_dim; /* the MLP's code; conv sets it from the grid below */
    }
    const int cond = conditional(m) ? c->nclasses : 0;
    /* the dense layers dominate the size: refuse what could never be allocated, with the reason */
    int64_t weights = 0, prev = m->in_dim + cond;
    for (int i = 0; i < c->nhidden; i++) weights += prev * c->hidden[i], prev = c->hidden[i];
    weights *= 2; /* the decoder mirrors the encoder */
    weights += 2 * (prev + cond) * c->latent + (c->nhidden ? (int64_t)c->hidden[0] * m->in_dim : m->in_dim * c->latent);
    if (weights > ((int64_t)1 << 30))
        return nb_error(NB_ERR_ARG, "model: about %lld weights (at most 2^30): the images (%lld values) or the "
                        "hidden layers are too large", (long long)weights, (long long)m->in_dim);
    int body_out;
    nb_status st;
    if (c->arch == NB_ARCH_MLP) {
        int enc_sizes[NB_MAX_HIDDEN + 1], dec_sizes[NB_MAX_HIDDEN + 2];
        enc_sizes[0] = (int)m->in_dim + cond;
        dec_sizes[0] = c->latent + cond;
        for (int i = 0; i < c->nhidden; i++) {
            enc_sizes[i + 1] = c->hidden[i];
            dec_sizes[i + 1] = c->hidden[c->nhidden - 1 - i]; /* the mirror image */
        }
        dec_sizes[c->nhidden + 1] = (int)m->in_dim;
        if ((st = nb_mlp_init(&m->enc, ps, "enc.fc", c->nhidden, enc_sizes, c->act, 1, rng)) ||
            (st = nb_mlp_init(&m->dec, ps, "dec.fc", c->nhidden + 1, dec_sizes, c->act, 0, rng)))
            return st;
        body_out = enc_sizes[c->nhidden];
        /* the head reads what the mean's last layer reads: the last hidden layer (or z) */
        if (c->decoder == NB_DEC_GAUSSIAN_HEAD &&
            nb_linear_init(&m->dec_lv_head, ps, "dec.logvar_head", dec_sizes[c->nhidden], (int)m->in_dim, 1, rng))
            return named("decoder log-variance head");
    } else {
        if ((st = init_conv(m, ps, rng, cond))) return st;
        body_out = c->conv2 * m->h2 * m->w2;
    }
    if (c->kind == NB_VQVAE) return nb__vq_init(m, ps, rng);
    const int vae = nb_model_is_vae(m);
    if (nb_linear_init(&m->head_mu, ps, vae ? "enc.mu" : "enc.code", body_out, c->latent, 1, rng) ||
        (vae && nb_linear_init(&m->head_logvar, ps, "enc.logvar", body_out, c->latent, 1, rng)))
        return named("encoder heads");
    if (vae && (c->decoder == NB_DEC_GAUSSIAN_SHARED || c->decoder == NB_DEC_GAUSSIAN_PIXEL)) {
        int64_t shape[4];
        const int nd = nb_model_input_shape(m, 1, shape);
        m->dec_logvar = c->decoder == NB_DEC_GAUSSIAN_SHARED ? nb_param(ps, "dec.logvar", 0, NULL)
                                                             : nb_param(ps, "dec.logvar", nd - 1, shape + 1);
        if (!m->dec_logvar) return named("decoder log-variance"); /* starts at 0: σ = 1 */
    }
    if (c->init_std > 0) /* AEVB: N(0, σ²) for all of them, instead of PyTorch's defaults */
        for (int i = 0; i < nb_params_count(ps); i++) nb_init_normal(nb_params_at(ps, i), rng, 0, c->init_std);
    if (c->decoder == NB_DEC_GAUSSIAN && !(c->sigma > 0))
        return nb_error(NB_ERR_ARG, "model: the fixed-variance decoder needs sigma > 0, got %g", c->sigma);
    return c->kind == NB_VAMP ? nb__vamp_init(m, ps, rng) : NB_OK;
}

nb_status nb_model_batch(nb_tape *tp, const nb_model *m, const nb_dataset *ds, const int64_t *idx,
                         int64_t n, nb_binarize bin, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    int64_t shape[4];
    const int nd = nb_model_input_shape(m, n, shape);
    const nb_dtype dt = nb_params_dtype(m->ps);
    *y = NULL;
    *x = NULL;
    if (!ds || !x) return nb_error(NB_ERR_ARG, "nb_model_batch: the data set is NULL");
    if (ds->channels != m->cfg.channels || ds->rows != m->cfg.height || ds->cols != m->cfg.width)
        return nb_error(NB_ERR_SHAPE, "nb_model_batch: the model takes %dx%dx%d images, the data "
                        "set holds %dx%dx%d", m->cfg.channels, m->cfg.height, m->cfg.width,
                        ds->channels, ds->rows, ds->cols);
    nb_tensor *xt = nb_empty(tp, dt, nd, shape);
    if (!xt) return nb_error(nb_tape_status(tp), "%s", nb_tape_error(tp));
    nb_status st = nb_dataset_images(ds, idx, n, xt, bin, rng);
    if (st) return st;
    if (m->cfg.kind == NB_CVAE) {
        if (!ds->labels) return nb_error(NB_ERR_ARG, "conditional VAE: the data set has no labels");
        if (!(*y = nb_empty(tp, dt, NB_SHAPE(n, m->cfg.nclasses))))
            return nb_error(nb_tape_status(tp), "%s", nb_tape_error(tp));
        if ((st = nb_dataset_onehot(ds, idx, n, *y))) return *y = NULL, st;
    }
    *x = xt;
    return NB_OK;
}

/* ---- encode, decode ------------------------------------------------------------------------ */

/* x with the label attached: as extra features (MLP) or as constant extra channels (conv). */
static nb_tensor *with_label(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y)
{
    if (!conditional(m)) return x;
    if (!y) {
        nb_tape_fail(tp, NB_ERR_ARG, "conditional VAE: no labels given");
        return NULL;
    }
    if (x->ndim == 2) return nb_concat(tp, 1, x, y);
    nb_tensor *y4 = nb_reshape(tp, y, NB_SHAPE(nb_dim(y, 0), nb_dim(y, 1), 1, 1));
    return nb_concat(tp, 1, x, nb_expand(tp, y4, NB_SHAPE(x->shape[0], nb_dim(y, 1), x->shape[2], x->shape[3])));
}

/* A convolution and the model's activation; a ReLU runs inside the convolution. */
static nb_tensor *conv_act(nb_tape *tp, const nb_model *m, const nb_conv_layer *l, nb_tensor *x)
{
    return m->cfg.act == NB_ACT_RELU ? nb_conv_relu_fwd(tp, l, x) : nb_act_fwd(tp, m->cfg.act, nb_conv_fwd(tp, l, x));
}

/* 1 when x has the model's input shape for its batch; else the error names both shapes. */
static int input_ok(nb_tape *tp, const nb_model *m, const nb_tensor *x)
{
    if (!x || nb_tape_status(tp)) return 1; /* the ops pass the NULL or the error along */
    int64_t want[NB_MAX_DIMS];
    const int nd = nb_model_input_shape(m, x->ndim ? x->shape[0] : 0, want);
    int same = x->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = x->shape[d] == want[d];
    if (same) return 1;
    nb_tensor w;
    nb_tensor_wrap(&w, x->dtype, nd, want, NULL);
    char a[64], b[64];
    nb_tape_fail(tp, NB_ERR_SHAPE, "model (%s): input %s, want %s", m->cfg.arch == NB_ARCH_CONV ?
                 "conv" : "MLP", nb_shape_str(x, a, sizeof a), nb_shape_str(&w, b, sizeof b));
    return 0;
}

nb_tensor *nb__model_body(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y)
{
    nb_tensor *h = with_label(tp, m, x, y);
    if (m->cfg.arch == NB_ARCH_MLP) return nb_mlp_fwd(tp, &m->enc, h);
    h = conv_act(tp, m, &m->enc_c2, conv_act(tp, m, &m->enc_c1, h));
    /* a VQ-VAE keeps the grid: its positions are the code's */
    return m->cfg.kind == NB_VQVAE ? h : nb_reshape(tp, h, NB_SHAPE(x ? nb_dim(x, 0) : 0, -1));
}

nb_tensor *nb__reparam(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, nb_tensor *eps)
{
    return nb_add(tp, mu, nb_mul(tp, nb_exp(tp, nb_scale(tp, logvar, 0.5)), eps));
}

nb_status nb_model_encode(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y,
                          nb_tensor **mu, nb_tensor **logvar)
{
    if (!mu) return nb_tape_fail(tp, NB_ERR_ARG, "nb_model_encode: mu is NULL");
    *mu = NULL;
    if (logvar) *logvar = NULL;
    if (!m) return nb_tape_fail(tp, NB_ERR_ARG, "nb_model_encode: the model is NULL");
    if (!input_ok(tp, m, x)) return nb_tape_status(tp);
    nb_tensor *h = nb__model_body(tp, m, x, y);
    if (m->cfg.kind == NB_VQVAE) { /* the quantised code, flat: what the decoder reads */
        *mu = nb_reshape(tp, nb__vq_quantise(tp, m, nb__vq_project(tp, m, h), NULL), NB_SHAPE(x ? nb_dim(x, 0) : 0, -1));
        return tp ? nb_tape_status(tp) : NB_ERR_ARG;
    }
    if (logvar && nb_model_is_vae(m)) {
        /* both heads read h: one GEMM of twice the width reads it once, and runs nearer the
         * GEMM's speed than two 20-wide ones; copying the heads' weights side by side is cheap */
        const nb_linear_layer *a = &m->head_mu, *b = &m->head_logvar;
        nb_tensor *y2 = nb_linear(tp, h, nb_concat(tp, 0, a->weight, b->weight), nb_concat(tp, 0, a->bias, b->bias));
        const int64_t L = nb_dim(a->weight, 0);
        *mu = nb_contiguous(tp, nb_slice(tp, y2, 1, 0, L, 1)); /* callers may read ->data */
        *logvar = nb_contiguous(tp, nb_slice(tp, y2, 1, L, NB_END, 1));
        return tp ? nb_tape_status(tp) : NB_ERR_ARG;
    }
    *mu = nb_linear_fwd(tp, &m->head_mu, h);
    if (logvar) *logvar = NULL;
    return tp ? nb_tape_status(tp) : NB_ERR_ARG;
}

/* An MLP decoder's layers but the last, each with its activation: the input of its last layer. */
static nb_tensor *dec_trunk(nb_tape *tp, const nb_model *m, nb_tensor *h)
{
    nb_mlp trunk = m->dec;
    trunk.n--, trunk.act_last = 1;
    return nb_mlp_fwd(tp, &trunk, h);
}

nb_tensor *nb_model_decode(nb_tape *tp, const nb_model *m, nb_tensor *z, nb_tensor *y)
{
    if (m->cfg.kind == NB_VQVAE && m->cfg.arch == NB_ARCH_CONV) return nb__vq_decode(tp, m, z);
    const int head = m->cfg.decoder == NB_DEC_GAUSSIAN_HEAD;
    nb_tensor *h = with_label(tp, m, z, y);
    if (m->cfg.arch == NB_ARCH_MLP) {
        if (!head) return nb_mlp_fwd(tp, &m->dec, h);
        h = dec_trunk(tp, m, h);
        return nb_concat(tp, 1, nb_linear_fwd(tp, &m->dec.layer[m->dec.n - 1], h), nb_linear_fwd(tp, &m->dec_lv_head, h));
    }
    h = nb_reshape(tp, nb_mlp_fwd(tp, &m->dec, h), NB_SHAPE(z ? nb_dim(z, 0) : 0, m->cfg.conv2, m->h2, m->w2));
    h = conv_act(tp, m, &m->dec_c1, h);
    if (!head) return nb_conv_fwd(tp, &m->dec_c2, h);
    return nb_concat(tp, 1, nb_conv_fwd(tp, &m->dec_c2, h), nb_conv_fwd(tp, &m->dec_lv_conv, h));
}

nb_tensor *nb__decode_trunk(nb_tape *tp, const nb_model *m, nb_tensor *z, nb_tensor *y, const nb_linear_layer **last)
{
    if (m->cfg.arch != NB_ARCH_MLP || m->cfg.decoder == NB_DEC_GAUSSIAN_HEAD || m->dec.act_last ||
        (m->cfg.kind != NB_VAE && m->cfg.kind != NB_CVAE))
        return NULL;
    *last = &m->dec.layer[m->dec.n - 1];
    return dec_trunk(tp, m, with_label(tp, m, z, y));
}

/* The first or second half of a log-variance head's output along dim 1. */
static nb_tensor *half(nb_tape *tp, const nb_model *m, nb_tensor *out, int second)
{
    const int64_t n = m->cfg.arch == NB_ARCH_MLP ? m->in_dim : m->cfg.channels;
    return nb_slice(tp, out, 1, second ? n : 0, second ? 2 * n : n, 1);
}

nb_tensor *nb_model_mean(nb_tape *tp, const nb_model *m, nb_tensor *out)
{
    if (m->cfg.decoder == NB_DEC_GAUSSIAN_HEAD) out = half(tp, m, out, 0);
    if (m->cfg.decoder != NB_DEC_BERNOULLI && m->cfg.output == NB_OUT_IDENTITY) return out;
    return nb_sigmoid(tp, out);
}

static nb_tensor *clamped(nb_tape *tp, const nb_model_cfg *c, nb_tensor *lv)
{
    return c->logvar_min < c->logvar_max ? nb_clamp(tp, lv, c->logvar_min, c->logvar_max) : lv;
}

nb_tensor *nb_model_logvar(nb_tape *tp, const nb_model *m, nb_tensor *out)
{
    const nb_model_cfg *c = &m->cfg;
    switch (c->decoder) {
    case NB_DEC_GAUSSIAN: return nb_scalar(tp, out ? out->dtype : NB_F32, 2 * log(c->sigma));
    case NB_DEC_GAUSSIAN_SHARED:
    case NB_DEC_GAUSSIAN_PIXEL: return clamped(tp, c, m->dec_logvar);
    case NB_DEC_GAUSSIAN_HEAD: return clamped(tp, c, half(tp, m, out, 1));
    default: nb_tape_fail(tp, NB_ERR_ARG, "nb_model_logvar: a Bernoulli decoder has no variance"); return NULL;
    }
}

nb_tensor *nb_model_nll(nb_tape *tp, const nb_model *m, nb_tensor *out, nb_tensor *x)
{
    if (m->cfg.decoder == NB_DEC_BERNOULLI) return nb_bce_logits(tp, out, x, NB_REDUCE_NONE);
    nb_tensor *mean = nb_model_mean(tp, m, out);
    if (!nb_model_is_vae(m)) return nb_mse(tp, mean, x, NB_REDUCE_NONE);
    return nb_gaussian_nll(tp, x, mean, nb_model_logvar(tp, m, out), NB_REDUCE_NONE);
}

nb_status nb_model_init_logvar(nb_model *m, const nb_dataset *ds)
{
    if (!m || !ds) return nb_error(NB_ERR_ARG, "nb_model_init_logvar: NULL model or data set");
    const nb_model_cfg *c = &m->cfg;
    const int head = c->decoder == NB_DEC_GAUSSIAN_HEAD;
    if (!m->dec_logvar && !head) return NB_OK;
    if (ds->n < 2 || ds->channels != c->channels || ds->rows != c->height || ds->cols != c->width)
        return nb_error(NB_ERR_SHAPE, "nb_model_init_logvar: the model takes %dx%dx%d images, the data set "
                        "holds %lld of %dx%dx%d (at least 2 needed)", c->channels, c->height, c->width,
                        (long long)ds->n, ds->channels, ds->rows, ds->cols);
    const int64_t D = m->in_dim;
    double *s = calloc((size_t)D * 2, sizeof *s), total = 0;
    if (!s) return nb_error(NB_ERR_NOMEM, "nb_model_init_logvar: out of memory");
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t j = 0; j < D; j++) {
            const double v = ds->images[i * D + j] / 255.0;
            s[j] += v, s[D + j] += v * v;
        }
    const double floor_ = c->logvar_min < c->logvar_max ? fmax(c->logvar_min, NB_LOGVAR_INIT_FLOOR) : NB_LOGVAR_INIT_FLOOR;
    for (int64_t j = 0; j < D; j++) { /* per-pixel variance, then its log, floored and clamped */
        const double mean = s[j] / (double)ds->n, var = fmax(0, s[D + j] / (double)ds->n - mean * mean);
        total += var;
        s[j] = fmax(log(var), floor_);
        if (c->logvar_min < c->logvar_max) s[j] = fmin(s[j], c->logvar_max);
    }
    double shared = fmax(log(total / (double)D), floor_);
    if (c->logvar_min < c->logvar_max) shared = fmin(shared, c->logvar_max);
    if (c->decoder == NB_DEC_GAUSSIAN_SHARED) {
        nb_init_constant(m->dec_logvar, shared);
    } else { /* per pixel, or the head's bias with its weights zeroed: it starts where the pixel does */
        nb_tensor *t = head ? (c->arch == NB_ARCH_MLP ? m->dec_lv_head.bias : m->dec_lv_conv.bias) : m->dec_logvar;
        if (head) nb_init_constant(c->arch == NB_ARCH_MLP ? m->dec_lv_head.weight : m->dec_lv_conv.weight, 0);
        if (head && c->arch == NB_ARCH_CONV) { /* a conv bias is per channel: the channel's mean log-variance */
            for (int ch = 0; ch < c->channels; ch++) {
                double a = 0;
                const int64_t hw = (int64_t)c->height * c->width;
                for (int64_t j = 0; j < hw; j++) a += s[ch * hw + j];
                nb_set(t, ch, a / (double)hw);
            }
        } else {
            for (int64_t j = 0; j < D; j++) nb_set(t, j, s[j]);
        }
    }
    free(s);
    return NB_OK;
}

/* ---- loss ---------------------------------------------------------------------------------- */

/* Σ_d max(KL_d, λ) with KL_d the batch-mean KL of latent dim d (Kingma et al. 2016). */
static nb_tensor *free_bits_kl(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, double lambda)
{
    const int64_t B = nb_dim(mu, 0), d = nb_dim(mu, 1);
    nb_tensor *per_dim = nb_kl_normal(tp, nb_transpose(tp, mu, 0, 1), nb_transpose(tp, logvar, 0, 1),
                                      NB_REDUCE_NONE); /* (d): summed over the batch */
    nb_tensor *excess = nb_relu(tp, nb_add_scalar(tp, nb_scale(tp, per_dim, 1.0 / (double)B), -lambda));
    return nb_add_scalar(tp, nb_sum_all(tp, excess), lambda * (double)d);
}

nb_status nb_model_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o,
                        nb_loss_terms *t)
{
    memset(t, 0, sizeof *t);
    if (o->objective != NB_OBJ_ELBO) return nb__objective_loss(tp, m, b, o, t); /* refuses all but a VAE */
    nb_status (*kind_loss)(nb_tape *, const nb_model *, const nb_batch *, const nb_loss_opts *, nb_loss_terms *) =
        m->cfg.kind == NB_VQVAE ? nb__vq_loss : m->cfg.kind == NB_VAMP ? nb__vamp_loss
        : m->cfg.kind == NB_HVAE ? nb__hvae_loss : NULL;
    if (kind_loss) {
        if (!kind_loss(tp, m, b, o, t) && !t->bound) t->bound = nb_add(tp, t->recon, t->kl);
        return nb_tape_status(tp);
    }
    nb_model_encode(tp, m, b->input, b->y, &t->mu, &t->logvar);
    if (nb_model_is_vae(m)) {
        nb_tensor *eps = o->eps;
        if (!eps && t->mu) eps = nb_randn(tp, o->rng, t->mu->dtype, t->mu->ndim, t->mu->shape);
        /* the reparameterisation trick: z = μ + σ·ε, with σ = exp(½ log σ²) */
        t->z = nb__reparam(tp, t->mu, t->logvar, eps);
        t->kl = nb_kl_normal(tp, t->mu, t->logvar, NB_REDUCE_NONE);
    } else {
        t->z = t->mu;
    }
    t->out = nb_model_decode(tp, m, t->z, b->y);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    t->loss = nb_mean(tp, t->recon, 0, NULL, 0);
    if (t->kl && o->beta != 0) {
        nb_tensor *kl = o->free_bits > 0 ? free_bits_kl(tp, t->mu, t->logvar, o->free_bits)
                                         : nb_mean(tp, t->kl, 0, NULL, 0);
        t->loss = nb_add(tp, t->loss, nb_scale(tp, kl, o->beta));
    }
    t->bound = t->kl ? nb_add(tp, t->recon, t->kl) : t->recon;
    return nb_tape_status(tp);
}

nb_tensor *nb_model_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_tensor *y, nb_rng *rng)
{
    switch (m->cfg.kind) {
    case NB_VQVAE: return nb__vq_sample(tp, m, n, rng);
    case NB_VAMP: return nb__vamp_sample(tp, m, n, rng);
    case NB_HVAE: return nb__hvae_sample(tp, m, n, rng);
    default: break;
    }
    nb_tensor *z = nb_randn(tp, rng, nb_params_dtype(m->ps), NB_SHAPE(n, m->cfg.latent));
    return nb_model_mean(tp, m, nb_model_decode(tp, m, z, y));
}
