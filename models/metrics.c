/* models/metrics.c — evaluation in nats per image, collapse diagnostics, and the importance-
 * sampled log-likelihood. Sums run in double over the whole data set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/internal.h"
#include "tensor/error.h"
#include "tensor/kernels.h"

static nb_status tape_error(nb_tape *tp, const char *what)
{
    return nb_error(nb_tape_status(tp), "%s: %s", what, nb_tape_error(tp));
}

nb_status nb_model_evaluate(const nb_model *m, const nb_dataset *ds, int64_t batch, nb_binarize bin,
                            const nb_corruption *corrupt, uint64_t seed, nb_eval *e)
{
    return nb_model_evaluate_dist(m, ds, batch, bin, corrupt, seed, NULL, e);
}

/* The sums an evaluation is made of, over every image (the objective's batch terms weighted by
 * the batch's size): */
enum { ACC_N, ACC_RECON, ACC_KL, ACC_SE, ACC_KL1, ACC_KL2, ACC_BOUND, ACC_MI, ACC_TC, ACC_DWKL, ACC_MMD,
       ACC_DIMS };
/* then Σμ, Σμ² and ΣKL per latent dim; an HVAE's Σμ2, Σμ2²; a VQ-VAE's count per code */

static int64_t latent2(const nb_model *m) { return m->cfg.kind == NB_HVAE ? m->cfg.hvae_z2 : 0; }
static int64_t ncodes(const nb_model *m) { return m->cfg.kind == NB_VQVAE ? m->cfg.codebook : 0; }

/* The batches k with k % ranks == rank, summed into acc. Every batch draws from its own stream
 * fork(seed, k), so which rank evaluates it changes nothing. */
