/* models/zoo_objectives.c — the VAE's other objectives, on the public API alone: IWAE, β-TCVAE,
 * WAE-MMD and InfoVAE (docs/autoencoders.md gives each one's formula and use). Quantities
 * pairwise over the batch are matrix products, |a|² + |b|² − 2 a·bᵀ, or one op over the pairs
 * (the MMD's kernel sums), not B×B×d broadcasts: only β-TCVAE's per-dimension marginals need the
 * (B, B, d) tensor. */
#include <math.h>

#include "models/internal.h"

#define LOG_2PI 1.8378770664093453

nb_loss_opts nb_loss_defaults(void)
{
    return (nb_loss_opts){.beta = 1, .samples = 5, .tc_alpha = 1, .tc_beta = 6, .tc_gamma = 1};
}

double nb_mmd_lambda_default(nb_objective obj)
{
    return obj == NB_OBJ_WAE ? 10 : obj == NB_OBJ_INFOVAE ? 1000 : 0;
}

const char *nb_objective_name(nb_objective obj)
{
    static const char *const names[] = {"elbo", "iwae", "tcvae", "wae", "infovae"};
    return (int)obj >= 0 && obj <= NB_OBJ_INFOVAE ? names[obj] : "?";
}

int nb_objective_couples_batch(nb_objective obj)
{
    return obj == NB_OBJ_TCVAE || obj == NB_OBJ_WAE || obj == NB_OBJ_INFOVAE;
}

/* Σ over the last axis (the latent dims) */
static nb_tensor *sum_d(nb_tape *tp, nb_tensor *t) { return nb_sum(tp, t, NB_AXES(-1), 0); }

/* nb__reparam with ε of the given shape: fixed by o, or drawn */
static nb_tensor *reparam(nb_tape *tp, const nb_loss_opts *o, nb_tensor *mu, nb_tensor *logvar, int nd,
                          const int64_t *shape)
{
    nb_tensor *eps = o->eps ? nb_reshape(tp, o->eps, nd, shape) : nb_randn(tp, o->rng, mu->dtype, nd, shape);
    return nb__reparam(tp, mu, logvar, eps);
}

/* x (B, ...) with each example repeated k times in a row: (B·k, ...) in the model's input shape */
static nb_tensor *repeat(nb_tape *tp, const nb_model *m, nb_tensor *x, int64_t k)
{
    const int64_t B = nb_dim(x, 0), D = nb_numel(x) / B;
    int64_t shape[NB_MAX_DIMS];
    const int nd = nb_model_input_shape(m, B * k, shape);
    return nb_reshape(tp, nb_expand(tp, nb_reshape(tp, x, NB_SHAPE(B, 1, D)), NB_SHAPE(B, k, D)), nd, shape);
}

/* −IWAE-K = −mean_i log (1/K) Σ_k p(x_i|z_ik) p(z_ik) / q(z_ik|x_i). The K codes of an example
 * are its own rows, (B, K, d), so a shard of the batch draws what one process draws for it;
 * the B·K codes are decoded as one batch. */
static void iwae(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    const int64_t B = nb_dim(t->mu, 0), d = nb_dim(t->mu, 1), K = o->samples > 1 ? o->samples : 1;
    nb_tensor *mu = nb_reshape(tp, t->mu, NB_SHAPE(B, 1, d)), *lv = nb_reshape(tp, t->logvar, NB_SHAPE(B, 1, d));
    t->z = reparam(tp, o, mu, lv, NB_SHAPE(B, K, d));
    t->out = nb_model_decode(tp, m, nb_reshape(tp, t->z, NB_SHAPE(B * K, d)), NULL);
    nb_tensor *nll = nb_reshape(tp, nb_model_nll(tp, m, t->out, repeat(tp, m, b->target, K)), NB_SHAPE(B, K));
    /* log w = log p(x|z) + log p(z) − log q(z|x), the densities summed over z's dims */
    nb_tensor *log_prior_ratio = sum_d(tp, nb_sub(tp, nb_normal_log_prob(tp, t->z, NULL, NULL),
                                                  nb_normal_log_prob(tp, t->z, mu, lv)));
    nb_tensor *log_w = nb_sub(tp, log_prior_ratio, nll);
    t->bound = nb_neg(tp, nb_add_scalar(tp, nb_logsumexp(tp, log_w, NB_AXES(1), 0), -log((double)K)));
    t->recon = nb_mean(tp, nll, NB_AXES(1), 0);
    t->loss = nb_mean_all(tp, t->bound);
}

