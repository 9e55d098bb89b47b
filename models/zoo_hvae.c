/* models/zoo_hvae.c — a VAE with two stochastic layers (Burda et al. 2015, section 5):
 *
 *     q(z1|x) q(z2|z1),   p(x|z1) p(z1|z2) p(z2),   p(z2) = N(0, I)
 *     loss = −log p(x|z1) + [log q(z1|x) − log p(z1|z2)] + KL(q(z2|z1) ‖ N(0, I))
 *
 * with z1 and z2 one reparameterised sample each; the bracket is estimated by that sample, the
 * top layer's KL is analytic. Every network is tanh; its heads give means and log-variances. The
 * VAE's own layers serve q(z1|x) (enc, head_mu, head_logvar) and p(x|z1) (dec). Public API only. */
#include <stdio.h>

#include "models/internal.h"
#include "tensor/error.h"

/* body sizes[0] → sizes[1] → sizes[2] (tanh after each) and its two heads → out */
static nb_status gaussian_net(nb_mlp *body, nb_linear_layer *mu, nb_linear_layer *lv, nb_params *ps, const char *name,
                              int in, int hidden, int out, nb_rng *rng)
{
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "%s.fc", name), snprintf(b, sizeof b, "%s.mu", name), snprintf(c, sizeof c, "%s.logvar", name);
    nb_status st = nb_mlp_init(body, ps, a, 2, (const int[]){in, hidden, hidden}, NB_ACT_TANH, 1, rng);
    if (!st && (nb_linear_init(mu, ps, b, hidden, out, 1, rng) || nb_linear_init(lv, ps, c, hidden, out, 1, rng)))
        st = nb_error(NB_ERR_ARG, "model: %s heads: %s", name, nb_last_error());
    return st;
}

nb_status nb__hvae_init(nb_model *m, nb_params *ps, nb_rng *rng)
{
    nb_model_cfg *c = &m->cfg;
    const int h1 = c->hvae_hidden1, z1 = c->hvae_z1, h2 = c->hvae_hidden2, z2 = c->hvae_z2;
    if (h1 < 1 || h1 > 65536 || z1 < 1 || z1 > 4096 || h2 < 1 || h2 > 65536 || z2 < 1 || z2 > 4096)
        return nb_error(NB_ERR_ARG, "model: HVAE sizes %d, %d, %d, %d (hidden 1 to 65536, latent 1 to 4096)",
                        h1, z1, h2, z2);
    if (c->arch != NB_ARCH_MLP || (c->decoder != NB_DEC_BERNOULLI && c->decoder != NB_DEC_GAUSSIAN))
        return nb_error(NB_ERR_ARG, "model: the two-layer VAE is an MLP with a Bernoulli or fixed-variance "
                        "Gaussian decoder (--arch mlp, --decoder bernoulli or gaussian)");
    if (c->decoder == NB_DEC_GAUSSIAN && !(c->sigma > 0))
        return nb_error(NB_ERR_ARG, "model: the fixed-variance decoder needs sigma > 0, got %g", c->sigma);
    c->latent = z1, c->act = NB_ACT_TANH;
    const int in = (int)m->in_dim;
    nb_status st;
    if ((st = gaussian_net(&m->enc, &m->head_mu, &m->head_logvar, ps, "enc", in, h1, z1, rng)) ||
        (st = gaussian_net(&m->enc2, &m->head_mu2, &m->head_logvar2, ps, "enc2", z1, h2, z2, rng)) ||
        (st = gaussian_net(&m->prior1, &m->prior_mu, &m->prior_logvar, ps, "prior1", z2, h2, z1, rng)) ||
        (st = nb_mlp_init(&m->dec, ps, "dec.fc", 3, (const int[]){z1, h1, h1, in}, NB_ACT_TANH, 0, rng)))
        return st;
    return NB_OK;
}

/* The mean and log-variance of a Gaussian layer at h. */
static void gaussian(nb_tape *tp, const nb_mlp *body, const nb_linear_layer *mu, const nb_linear_layer *lv,
                     nb_tensor *h, nb_tensor **m_out, nb_tensor **lv_out)
{
    h = nb_mlp_fwd(tp, body, h);
    *m_out = nb_linear_fwd(tp, mu, h), *lv_out = nb_linear_fwd(tp, lv, h);
}

/* log N(z; μ, e^lv) summed over the last axis */
static nb_tensor *log_normal(nb_tape *tp, nb_tensor *z, nb_tensor *mu, nb_tensor *lv)
{
    return nb_sum(tp, nb_normal_log_prob(tp, z, mu, lv), NB_AXES(-1), 0);
}