static nb_status evaluate_part(const nb_model *m, const nb_dataset *ds, int64_t batch, nb_binarize bin,
                               const nb_corruption *corrupt, uint64_t seed, const nb_dist *dist,
                               const nb_loss_opts *obj, double *acc)
{
    const int d = m->cfg.latent, vae = m->cfg.kind == NB_VAE || m->cfg.kind == NB_CVAE;
    const int64_t d2 = latent2(m);
    double *mu_sum = acc + ACC_DIMS, *mu_sq = mu_sum + d, *kl_dim = mu_sq + d;
    double *mu2_sum = kl_dim + d, *mu2_sq = mu2_sum + d2, *usage = mu2_sq + d2;
    nb_batcher bt;
    if (nb_batcher_init(&bt, ds, batch, 0, seed)) return NB_ERR_NOMEM;
    nb_tape *tp = nb_tape_new();
    nb_status st = tp ? NB_OK : nb_error(NB_ERR_NOMEM, "evaluate: out of memory");
    nb_rng base = nb_rng_seed(seed);
    const int64_t *idx;
    for (int64_t b, step = 0; !st && (b = nb_batcher_next(&bt, &idx)) > 0; step++) {
        if (step % nb_dist_size(dist) != nb_dist_rank(dist)) continue;
        nb_tape_reset(tp);
        nb_tape_set_grad(tp, 0);
        nb_rng rng = nb_rng_fork(&base, (uint64_t)step);
        nb_tensor *x, *y;
        if ((st = nb_model_batch(tp, m, ds, idx, b, bin, &rng, &x, &y))) break;
        nb_batch batch_ = {x, x, y};
        if (corrupt && corrupt->n)
            batch_.input = nb_corrupt(tp, corrupt, x, m->cfg.channels, m->cfg.height, m->cfg.width, &rng);
        nb_loss_opts o = {.beta = 1, .rng = &rng};
        if (obj) /* the objective's own terms; its β-weighted loss is not reported */
            o.objective = obj->objective, o.samples = obj->samples, o.tc_alpha = obj->tc_alpha,
            o.tc_beta = obj->tc_beta, o.tc_gamma = obj->tc_gamma, o.mmd_lambda = obj->mmd_lambda,
            o.dataset_size = ds->n;
        nb_loss_terms t;
        if (nb_model_loss(tp, m, &batch_, &o, &t)) {
            st = tape_error(tp, "evaluate");
            break;
        }
        nb_tensor *mean = nb_model_mean(tp, m, t.out), *se;
        if (nb_numel(mean) == nb_numel(x)) {
            se = nb_mse(tp, mean, x, NB_REDUCE_SUM);
        } else { /* IWAE decodes K codes per image: the mean of their squared errors */
            const int64_t D = nb_numel(x) / b, k = nb_numel(mean) / nb_numel(x);
            nb_tensor *diff = nb_sub(tp, nb_reshape(tp, mean, NB_SHAPE(b, k, D)), nb_reshape(tp, x, NB_SHAPE(b, 1, D)));
            se = nb_scale(tp, nb_sum_all(tp, nb_square(tp, diff)), 1.0 / (double)k);
        }
        if (!se) {
            st = tape_error(tp, "evaluate");
            break;
        }
        acc[ACC_SE] += nb_get(se, 0);
        if (t.mi) acc[ACC_MI] += (double)b * nb_get(t.mi, 0), acc[ACC_TC] += (double)b * nb_get(t.tc, 0),
                  acc[ACC_DWKL] += (double)b * nb_get(t.dwkl, 0);
        if (t.mmd) acc[ACC_MMD] += (double)b * nb_get(t.mmd, 0);
        for (int64_t i = 0; t.codes && i < nb_numel(t.codes); i++) usage[(int64_t)nb_get(t.codes, i)]++;
        for (int64_t i = 0; i < b; i++) {
            acc[ACC_RECON] += nb_get(t.recon, i);
            acc[ACC_BOUND] += nb_get(t.bound, i);
            if (t.kl) acc[ACC_KL] += nb_get(t.kl, i);
            if (t.kl1) acc[ACC_KL1] += nb_get(t.kl1, i), acc[ACC_KL2] += nb_get(t.kl2, i);
            for (int64_t j = 0; j < d2; j++) {
                const double mu = nb_get(t.mu2, i * d2 + j);
                mu2_sum[j] += mu, mu2_sq[j] += mu * mu;
            }
            for (int j = 0; j < d; j++) {
                const double mu = nb_get(t.mu, i * d + j);
                mu_sum[j] += mu, mu_sq[j] += mu * mu;
                if (vae) {
                    const double lv = nb_get(t.logvar, i * d + j);
                    kl_dim[j] += -0.5 * (1 + lv - mu * mu - exp(lv));
                }
            }
        }
        acc[ACC_N] += (double)b;
    }
    nb_tape_free(tp);
    nb_batcher_free(&bt);
    return st;
}

nb_status nb_model_evaluate_dist(const nb_model *m, const nb_dataset *ds, int64_t batch, nb_binarize bin,
                                 const nb_corruption *corrupt, uint64_t seed, nb_dist *dist, nb_eval *e)
{
    return nb_model_evaluate_with(m, ds, batch, bin, corrupt, seed, dist, NULL, e);
}