/* log q(z_i|x_j) = Σ_d log N(z_id; μ_jd, σ²_jd) for every pair, (B, B), in matmul form:
 * −½ [ z²·(1/σ²)ᵀ − 2 z·(μ/σ²)ᵀ + Σ_d (μ²/σ² + log σ² + log 2π) ] */
static nb_tensor *pairwise_log_q(nb_tape *tp, nb_tensor *z, nb_tensor *mu, nb_tensor *logvar)
{
    nb_tensor *prec = nb_exp(tp, nb_neg(tp, logvar)), *mu_prec = nb_mul(tp, mu, prec);
    nb_tensor *quad = nb_sub(tp, nb_matmul(tp, nb_square(tp, z), nb_transpose(tp, prec, 0, 1)),
                             nb_scale(tp, nb_matmul(tp, z, nb_transpose(tp, mu_prec, 0, 1)), 2));
    nb_tensor *per_j = sum_d(tp, nb_add_scalar(tp, nb_add(tp, nb_mul(tp, mu, mu_prec), logvar), LOG_2PI));
    return nb_scale(tp, nb_add(tp, quad, nb_reshape(tp, per_j, NB_SHAPE(1, nb_dim(mu, 0)))), -0.5);
}

/* β-TCVAE with minibatch-weighted sampling (Chen et al. 2018): the KL's three parts, estimated
 * from the batch as a sample of the aggregate posterior q(z) of a data set of N images. */
static void tcvae(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    const int64_t B = nb_dim(t->mu, 0), d = nb_dim(t->mu, 1);
    const double log_nb = log((double)(o->dataset_size > 0 ? o->dataset_size : B) * (double)B);
    t->z = reparam(tp, o, t->mu, t->logvar, NB_SHAPE(B, d));
    t->out = nb_model_decode(tp, m, t->z, NULL);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    nb_tensor *log_qzx = sum_d(tp, nb_normal_log_prob(tp, t->z, t->mu, t->logvar)); /* log q(z_i|x_i) */
    nb_tensor *log_pz = sum_d(tp, nb_normal_log_prob(tp, t->z, NULL, NULL));       /* log p(z_i) */
    /* log q(z_i) ≈ logsumexp_j log q(z_i|x_j) − log(N·B) */
    nb_tensor *log_qz = nb_add_scalar(tp, nb_logsumexp(tp, pairwise_log_q(tp, t->z, t->mu, t->logvar), NB_AXES(1), 0),
                                      -log_nb);
    /* log Π_d q(z_id) ≈ Σ_d [logsumexp_j log q(z_id|x_j) − log(N·B)], from the densities laid out
     * (i, d, j): j, the axis the logsumexp runs over, along rows of B rather than of d */
    nb_tensor *mu_t = nb_reshape(tp, nb_contiguous(tp, nb_transpose(tp, t->mu, 0, 1)), NB_SHAPE(1, d, B));
    nb_tensor *lv_t = nb_reshape(tp, nb_contiguous(tp, nb_transpose(tp, t->logvar, 0, 1)), NB_SHAPE(1, d, B));
    nb_tensor *per_dim = nb_normal_log_prob(tp, nb_reshape(tp, t->z, NB_SHAPE(B, d, 1)), mu_t, lv_t);
    nb_tensor *log_prod = nb_add_scalar(tp, sum_d(tp, nb_logsumexp(tp, per_dim, NB_AXES(2), 0)), -(double)d * log_nb);
    t->mi = nb_mean_all(tp, nb_sub(tp, log_qzx, log_qz));
    t->tc = nb_mean_all(tp, nb_sub(tp, log_qz, log_prod));
    t->dwkl = nb_mean_all(tp, nb_sub(tp, log_prod, log_pz));
    t->loss = nb_add(tp, nb_add(tp, nb_mean_all(tp, t->recon), nb_scale(tp, t->mi, o->tc_alpha)),
                     nb_add(tp, nb_scale(tp, t->tc, o->tc_beta), nb_scale(tp, t->dwkl, o->tc_gamma)));
}

/* Σ_ij k(a_i, b_j) with the inverse multiquadratic kernel over scales s,
 * k(a, b) = Σ_s C_s / (C_s + ‖a − b‖²), C_s = 2·d·s: one op over the pairs */
static nb_tensor *kernel_sum(nb_tape *tp, nb_tensor *a, nb_tensor *b)
{
    static const double scales[7] = {0.1, 0.2, 0.5, 1, 2, 5, 10};
    const int64_t d = nb_dim(a, 1);
    double c[7];
    float cf[7];
    for (int s = 0; s < 7; s++) c[s] = 2.0 * (double)d * scales[s], cf[s] = (float)c[s];
    nb_tensor *cs = nb_tensor_from(tp, a->dtype, NB_SHAPE(7), a->dtype == NB_F64 ? (const void *)c : cf, 7);
    return nb_imq_kernel_sum(tp, a, b, cs);
}

