/* models/zoo_vq.c — the VQ-VAE (van den Oord et al. 2017): the encoder's outputs snapped to the
 * nearest of K learned codes, decoded from there.
 *
 *     k*(i) = argmin_k ‖z_e,i − e_k‖²,   z_q,i = e_k*(i)
 *     loss  = −log p(x | z_e + sg(z_q − z_e)) + ‖sg(z_e) − z_q‖² + β_c·‖z_e − sg(z_q)‖²
 *
 * sg is nb_detach: the decoder sees z_q, and its gradient passes to z_e unchanged (the
 * straight-through estimator); the codebook learns from the second term only, the encoder is
 * held near its codes by the third. Written on the public API only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/internal.h"
#include "tensor/error.h"

nb_status nb__vq_init(nb_model *m, nb_params *ps, nb_rng *rng)
{
    nb_model_cfg *c = &m->cfg;
    const int K = c->codebook, dc = c->code_dim;
    if (c->arch == NB_ARCH_MLP) { /* hidden → L·Dc, read as L rows of Dc */
        m->positions = c->codes;
        const int in = c->nhidden ? c->hidden[c->nhidden - 1] : (int)m->in_dim;
        if (nb_linear_init(&m->head_mu, ps, "enc.code", in, c->latent, 1, rng))
            return nb_error(NB_ERR_ARG, "model: VQ-VAE code layer: %s", nb_last_error());
    } else { /* one code per cell of the grid the convolutions leave */
        m->positions = m->h2 * m->w2;
        c->latent = m->positions * dc;
        const nb_conv_cfg one = nb_conv(1, 0);
        if (nb_conv2d_init(&m->vq_in, ps, "enc.code", c->conv2, dc, 1, one, 1, rng) ||
            nb_conv2d_init(&m->vq_out, ps, "dec.code", dc, c->conv2, 1, one, 1, rng))
            return nb_error(NB_ERR_ARG, "model: VQ-VAE 1x1 convolutions: %s", nb_last_error());
    }
    if (!(m->codebook = nb_param(ps, "vq.codebook", NB_SHAPE(K, dc))))
        return nb_error(NB_ERR_ARG, "model: VQ-VAE codebook: %s", nb_last_error());
    nb_init_uniform(m->codebook, rng, -1.0 / K, 1.0 / K);
    return NB_OK;
}

nb_tensor *nb__vq_project(nb_tape *tp, const nb_model *m, nb_tensor *body)
{
    const int64_t dc = m->cfg.code_dim;
    if (m->cfg.arch == NB_ARCH_MLP) return nb_reshape(tp, nb_linear_fwd(tp, &m->head_mu, body), NB_SHAPE(-1, dc));
    /* (B, Dc, h, w) → (B, h, w, Dc): row b·L + p is position p of image b */
    nb_tensor *ze = nb_permute(tp, nb_conv_fwd(tp, &m->vq_in, body), 4, (const int[]){0, 2, 3, 1});
    return nb_reshape(tp, nb_contiguous(tp, ze), NB_SHAPE(-1, dc));
}

nb_tensor *nb__vq_quantise(nb_tape *tp, const nb_model *m, nb_tensor *ze, nb_tensor **codes)
{
    nb_tensor *k = nb_nearest_row(tp, ze, m->codebook); /* argmin_k ‖z − e_k‖², no gradient */
    if (codes) *codes = k;
    return nb_index_select(tp, m->codebook, 0, k);
}

nb_tensor *nb__vq_decode(nb_tape *tp, const nb_model *m, nb_tensor *z)
{
    const nb_model_cfg *c = &m->cfg;
    const int64_t B = z ? nb_dim(z, 0) : 0;
    nb_tensor *g = nb_reshape(tp, z, NB_SHAPE(B, m->h2, m->w2, c->code_dim));
    g = nb_contiguous(tp, nb_permute(tp, g, 4, (const int[]){0, 3, 1, 2}));
    g = nb_conv_relu_fwd(tp, &m->vq_out, g); /* the ReLUs inside the convolutions */
    g = nb_conv_relu_fwd(tp, &m->dec_c1, g);
    return nb_conv_fwd(tp, &m->dec_c2, g);
}