nb_status nb_model_evaluate_with(const nb_model *m, const nb_dataset *ds, int64_t batch, nb_binarize bin,
                                 const nb_corruption *corrupt, uint64_t seed, nb_dist *dist,
                                 const nb_loss_opts *obj, nb_eval *e)
{
    memset(e, 0, sizeof *e);
    if (obj && obj->objective != NB_OBJ_ELBO) e->objective = obj->objective;
    e->samples = obj && obj->objective == NB_OBJ_IWAE ? (obj->samples > 1 ? obj->samples : 1) : 0;
    const int d = m->cfg.latent;
    e->latent = d;
    const int64_t nacc = ACC_DIMS + 3 * (int64_t)d + 2 * latent2(m) + ncodes(m);
    double *acc = calloc((size_t)nacc, sizeof *acc);
    nb_status st = acc ? evaluate_part(m, ds, batch, bin, corrupt, seed, dist, obj, acc)
                       : nb_error(NB_ERR_NOMEM, "evaluate: out of memory");
    /* every rank gets here, failed or not, and learns whether another failed */
    if (!(st = nb_dist_agree(dist, st))) st = nb_dist_sum(dist, acc, nacc);
    e->n = acc && !st ? (int64_t)acc[ACC_N] : 0;
    if (!st && e->n > 0) {
        const double n = (double)e->n, *mu_sum = acc + ACC_DIMS, *mu_sq = mu_sum + d, *kl_dim = mu_sq + d;
        e->recon = acc[ACC_RECON] / n, e->kl = acc[ACC_KL] / n, e->mse = acc[ACC_SE] / n;
        e->elbo_loss = e->recon + e->kl;
        e->bound = acc[ACC_BOUND] / n;
        e->mi = acc[ACC_MI] / n, e->tc = acc[ACC_TC] / n, e->dwkl = acc[ACC_DWKL] / n, e->mmd = acc[ACC_MMD] / n;
        e->bits_per_dim = e->elbo_loss / ((double)m->in_dim * log(2.0));
        for (int j = 0; j < d; j++) {
            const double var = mu_sq[j] / n - (mu_sum[j] / n) * (mu_sum[j] / n);
            e->active_units += var > 0.01; /* Burda et al.: Cov_x(E_q[z_d]) > 0.01 */
            if (j < 256) e->kl_dim[j] = kl_dim[j] / n;
        }
        const int64_t d2 = latent2(m), K = ncodes(m);
        const double *mu2_sum = kl_dim + d, *mu2_sq = mu2_sum + d2, *usage = mu2_sq + d2;
        e->latent2 = (int)d2, e->active1 = e->active_units;
        e->kl1 = acc[ACC_KL1] / n, e->kl2 = acc[ACC_KL2] / n;
        for (int64_t j = 0; j < d2; j++)
            e->active2 += mu2_sq[j] / n - (mu2_sum[j] / n) * (mu2_sum[j] / n) > 0.01;
        if (K) {
            int64_t *u = malloc((size_t)K * sizeof *u);
            for (int64_t j = 0; u && j < K; j++) u[j] = (int64_t)usage[j];
            if (u) e->perplexity = nb_vq_perplexity(u, (int)K, &e->dead_codes);
            free(u);
        }
    }
    free(acc);
    return st;
}

/* log N(v; mean, e^lv) summed over a row of d values; prec = e^-lv (all three NULL: N(0, I)) */
static double log_normal(const double *v, const double *mean, const double *lv, const double *prec, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        const double diff = v[j] - (mean ? mean[j] : 0), l = lv ? lv[j] : 0;
        s += -0.5 * (log(2 * M_PI) + l + diff * diff * (prec ? prec[j] : 1));
    }
    return s;
}

/* The rows of a chunk's decoder GEMMs: k samples of C images decoded at once, so that the GEMMs
 * run at full speed (64-row GEMMs left half the machine idle). */
enum { IS_ROWS = 16384 };

/* The values of t (contiguous, f32 or f64) as doubles, into out. */
static void copy_doubles(const nb_tensor *t, double *out)
{
    const int64_t n = nb_numel(t);
    if (t->dtype == NB_F64)
        memcpy(out, t->data, (size_t)n * sizeof *out);
    else
        for (int64_t i = 0; i < n; i++) out[i] = ((const float *)t->data)[i];
}

/* −log p(x|z) of a Bernoulli decoder for the k samples of b images, logits (k·b, ...) sample-major
 * against the images x (b, ...) themselves: each sample's rows are summed against x as they are
 * made, without x repeated k times in memory (the same kernel and sums as nb_bce_logits's).
 * Returns NULL when the layout does not suit that kernel. */