/* The unbiased MMD² between the codes z and prior samples zp (B, d each):
 *   1/(B(B−1)) Σ_{i≠j} [k(z_i, z_j) + k(zp_i, zp_j)] − 2/B² Σ_ij k(z_i, zp_j)
 * The diagonal terms are k(a, a) = 7 (one per scale): subtracted from the full sums. One
 * sample has no pair: its MMD is 0. */
static nb_tensor *mmd(nb_tape *tp, nb_tensor *z, nb_tensor *zp)
{
    const double B = (double)nb_dim(z, 0);
    if (B < 2) return nb_scalar(tp, z->dtype, 0);
    nb_tensor *within = nb_add_scalar(tp, nb_add(tp, kernel_sum(tp, z, z), kernel_sum(tp, zp, zp)), -14 * B);
    return nb_sub(tp, nb_scale(tp, within, 1 / (B * (B - 1))), nb_scale(tp, kernel_sum(tp, z, zp), 2 / (B * B)));
}

/* WAE-MMD: recon + λ·MMD(q(z), p(z)), no KL; InfoVAE (α = 0): recon + β·KL + (λ − 1)·MMD.
 * z is the stochastic encoder's reparameterised sample, z̃ ~ N(0, I) fresh each step. */
static void mmd_objective(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    const int64_t B = nb_dim(t->mu, 0), d = nb_dim(t->mu, 1);
    const double lambda = o->mmd_lambda > 0 ? o->mmd_lambda : nb_mmd_lambda_default(o->objective);
    t->z = reparam(tp, o, t->mu, t->logvar, NB_SHAPE(B, d));
    t->out = nb_model_decode(tp, m, t->z, NULL);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    nb_tensor *prior = o->prior ? o->prior : nb_randn(tp, o->rng, t->mu->dtype, NB_SHAPE(B, d));
    t->mmd = mmd(tp, t->z, prior);
    t->loss = nb_mean_all(tp, t->recon);
    if (o->objective == NB_OBJ_WAE)
        t->loss = nb_add(tp, t->loss, nb_scale(tp, t->mmd, lambda));
    else
        t->loss = nb_add(tp, nb_add(tp, t->loss, nb_scale(tp, nb_mean_all(tp, t->kl), o->beta)),
                         nb_scale(tp, t->mmd, lambda - 1));
}

nb_status nb__objective_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o,
                             nb_loss_terms *t)
{
    static const char *const kinds[] = {"an AE", "a denoising AE", "a VAE", "a conditional VAE", "a VQ-VAE",
                                        "a VampPrior VAE", "a two-layer VAE"};
    const char *name = nb_objective_name(o->objective);
    if ((int)o->objective < NB_OBJ_ELBO || o->objective > NB_OBJ_INFOVAE)
        return nb_tape_fail(tp, NB_ERR_ARG, "nb_model_loss: unknown objective %d", (int)o->objective);
    if (m->cfg.kind != NB_VAE)
        return nb_tape_fail(tp, NB_ERR_ARG, "--objective %s: applies to a VAE (--model vae), not to %s, "
                            "which trains on its own loss", name, (int)m->cfg.kind <= NB_HVAE ? kinds[m->cfg.kind] : "this model");
    if (o->free_bits > 0)
        return nb_tape_fail(tp, NB_ERR_ARG, "--objective %s: --free-bits applies to the ELBO's KL only", name);
    if (!o->eps && !o->rng)
        return nb_tape_fail(tp, NB_ERR_ARG, "nb_model_loss: --objective %s needs a generator or a fixed eps", name);
    if (o->objective == NB_OBJ_IWAE && (o->samples < 0 || o->samples > 4096))
        return nb_tape_fail(tp, NB_ERR_ARG, "--objective iwae: --samples %d (1 to 4096)", o->samples);
    if (nb_model_encode(tp, m, b->input, b->y, &t->mu, &t->logvar)) return nb_tape_status(tp);
    t->kl = nb_kl_normal(tp, t->mu, t->logvar, NB_REDUCE_NONE);
    switch (o->objective) {
    case NB_OBJ_IWAE: iwae(tp, m, b, o, t); break;
    case NB_OBJ_TCVAE: tcvae(tp, m, b, o, t); break;
    default: mmd_objective(tp, m, b, o, t); break;
    }
    if (!t->bound) t->bound = nb_add(tp, t->recon, t->kl); /* the ELBO, analytic KL */
    return nb_tape_status(tp);
}
