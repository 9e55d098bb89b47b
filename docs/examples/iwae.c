/* docs/examples/iwae.c — a new model written against nabla's API, without touching the library:
 * the importance-weighted autoencoder (Burda et al. 2015) on top of the VAE's encoder and decoder.
 *
 * The IWAE-k bound replaces the ELBO's single sample by k of them:
 *
 *     L_k(x) = E[ log (1/k) Σ_i p(x, z_i) / q(z_i | x) ],   z_i ~ q(z | x)
 *
 * L_1 is the ELBO, and L_k rises towards log p(x) as k grows. Everything below is ordinary ops on
 * the tape, so nb_backward differentiates it; iwae_main.c checks the gradient and trains it.
 * docs/new-model.md walks through it.
 */
#include <math.h>

#include "iwae.h"

nb_tensor *iwae_loss(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_tensor *eps, nb_rng *rng)
{
    nb_tensor *mu, *logvar;
    if (nb_model_encode(tp, m, x, NULL, &mu, &logvar)) return NULL;
    const int64_t B = nb_dim(mu, 0), d = nb_dim(mu, 1), D = nb_numel(x) / B;

    /* k samples per example, laid out (k, B, d): the posterior broadcasts over the first axis */
    nb_tensor *mu_k = nb_reshape(tp, mu, NB_SHAPE(1, B, d));
    nb_tensor *lv_k = nb_reshape(tp, logvar, NB_SHAPE(1, B, d));
    if (!eps) eps = nb_randn(tp, rng, mu->dtype, NB_SHAPE(k, B, d));
    nb_tensor *z = nb_add(tp, mu_k, nb_mul(tp, nb_exp(tp, nb_scale(tp, lv_k, 0.5)), eps));

    /* log p(x | z_i): decode all k·B codes at once against x repeated k times */
    nb_tensor *out = nb_model_decode(tp, m, nb_reshape(tp, z, NB_SHAPE(k * B, d)), NULL);
    nb_tensor *x_k = nb_reshape(tp, nb_expand(tp, nb_reshape(tp, x, NB_SHAPE(1, B, D)), NB_SHAPE(k, B, D)),
                                NB_SHAPE(k * B, D));
    nb_tensor *log_px = nb_reshape(tp, nb_neg(tp, nb_model_nll(tp, m, nb_reshape(tp, out, NB_SHAPE(k * B, D)), x_k)),
                                   NB_SHAPE(k, B));

    /* log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x), each density summed over z's dims */
    nb_tensor *log_pz = nb_sum(tp, nb_normal_log_prob(tp, z, NULL, NULL), NB_AXES(-1), 0);
    nb_tensor *log_qz = nb_sum(tp, nb_normal_log_prob(tp, z, mu_k, lv_k), NB_AXES(-1), 0);
    nb_tensor *log_w = nb_add(tp, log_px, nb_sub(tp, log_pz, log_qz));
    /* a stable log-mean-exp over the k samples */
    nb_tensor *bound = nb_add_scalar(tp, nb_logsumexp(tp, log_w, NB_AXES(0), 0), -log((double)k));
    return nb_neg(tp, nb_mean_all(tp, bound));
}