nb_status nb__hvae_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    const int64_t d1 = m->cfg.hvae_z1, d2 = m->cfg.hvae_z2;
    nb_tensor *lv2, *pm, *plv, *e1, *e2;
    nb_model_encode(tp, m, b->input, NULL, &t->mu, &t->logvar);
    const int64_t B = t->mu ? nb_dim(t->mu, 0) : 0;
    nb_tensor *eps = o->eps ? o->eps : nb_randn(tp, o->rng, nb_params_dtype(m->ps), NB_SHAPE(B, d1 + d2));
    e1 = nb_slice(tp, eps, 1, 0, d1, 1), e2 = nb_slice(tp, eps, 1, d1, d1 + d2, 1);
    nb_tensor *z1 = t->z = nb__reparam(tp, t->mu, t->logvar, e1);
    gaussian(tp, &m->enc2, &m->head_mu2, &m->head_logvar2, z1, &t->mu2, &lv2);
    nb_tensor *z2 = nb__reparam(tp, t->mu2, lv2, e2);
    gaussian(tp, &m->prior1, &m->prior_mu, &m->prior_logvar, z2, &pm, &plv);
    /* layer 1 by the sample, layer 2 in closed form */
    t->kl1 = nb_sub(tp, log_normal(tp, z1, t->mu, t->logvar), log_normal(tp, z1, pm, plv));
    t->kl2 = nb_kl_normal(tp, t->mu2, lv2, NB_REDUCE_NONE);
    t->kl = nb_add(tp, t->kl1, t->kl2);
    t->out = nb_model_decode(tp, m, z1, NULL);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    t->loss = nb_add(tp, nb_mean(tp, t->recon, 0, NULL, 0), nb_scale(tp, nb_mean(tp, t->kl, 0, NULL, 0), o->beta));
    return nb_tape_status(tp);
}

nb_tensor *nb__hvae_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng)
{
    const nb_dtype dt = nb_params_dtype(m->ps);
    nb_tensor *pm, *plv;
    gaussian(tp, &m->prior1, &m->prior_mu, &m->prior_logvar, nb_randn(tp, rng, dt, NB_SHAPE(n, m->cfg.hvae_z2)), &pm, &plv);
    nb_tensor *z1 = nb__reparam(tp, pm, plv, nb_randn(tp, rng, dt, NB_SHAPE(n, m->cfg.hvae_z1)));
    return nb_model_mean(tp, m, nb_model_decode(tp, m, z1, NULL));
}

nb_tensor *nb__hvae_log_weights(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_rng *rng)
{
    nb_tensor *mu1, *lv1, *mu2, *lv2, *pm, *plv;
    nb_model_encode(tp, m, x, NULL, &mu1, &lv1);
    if (!mu1) return NULL;
    const int64_t B = nb_dim(mu1, 0), d1 = m->cfg.hvae_z1, d2 = m->cfg.hvae_z2, R = k * B;
    /* k samples of (z1, z2) per image, rows sample-major as nb__repeat lays out x */
    mu1 = nb_reshape(tp, nb_contiguous(tp, nb_expand(tp, nb_reshape(tp, mu1, NB_SHAPE(1, B, d1)), NB_SHAPE(k, B, d1))), NB_SHAPE(R, d1));
    lv1 = nb_reshape(tp, nb_contiguous(tp, nb_expand(tp, nb_reshape(tp, lv1, NB_SHAPE(1, B, d1)), NB_SHAPE(k, B, d1))), NB_SHAPE(R, d1));
    nb_tensor *z1 = nb__reparam(tp, mu1, lv1, nb_randn(tp, rng, x->dtype, NB_SHAPE(R, d1)));
    gaussian(tp, &m->enc2, &m->head_mu2, &m->head_logvar2, z1, &mu2, &lv2);
    nb_tensor *z2 = nb__reparam(tp, mu2, lv2, nb_randn(tp, rng, x->dtype, NB_SHAPE(R, d2)));
    gaussian(tp, &m->prior1, &m->prior_mu, &m->prior_logvar, z2, &pm, &plv);
    /* log w = log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1) */
    nb_tensor *log_p = nb_sub(tp, log_normal(tp, z1, pm, plv), nb_model_nll(tp, m, nb_model_decode(tp, m, z1, NULL),
                                                                         nb__repeat(tp, m, x, k)));
    log_p = nb_add(tp, log_p, log_normal(tp, z2, NULL, NULL));
    nb_tensor *log_q = nb_add(tp, log_normal(tp, z1, mu1, lv1), log_normal(tp, z2, mu2, lv2));
    return nb_reshape(tp, nb_sub(tp, log_p, log_q), NB_SHAPE(k, B));
}