static nb_tensor *shared_target_bce(nb_tape *tp, nb_tensor *logits, const nb_tensor *x, int64_t b, int k)
{
    nb_tensor *y = logits ? nb_empty(tp, logits->dtype, NB_SHAPE(b * k)) : NULL;
    if (!y || !nb_is_contiguous(logits) || !nb_is_contiguous(x)) return NULL;
    const size_t es = nb_dtype_size(logits->dtype);
    const int64_t per = nb_numel(x); /* one sample's logits: b rows */
    for (int j = 0; j < k; j++) {
        nb_tensor lj = *logits, yj;
        lj.shape[0] = b;
        lj.data = (char *)logits->data + (size_t)j * (size_t)per * es;
        nb_tensor_wrap(&yj, y->dtype, 1, (const int64_t[]){b}, (char *)y->data + (size_t)j * (size_t)b * es);
        if (!nb_same_shape(&lj, x) || !nb_ew_rowsum(NB_EW_BCE, &yj, &lj, x)) return NULL;
    }
    return y;
}

/* Rows of logits per block of nb__bernoulli_nll: a block's logits stay in L2 (as Linear's). */
enum { NLL_BLOCK_BYTES = 1 << 19 };

/* Each block of rows has its logits made (bias, then the GEMM onto it, as nb_linear's blocks) and
 * summed against the images while in L2, so that a chunk's logits (51 MB for 16k rows of 784)
 * never reach memory. The blocks run on the threads, each GEMM on one, and their bounds do not
 * depend on the thread count. */
int nb__bernoulli_nll(const nb_linear_layer *last, const nb_tensor *h, const nb_tensor *x, int64_t b, double *nll,
                      nb_status *st)
{
    const nb_tensor *w = last->weight, *bias = last->bias;
    const nb_dtype dt = h->dtype;
    const size_t es = nb_dtype_size(dt);
    const int64_t R = nb_dim(h, 0), I = nb_dim(h, 1), O = nb_dim(w, 0);
    nb_tensor probe_a, probe_y;
    nb_tensor_wrap(&probe_a, dt, 2, (const int64_t[]){1, O}, h->data);
    nb_tensor_wrap(&probe_y, dt, 1, (const int64_t[]){1}, h->data);
    if (w->dtype != dt || x->dtype != dt || !nb_is_contiguous(h) || !nb_is_contiguous(x) || nb_numel(x) != b * O ||
        !nb_ew_rowsum_ok(NB_EW_BCE, &probe_y, &probe_a, &probe_a))
        return 0;
    int64_t blk = NLL_BLOCK_BYTES / (O * (int64_t)es);
    if (blk < 1) blk = 1;
    const int64_t nblk = (R + blk - 1) / blk;
    *st = NB_OK;
#pragma omp parallel
    {
        char *buf = malloc((size_t)(blk * O) * es + (size_t)blk * es); /* logits, then their row sums */
        nb_status mine = buf ? NB_OK : NB_ERR_NOMEM;
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nblk; k++) {
            const int64_t r0 = k * blk, n = R - r0 < blk ? R - r0 : blk;
            if (mine) continue;
            for (int64_t r = 0; bias && r < n; r++) memcpy(buf + (size_t)(r * O) * es, bias->data, (size_t)O * es);
            mine = nb_gemm(dt, 0, 1, n, O, I, 1.0, (const char *)h->data + (size_t)(r0 * I) * es, I, w->data, I,
                           bias ? 1.0 : 0.0, buf, O);
            char *sums = buf + (size_t)(blk * O) * es;
            for (int64_t r = 0; !mine && r < n;) { /* runs of rows whose images are consecutive */
                const int64_t i = (r0 + r) % b, len = n - r < b - i ? n - r : b - i;
                nb_tensor lt, xt, yt;
                nb_tensor_wrap(&lt, dt, 2, (const int64_t[]){len, O}, buf + (size_t)(r * O) * es);
                nb_tensor_wrap(&xt, dt, 2, (const int64_t[]){len, O}, (char *)x->data + (size_t)(i * O) * es);
                nb_tensor_wrap(&yt, dt, 1, (const int64_t[]){len}, sums);
                if (!nb_ew_rowsum(NB_EW_BCE, &yt, &lt, &xt)) { /* the probe above makes this unreachable */
                    mine = NB_ERR_SHAPE;
                    break;
                }
                copy_doubles(&yt, nll + r0 + r);
                r += len;
            }
        }
        free(buf);
#pragma omp critical
        if (mine > *st) *st = mine;
    }
    return 1;
}

