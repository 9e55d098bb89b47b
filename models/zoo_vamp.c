/* models/zoo_vamp.c — the VampPrior (Tomczak & Welling 2018): the VAE's prior replaced by the
 * mixture of its own posteriors at Kp learned pseudo-inputs u_k,
 *
 *     p(z) = 1/Kp Σ_k q(z | u_k),   u = clamp(P, 0, 1)
 *     loss = −log p(x|z) + log q(z|x) − log p(z),   z = μ(x) + σ(x)·ε
 *
 * The KL has no closed form against a mixture: it is estimated by the one sample z. The B × Kp
 * Gaussian log-densities are one matmul each way, never a B × Kp × d tensor. Public API only. */
#include <math.h>
#include <stdlib.h>

#include "models/internal.h"
#include "tensor/error.h"

static const double LOG_2PI = 1.8378770664093454836;

nb_status nb__vamp_init(nb_model *m, nb_params *ps, nb_rng *rng)
{
    const int kp = m->cfg.pseudo_inputs;
    if (kp < 1 || kp > 100000)
        return nb_error(NB_ERR_ARG, "model: %d pseudo-inputs (1 to 100000)", kp);
    if (!(m->pseudo = nb_param(ps, "vamp.pseudo", NB_SHAPE(kp, m->in_dim))))
        return nb_error(NB_ERR_ARG, "model: VampPrior pseudo-inputs: %s", nb_last_error());
    nb_init_normal(m->pseudo, rng, 0.05, 0.01); /* near-black images, as in Tomczak's code */
    return NB_OK;
}

/* The posteriors of the pseudo-inputs: their means and log-variances (Kp, d). */
static void components(nb_tape *tp, const nb_model *m, nb_tensor **mu, nb_tensor **lv)
{
    int64_t shape[NB_MAX_DIMS];
    const int nd = nb_model_input_shape(m, m->cfg.pseudo_inputs, shape);
    nb_tensor *u = nb_reshape(tp, nb_clamp(tp, m->pseudo, 0, 1), nd, shape);
    nb_model_encode(tp, m, u, NULL, mu, lv);
}

/* log (1/Kp) Σ_k N(z; μ_k, σ_k²), per row of z (N, d):
 *   log N(z; μ_k, σ_k²) = −½ [ z²·(1/σ_k²) − 2 z·(μ_k/σ_k²) + Σ_d (μ_k²/σ_k² + log σ_k² + log 2π) ] */
nb_tensor *nb__vamp_log_prior(nb_tape *tp, const nb_model *m, nb_tensor *z)
{
    nb_tensor *mu, *lv;
    components(tp, m, &mu, &lv);
    nb_tensor *prec = nb_exp(tp, nb_neg(tp, lv)), *mp = nb_mul(tp, mu, prec); /* (Kp, d) */
    nb_tensor *quad = nb_sub(tp, nb_matmul(tp, nb_square(tp, z), nb_transpose(tp, prec, 0, 1)),
                             nb_scale(tp, nb_matmul(tp, z, nb_transpose(tp, mp, 0, 1)), 2.0));
    nb_tensor *konst = nb_sum(tp, nb_add_scalar(tp, nb_add(tp, nb_mul(tp, mu, mp), lv), LOG_2PI), NB_AXES(1), 0);
    nb_tensor *logq = nb_scale(tp, nb_add(tp, quad, konst), -0.5); /* (N, Kp) */
    return nb_add_scalar(tp, nb_logsumexp(tp, logq, NB_AXES(1), 0), -log((double)m->cfg.pseudo_inputs));
}

nb_status nb__vamp_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    nb_model_encode(tp, m, b->input, NULL, &t->mu, &t->logvar);
    nb_tensor *eps = o->eps;
    if (!eps && t->mu) eps = nb_randn(tp, o->rng, t->mu->dtype, t->mu->ndim, t->mu->shape);
    t->z = nb__reparam(tp, t->mu, t->logvar, eps);
    /* KL by the sample: log q(z|x) − log p(z) */
    nb_tensor *log_q = nb_sum(tp, nb_normal_log_prob(tp, t->z, t->mu, t->logvar), NB_AXES(1), 0);
    t->kl = nb_sub(tp, log_q, nb__vamp_log_prior(tp, m, t->z));
    t->out = nb_model_decode(tp, m, t->z, NULL);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    t->loss = nb_add(tp, nb_mean(tp, t->recon, 0, NULL, 0), nb_scale(tp, nb_mean(tp, t->kl, 0, NULL, 0), o->beta));
    return nb_tape_status(tp);
}

nb_tensor *nb__vamp_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng)
{
    nb_tensor *mu, *lv;
    components(tp, m, &mu, &lv);
    nb_tensor *idx = nb_empty(tp, nb_params_dtype(m->ps), NB_SHAPE(n));
    for (int64_t i = 0; idx && i < n; i++) nb_set(idx, i, (double)nb_rng_below(rng, (uint64_t)m->cfg.pseudo_inputs));
    mu = nb_index_select(tp, mu, 0, idx), lv = nb_index_select(tp, lv, 0, idx);
    nb_tensor *eps = mu ? nb_randn(tp, rng, mu->dtype, mu->ndim, mu->shape) : NULL;
    return nb_model_mean(tp, m, nb_model_decode(tp, m, nb__reparam(tp, mu, lv, eps), NULL));
}

nb_tensor *nb__repeat(nb_tape *tp, const nb_model *m, nb_tensor *x, int k)
{
    const int64_t B = nb_dim(x, 0);
    int64_t shape[NB_MAX_DIMS];
    const int nd = nb_model_input_shape(m, k * B, shape);
    nb_tensor *x1 = nb_reshape(tp, x, NB_SHAPE(1, B, m->in_dim));
    return nb_reshape(tp, nb_contiguous(tp, nb_expand(tp, x1, NB_SHAPE(k, B, m->in_dim))), nd, shape);
}

nb_tensor *nb__vamp_log_weights(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_rng *rng)
{
    nb_tensor *mu, *lv;
    nb_model_encode(tp, m, x, NULL, &mu, &lv);
    if (!mu) return NULL;
    const int64_t B = nb_dim(mu, 0), d = nb_dim(mu, 1);
    mu = nb_reshape(tp, mu, NB_SHAPE(1, B, d)), lv = nb_reshape(tp, lv, NB_SHAPE(1, B, d));
    nb_tensor *z = nb__reparam(tp, mu, lv, nb_randn(tp, rng, x->dtype, NB_SHAPE(k, B, d)));
    nb_tensor *log_q = nb_sum(tp, nb_normal_log_prob(tp, z, mu, lv), NB_AXES(2), 0); /* (k, B) */
    nb_tensor *zr = nb_reshape(tp, z, NB_SHAPE(k * B, d));
    nb_tensor *log_px = nb_neg(tp, nb_model_nll(tp, m, nb_model_decode(tp, m, zr, NULL), nb__repeat(tp, m, x, k)));
    nb_tensor *lw = nb_sub(tp, nb_add(tp, log_px, nb__vamp_log_prior(tp, m, zr)), nb_reshape(tp, log_q, NB_SHAPE(k * B)));
    return nb_reshape(tp, lw, NB_SHAPE(k, B));
}