nb_status nb__vq_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t)
{
    (void)o;
    nb_tensor *x = b->input;
    const int64_t B = x ? nb_dim(x, 0) : 0;
    t->z_e = nb__vq_project(tp, m, nb__model_body(tp, m, x, NULL));
    nb_tensor *zq = nb__vq_quantise(tp, m, t->z_e, &t->codes);
    /* straight-through: the value of z_q, the gradient of z_e */
    nb_tensor *zst = nb_add(tp, t->z_e, nb_detach(tp, nb_sub(tp, zq, t->z_e)));
    t->mu = nb_reshape(tp, zq, NB_SHAPE(B, -1));
    t->z = nb_reshape(tp, zst, NB_SHAPE(B, -1));
    t->out = nb_model_decode(tp, m, t->z, NULL);
    t->recon = nb_model_nll(tp, m, t->out, b->target);
    /* the codebook moves to the encoder's outputs; the commitment keeps them near their codes */
    nb_tensor *codebook = nb_sum_all(tp, nb_square(tp, nb_sub(tp, nb_detach(tp, t->z_e), zq)));
    nb_tensor *commit = nb_sum_all(tp, nb_square(tp, nb_sub(tp, t->z_e, nb_detach(tp, zq))));
    nb_tensor *vq = nb_add(tp, codebook, nb_scale(tp, commit, m->cfg.commitment));
    t->loss = nb_add(tp, nb_mean(tp, t->recon, 0, NULL, 0), nb_scale(tp, vq, 1.0 / (double)(B ? B : 1)));
    /* the bound: a point-mass posterior against the uniform prior costs log K per position */
    t->kl = nb_full(tp, nb_params_dtype(m->ps), NB_SHAPE(B), m->positions * log((double)m->cfg.codebook));
    return nb_tape_status(tp);
}

nb_tensor *nb__vq_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng)
{
    const int64_t rows = n * m->positions;
    double *k = rows > 0 ? malloc((size_t)rows * sizeof *k) : NULL;
    if (!k) {
        nb_tape_fail(tp, NB_ERR_ARG, "VQ-VAE sample: %lld images (at least 1; or out of memory)", (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < rows; i++) k[i] = (double)nb_rng_below(rng, (uint64_t)m->cfg.codebook);
    nb_tensor *idx = nb_tensor_from(tp, NB_F64, NB_SHAPE(rows), k, rows);
    free(k);
    if (idx && m->codebook->dtype != NB_F64) { /* indices come in the table's dtype */
        nb_tensor *f = nb_empty(tp, m->codebook->dtype, NB_SHAPE(rows));
        for (int64_t i = 0; f && i < rows; i++) nb_set(f, i, nb_get(idx, i));
        idx = f;
    }
    nb_tensor *z = nb_reshape(tp, nb_index_select(tp, m->codebook, 0, idx), NB_SHAPE(n, -1));
    return nb_model_mean(tp, m, nb_model_decode(tp, m, z, NULL));
}

double nb_vq_perplexity(const int64_t *usage, int k, int *dead)
{
    double total = 0, h = 0;
    int d = 0;
    for (int j = 0; j < k; j++) total += (double)usage[j], d += usage[j] == 0;
    for (int j = 0; j < k && total > 0; j++)
        if (usage[j]) h -= (double)usage[j] / total * log((double)usage[j] / total);
    if (dead) *dead = d;
    return total > 0 ? exp(h) : 0;
}

/* Row picks[i] of n for each of m picks, distinct while m <= n (a partial Fisher-Yates shuffle):
 * two codes set to one row would tie, and the second would never be chosen. */
static nb_status draw_rows(int64_t n, int m, nb_rng *rng, int64_t *picks)
{
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) return nb_error(NB_ERR_NOMEM, "VQ-VAE codebook: out of memory");
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = 0; i < m; i++) {
        if (i >= n) { /* more codes than rows: any row */
            picks[i] = (int64_t)nb_rng_below(rng, (uint64_t)n);
            continue;
        }
        const int64_t r = i + (int64_t)nb_rng_below(rng, (uint64_t)(n - i)), v = perm[r];
        perm[r] = perm[i], perm[i] = v;
        picks[i] = v;
    }
    free(perm);
    return NB_OK;
}