/* log (1/k) Σ_j w_j per image from the log-weights lw (row j·b + i), in double, into the sums. */
static void accumulate(const double *lw, int64_t b, int k, double *s, double *s2, int64_t *n)
{
    for (int64_t i = 0; i < b; i++) {
        double mx = -INFINITY, acc = 0;
        for (int j = 0; j < k; j++) mx = fmax(mx, lw[(int64_t)j * b + i]);
        for (int j = 0; j < k; j++) acc += exp(lw[(int64_t)j * b + i] - mx);
        const double ll = mx + log(acc) - log((double)k);
        *s += ll, *s2 += ll * ll, (*n)++;
    }
}

nb_status nb_model_log_likelihood(const nb_model *m, const nb_dataset *ds, int64_t count, int k,
                                  nb_binarize bin, uint64_t seed, double *mean, double *stderr_)
{
    if (!m || !ds || !mean || !stderr_) return nb_error(NB_ERR_ARG, "log-likelihood: NULL argument");
    if (m->cfg.kind == NB_VQVAE)
        return nb_error(NB_ERR_ARG, "log-likelihood: a VQ-VAE's posterior is a point mass, so importance "
                        "sampling has nothing to sample; its bound is recon + L·log K (nabla evaluate's -ELBO)");
    if (!nb_model_is_vae(m)) return nb_error(NB_ERR_ARG, "log-likelihood: needs a VAE");
    if (k < 1 || k > (1 << 20)) return nb_error(NB_ERR_ARG, "log-likelihood: k = %d (1 to 2^20)", k);
    if (count <= 0 || count > ds->n) count = ds->n;
    const int d = m->cfg.latent;
    const int64_t C = k >= IS_ROWS ? 1 : IS_ROWS / k, D = m->in_dim, R = C * k; /* images, rows */
    nb_dataset sub = nb_dataset_view(ds, 0, count);
    nb_batcher bt;
    if (nb_batcher_init(&bt, &sub, C, 0, seed)) return NB_ERR_NOMEM;
    nb_tape *tp = nb_tape_new();
    double *z = malloc((size_t)(R * d) * sizeof *z), *mu = malloc((size_t)(C * d) * sizeof *mu);
    double *lv = malloc((size_t)(C * d) * sizeof *lv), *nll = malloc((size_t)R * sizeof *nll);
    double *prec = malloc((size_t)(C * d) * sizeof *prec);
    nb_status st = tp && z && mu && lv && nll && prec ? NB_OK : nb_error(NB_ERR_NOMEM, "log-likelihood: out of memory");
    nb_rng base = nb_rng_seed(seed);
    double s = 0, s2 = 0;
    int64_t n = 0;
    const int64_t *idx;
    for (int64_t b, step = 0; !st && (b = nb_batcher_next(&bt, &idx)) > 0; step++) {
        /* b images, k samples each, laid out sample-major: row j·b + i is sample j of image i */
        nb_rng rng = nb_rng_fork(&base, (uint64_t)step);
        nb_tape_reset(tp);
        nb_tape_set_grad(tp, 0);
        nb_tensor *x, *y, *mu_t, *lv_t;
        if ((st = nb_model_batch(tp, m, &sub, idx, b, bin, &rng, &x, &y))) break;
        if (m->cfg.kind == NB_VAMP || m->cfg.kind == NB_HVAE) { /* their own priors: log w on the tape */
            nb_tensor *lw = m->cfg.kind == NB_VAMP ? nb__vamp_log_weights(tp, m, x, k, &rng)
                                                   : nb__hvae_log_weights(tp, m, x, k, &rng);
            if (!lw) {
                st = tape_error(tp, "log-likelihood");
                break;
            }
            copy_doubles(lw, nll); /* (k, b), row j·b + i */
            accumulate(nll, b, k, &s, &s2, &n);
            continue;
        }
        nb_model_encode(tp, m, x, y, &mu_t, &lv_t);
        const int64_t rows = b * k;
        nb_tensor *eps = nb_randn(tp, &rng, x->dtype, NB_SHAPE(k, b, d));
        nb_tensor *sd = nb_exp(tp, nb_scale(tp, nb_reshape(tp, lv_t, NB_SHAPE(1, b, d)), 0.5));
        nb_tensor *zt = nb_add(tp, nb_reshape(tp, mu_t, NB_SHAPE(1, b, d)), nb_mul(tp, sd, eps));
        zt = nb_reshape(tp, zt, NB_SHAPE(rows, d));
        /* the (CVAE) condition repeated k times; the target is too, unless the decoder is a
         * Bernoulli one, whose NLL reads each image once for its k samples */
        nb_tensor *yk = y ? nb_reshape(tp, nb_contiguous(tp, nb_expand(tp, nb_reshape(tp, y, NB_SHAPE(1, b, nb_dim(y, 1))),
                                                                     NB_SHAPE(k, b, nb_dim(y, 1)))),
                                       NB_SHAPE(rows, nb_dim(y, 1)))
                          : NULL;
        const nb_linear_layer *last = NULL;
        nb_tensor *trunk = m->cfg.decoder == NB_DEC_BERNOULLI ? nb__decode_trunk(tp, m, zt, yk, &last) : NULL;
        int fused = 0;
        if (trunk && (fused = nb__bernoulli_nll(last, trunk, x, b, nll, &st)) && st) {
            st = nb_error(st, "log-likelihood: the decoder's last layer failed (%s)", nb_status_str(st));
            break;
        }
        nb_tensor *out = fused ? NULL : last ? nb_linear_fwd(tp, last, trunk) : nb_model_decode(tp, m, zt, yk);
        nb_tensor *nll_t = fused ? NULL : m->cfg.decoder == NB_DEC_BERNOULLI ? shared_target_bce(tp, out, x, b, k) : NULL;
        if (!nll_t && out) {
            int64_t xs[NB_MAX_DIMS];
            const int nd = nb_model_input_shape(m, rows, xs);
            nb_tensor *x1 = nb_reshape(tp, x, NB_SHAPE(1, b, D));
            nll_t = nb_model_nll(tp, m, out, nb_reshape(tp, nb_contiguous(tp, nb_expand(tp, x1, NB_SHAPE(k, b, D))), nd, xs));
        }
        if (!nll_t && !fused) {
            st = tape_error(tp, "log-likelihood");
            break;
        }
        copy_doubles(zt, z), copy_doubles(mu_t, mu), copy_doubles(lv_t, lv);
        if (!fused) copy_doubles(nll_t, nll);
        /* log w = log p(x|z) + log p(z) - log q(z|x), and log (1/k) Σ_j w_j per image, in double;
         * the posterior's precisions once per image, not per sample */
        for (int64_t i = 0; i < b * d; i++) prec[i] = exp(-lv[i]);
#pragma omp parallel for schedule(static) if (rows >= 4096)
        for (int64_t i = 0; i < b; i++) {
            for (int j = 0; j < k; j++) {
                const int64_t r = (int64_t)j * b + i;
                double *w = &nll[r]; /* overwritten by the log-weight */
                *w = -*w + log_normal(z + r * d, NULL, NULL, NULL, d) -
                     log_normal(z + r * d, mu + i * d, lv + i * d, prec + i * d, d);
            }
        }
        accumulate(nll, b, k, &s, &s2, &n);
    }
    if (!st) {
        *mean = s / (double)n;
        *stderr_ = n > 1 ? sqrt(fmax(0, s2 / (double)n - *mean * *mean) / (double)(n - 1)) : 0;
    }
    free(z), free(mu), free(lv), free(nll), free(prec);
    nb_tape_free(tp);
    nb_batcher_free(&bt);
    return st;
}