nb_status nb_vq_reset_dead(nb_model *m, const int64_t *usage, int k, const void *z_e, nb_dtype dt, int64_t n,
                           int dc, nb_rng *rng, int *reset)
{
    if (reset) *reset = 0;
    if (!m || m->cfg.kind != NB_VQVAE || !usage || !z_e || !rng)
        return nb_error(NB_ERR_ARG, "nb_vq_reset_dead: needs a VQ-VAE, its usage, encoder outputs and a generator");
    if (k != m->cfg.codebook || dc != m->cfg.code_dim || n < 1)
        return nb_error(NB_ERR_ARG, "nb_vq_reset_dead: %d counts and %lld rows of %d values for a codebook of "
                        "%d codes of %d", k, (long long)n, dc, m->cfg.codebook, m->cfg.code_dim);
    int count = 0;
    for (int j = 0; j < k; j++) count += usage[j] == 0;
    int64_t *picks = count ? malloc((size_t)count * sizeof *picks) : NULL;
    if (count && !picks) return nb_error(NB_ERR_NOMEM, "nb_vq_reset_dead: out of memory");
    nb_status st = count ? draw_rows(n, count, rng, picks) : NB_OK;
    for (int j = 0, c = 0; !st && j < k; j++) {
        if (usage[j]) continue;
        const int64_t r = picks[c++];
        for (int i = 0; i < dc; i++)
            nb_set(m->codebook, (int64_t)j * dc + i,
                   dt == NB_F64 ? ((const double *)z_e)[r * dc + i] : ((const float *)z_e)[r * dc + i]);
    }
    free(picks);
    if (!st && reset) *reset = count;
    return st;
}

nb_status nb_vq_init_codebook(nb_model *m, const nb_dataset *ds, nb_rng *rng)
{
    if (!m || !ds || !rng) return nb_error(NB_ERR_ARG, "nb_vq_init_codebook: NULL model, data set or generator");
    if (m->cfg.kind != NB_VQVAE) return NB_OK;
    const int K = m->cfg.codebook, dc = m->cfg.code_dim;
    /* at least 256 images, and twice as many encoder outputs as codes */
    int64_t n = (2 * (int64_t)K + m->positions - 1) / m->positions;
    n = n < 256 ? 256 : n;
    n = n < ds->n ? n : ds->n;
    if (n < 1) return nb_error(NB_ERR_ARG, "nb_vq_init_codebook: the data set is empty");
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    int64_t *none = calloc((size_t)K, sizeof *none); /* every code "unused": all are set */
    nb_tape *tp = nb_tape_new();
    nb_status st = idx && none && tp ? NB_OK : nb_error(NB_ERR_NOMEM, "nb_vq_init_codebook: out of memory");
    if (tp) nb_tape_set_grad(tp, 0); /* the encoder's outputs only: nothing to record */
    for (int64_t i = 0; !st && i < n; i++) idx[i] = i;
    nb_tensor *x = NULL, *y = NULL, *ze = NULL;
    if (!st && !(st = nb_model_batch(tp, m, ds, idx, n, NB_BIN_NONE, rng, &x, &y))) {
        ze = nb_contiguous(tp, nb__vq_project(tp, m, nb__model_body(tp, m, x, NULL)));
        if ((st = nb_tape_status(tp))) st = nb_error(st, "nb_vq_init_codebook: %s", nb_tape_error(tp));
    }
    if (!st)
        st = nb_vq_reset_dead(m, none, K, ze->data, ze->dtype, nb_numel(ze) / dc, dc, rng, NULL);
    nb_tape_free(tp);
    free(idx), free(none);
    return st;
}
