/* nn/loss.c — BCE with logits, MSE, Gaussian NLL and analytic KL, each one fused op.
 *
 * Every loss computes its per-element terms with one kernel, sums them over every dim but the
 * batch and reduces over the batch (n->s[0] holds the batch scale: 1, or 1/B for the mean).
 * Backward reads the upstream gradient as a view broadcast to the inputs' shape (stride 0 over
 * the summed dims) and adds each input's derivative with one kernel.
 */
#include <omp.h>
#include <string.h>

#include "nn/internal.h"

/* ---- shared: reduction of the terms, and the upstream gradient seen per element ---------- */

static void reduce_terms(nb_node *n, const nb_tensor *terms)
{
    nb_tensor y = *n->out; /* () or (B), seen with the terms' ndim */
    y.ndim = terms->ndim;
    for (int d = 0; d < terms->ndim; d++) {
        y.shape[d] = d == 0 && n->out->ndim == 1 ? terms->shape[0] : 1;
        y.stride[d] = d == 0 ? 1 : 0;
    }
    nb_ew_reduce(NB_RED_SUM, &y, terms, 0);
    if (n->s[0] != 1) nb_ew(NB_EW_SCALE, n->out, n->out, NULL, NULL, n->s[0], 0);
}

static nb_tensor upstream(const nb_node *n, const nb_tensor *like)
{
    nb_tensor g = *n->out->grad;
    g.ndim = like->ndim;
    for (int d = 0; d < like->ndim; d++) {
        g.shape[d] = like->shape[d];
        g.stride[d] = d == 0 && n->out->ndim == 1 ? 1 : 0;
    }
    return g;
}

static nb_tensor *terms_buffer(nb_tape *tp, const nb_tensor *like)
{
    return nb_empty(tp, like->dtype, like->ndim, like->shape);
}

/* The output: a scalar, or one value per example (B) for NB_REDUCE_NONE (n->i[0]). */
static nb_status shape_loss(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = n->i[0] == NB_REDUCE_NONE;
    shape[0] = n->in[0]->ndim ? n->in[0]->shape[0] : 1;
    return NB_OK;
}

/* Checks shapes, broadcasts in[k] for k >= nsame to in[0]'s shape, and records the op. */
static nb_tensor *loss_op(nb_tape *tp, const nb_op_def *op, int nin, nb_tensor **in, int nsame,
                          nb_reduce r)
{
    const char *name = op->name;
    if (!nb_op_check(tp, name, nin, in)) return NULL;
    const nb_tensor *x = in[0];
    for (int k = 1; k < nsame; k++)
        if (!nb_same_shape(in[k], x)) {
            nb_tape_fail(tp, NB_ERR_SHAPE, "nb_%s: shapes %s and %s differ", name, NB_SHP(x),
                         NB_SHP(in[k]));
            return NULL;
        }
    for (int k = nsame; k < nin; k++)
        if (!(in[k] = nb_expand(tp, in[k], x->ndim, x->shape))) return NULL;
    if (r != NB_REDUCE_MEAN && r != NB_REDUCE_SUM && r != NB_REDUCE_NONE) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_%s: unknown reduction %d", name, (int)r);
        return NULL;
    }
    if (r == NB_REDUCE_NONE && x->ndim == 0) {
        nb_tape_fail(tp, NB_ERR_SHAPE, "nb_%s: per-example values need a batch dim", name);
        return NULL;
    }
    const int64_t batch = x->ndim ? x->shape[0] : 1;
    nb_node n = {.nin = nin, .in = {in[0], in[1], nin > 2 ? in[2] : NULL}, .i = {r},
                 .s = {r == NB_REDUCE_MEAN && batch > 0 ? 1.0 / (double)batch : 1.0}};
    return nb_op_apply(tp, op, &n);
}

/* BCE per example when the logits' gradient will be asked: each row's terms summed as they are
 * made, and σ(l) - t kept for the backward, both from one exp (nb_ew_rowsum_bce; BCE forward
 * and backward took 0.21 ms of a 1-thread MLP VAE step, 0.11 so). Returns 0 when the layout does
 * not suit (the caller takes the general path), else 1 with *st set. */
static int bce_rows_with_grad(nb_tape *tp, nb_node *n, nb_status *st)
{
    const nb_tensor *l = n->in[0], *t = n->in[1];
    if (n->out->ndim != 1 || !nb_op_needs_grad(tp, n, 0) || !nb_ew_rowsum_ok(NB_EW_BCE, n->out, l, t)) return 0;
    nb_tensor *d = terms_buffer(tp, l);
    if (!d) return *st = nb_tape_status(tp), 1;
    nb_ew_rowsum_bce(n->out, d->data, l, t);
    n->saved = d;
    *st = NB_OK;
    return 1;
}

/* Its backward: each row of the logits' gradient is the kept σ(l) - t times the row's upstream
 * gradient, written on first use (a broadcast operand through nb_ew took 0.09 ms a step). */
enum { BCE_PAR_MIN = 1 << 15 };

static void bce_rows_grad(nb_tape *tp, nb_node *n, double s)
{
    const nb_tensor *d = n->saved, *gy = n->out->grad;
    int fresh;
    nb_tensor *g0 = nb_op_grad_fresh(tp, n, 0, &fresh);
    if (!g0) return;
    const size_t es = nb_dtype_size(d->dtype);
    const int64_t rows = d->shape[0], inner = rows ? nb_numel(d) / rows : 0;
    const nb_ew_fn f = nb_kernels(d->dtype)->ew[fresh ? NB_EW_SCALE : NB_EW_ACC_SCALE];
    const size_t row = (size_t)inner * es;
#pragma omp parallel for schedule(static) if (rows * inner >= BCE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const double sc = s * (d->dtype == NB_F64 ? ((const double *)gy->data)[r] : ((const float *)gy->data)[r]);
        f(inner, (char *)g0->data + r * row, (const char *)d->data + r * row, NULL, NULL, &sc);
    }
}

/* Each loss's descriptor data: the kernel of its per-element terms. */
static nb_status fwd_loss(nb_tape *tp, nb_node *n)
{
    const nb_tensor *a = n->in[0], *b = n->in[1];
    const nb_ew_id kernel = *(const nb_ew_id *)n->op->data;
    nb_status st;
    if (kernel == NB_EW_BCE && bce_rows_with_grad(tp, n, &st)) return st;
    if (kernel == NB_EW_GNLL) { /* terms in x - mean, kept for backward */
        nb_tensor *d = terms_buffer(tp, n->in[0]);
        if (!d) return nb_tape_status(tp);
        nb_ew(NB_EW_SUB, d, n->in[0], n->in[1], NULL, 0, 0);
        n->saved = d;
        a = d, b = n->in[2];
    }
    /* one value per example: the terms summed row by row as they are made, never stored */
    if (n->out->ndim == 1 && nb_ew_rowsum(kernel, n->out, a, b)) return NB_OK;
    nb_tensor *terms = terms_buffer(tp, n->in[0]);
    if (!terms) return nb_tape_status(tp);
    nb_ew(kernel, terms, a, b, NULL, 0, 0);
    reduce_terms(n, terms);
    return NB_OK;
}

static nb_status bwd_loss(nb_tape *tp, nb_node *n)
{
    const double s = n->s[0];
    const nb_ew_id kernel = *(const nb_ew_id *)n->op->data;
    nb_tensor g = upstream(n, n->in[0]);
    const int kept = kernel == NB_EW_BCE && n->saved; /* σ(l) - t, by the forward */
    if (kept) bce_rows_grad(tp, n, s);
    nb_tensor *g0 = kept ? NULL : nb_op_grad(tp, n, 0), *g1 = nb_op_grad(tp, n, 1);
    switch (kernel) {
    case NB_EW_BCE: /* d/dl = σ(l) - t (kept by the forward: above), d/dt = -l */
        if (g0) nb_ew(NB_EW_ACC_BCEB, g0, &g, n->in[0], n->in[1], s, 0);
        if (g1) nb_ew(NB_EW_ACC_SMUL, g1, &g, n->in[0], NULL, -s, 0);
        break;
    case NB_EW_SQDIFF: /* ±2(p - t) */
        if (g0) nb_ew(NB_EW_ACC_SQDIFFB, g0, &g, n->in[0], n->in[1], s, 0);
        if (g1) nb_ew(NB_EW_ACC_SQDIFFB, g1, &g, n->in[0], n->in[1], -s, 0);
        break;
    case NB_EW_GNLL: { /* ±(x - m)·e^-lv, and ½(1 - (x - m)²·e^-lv) for lv */
        const nb_tensor *d = n->saved, *lv = n->in[2];
        nb_tensor *g2 = nb_op_grad(tp, n, 2);
        if (g0) nb_ew(NB_EW_ACC_GNLL_D, g0, &g, d, lv, s, 0);
        if (g1) nb_ew(NB_EW_ACC_GNLL_D, g1, &g, d, lv, -s, 0);
        if (g2) nb_ew(NB_EW_ACC_GNLL_LV, g2, &g, d, lv, s, 0);
        break;
    }
    case NB_EW_KL: /* mu, and ½(e^lv - 1) */
        if (g0) nb_ew(NB_EW_ACC_SMUL, g0, &g, n->in[0], NULL, s, 0);
        if (g1) nb_ew(NB_EW_ACC_KL_LV, g1, &g, n->in[1], NULL, s, 0);
        break;
    default: break;
    }
    return NB_OK;
}

#define LOSS(name_, kernel_)                                                                 \
    const nb_op_def nb__op_##name_ = {.name = #name_, .shape = shape_loss, .forward = fwd_loss, \
                                      .backward = bwd_loss,                                  \
                                      .data = &(const nb_ew_id){NB_EW_##kernel_}};
LOSS(bce_logits, BCE)
LOSS(mse, SQDIFF)
LOSS(gaussian_nll, GNLL)
LOSS(kl_normal, KL)

nb_tensor *nb_bce_logits(nb_tape *tp, nb_tensor *logits, nb_tensor *target, nb_reduce r)
{
    return loss_op(tp, &nb__op_bce_logits, 2, (nb_tensor *[]){logits, target}, 2, r);
}

nb_tensor *nb_mse(nb_tape *tp, nb_tensor *pred, nb_tensor *target, nb_reduce r)
{
    return loss_op(tp, &nb__op_mse, 2, (nb_tensor *[]){pred, target}, 2, r);
}

nb_tensor *nb_gaussian_nll(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar,
                           nb_reduce r)
{
    return loss_op(tp, &nb__op_gaussian_nll, 3, (nb_tensor *[]){x, mean, logvar}, 2, r);
}

nb_tensor *nb_kl_normal(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, nb_reduce r)
{
    return loss_op(tp, &nb__op_kl_normal, 2, (nb_tensor *[]){mu, logvar}, 2, r);
}

/* ---- the Gaussian log-density, elementwise ------------------------------------------------- */
/* y = log N(x; mean, e^logvar) = -½(log 2π + logvar + (x - mean)²·e^-logvar), no reduction.
 * The inputs arrive broadcast to one shape; d = x - mean is kept for backward. */

static nb_status fwd_logpdf(nb_tape *tp, nb_node *n)
{
    nb_tensor *d = terms_buffer(tp, n->out);
    if (!d) return nb_tape_status(tp);
    nb_ew(NB_EW_SUB, d, n->in[0], n->in[1], NULL, 0, 0);
    nb_ew(NB_EW_LOGPDF, n->out, d, n->in[2], NULL, 0, 0);
    n->saved = d;
    return NB_OK;
}

/* the negated derivatives of the NLL's terms: ∓(x - m)·e^-lv, and -½(1 - (x - m)²·e^-lv) */
static nb_status bwd_logpdf(nb_tape *tp, nb_node *n)
{
    const nb_tensor *d = n->saved, *lv = n->in[2], *g = n->out->grad;
    nb_tensor *gx = nb_op_grad(tp, n, 0), *gm = nb_op_grad(tp, n, 1), *glv = nb_op_grad(tp, n, 2);
    if (gx) nb_ew(NB_EW_ACC_GNLL_D, gx, g, d, lv, -1, 0);
    if (gm) nb_ew(NB_EW_ACC_GNLL_D, gm, g, d, lv, 1, 0);
    if (glv) nb_ew(NB_EW_ACC_GNLL_LV, glv, g, d, lv, -1, 0);
    return NB_OK;
}

const nb_op_def nb__op_normal_log_prob = {.name = "normal_log_prob", .flags = NB_OP_BROADCAST,
                                          .forward = fwd_logpdf, .backward = bwd_logpdf};

nb_tensor *nb_normal_log_prob(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar)
{
    if (!nb_op_check(tp, "normal_log_prob", 1, &x)) return NULL;
    if (!mean) mean = nb_scalar(tp, x->dtype, 0);
    if (!logvar) logvar = nb_scalar(tp, x->dtype, 0);
    return nb_op_apply(tp, &nb__op_normal_log_prob, &(nb_node){.nin = 3, .in = {x, mean, logvar}});
}

/* ---- the inverse multiquadratic kernel sum, for the MMD ------------------------------------ */
/* y = Σ_ij Σ_s c_s / (c_s + D_ij), D_ij = ‖a_i − b_j‖². Each pair's distance is summed directly
 * rather than as |a|² + |b|² − 2 a·bᵀ: no (S, N, M) intermediates, no cancellation between near
 * points. The divisions are the cost, so they run once: a forward that will be differentiated
 * keeps W_ij = ∂y/∂D_ij (N × M doubles) and ∂y/∂c, and backward makes the points' gradients from
 * W with multiplications only. f64 throughout; the loops run along a row of pairs, the other side
 * transposed, so that they vectorise. */

static nb_status shape_imq(nb_tape *tp, const nb_node *n, int *ndim, int64_t shape[NB_MAX_DIMS])
{
    (void)shape;
    const nb_tensor *a = n->in[0], *b = n->in[1], *c = n->in[2];
    char sa[64], sb[64], sc[64];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1] || c->ndim != 1 || c->shape[0] < 1)
        return nb_tape_fail(tp, NB_ERR_SHAPE, "nb_imq_kernel_sum: takes a (N, d), b (M, d) and the kernel's "
                            "constants c (S), S >= 1; got a %s, b %s, c %s", nb_shape_str(a, sa, sizeof sa),
                            nb_shape_str(b, sb, sizeof sb), nb_shape_str(c, sc, sizeof sc));
    *ndim = 0;
    return NB_OK;
}

/* t (rows × d) in f64 into dst, transposed (d × rows) when asked */
static void imq_load(const nb_tensor *t, double *dst, int transpose)
{
    const int64_t rows = nb_numel(t) / (t->ndim == 2 ? t->shape[1] : 1), d = nb_numel(t) / rows;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < d; k++) {
            const int64_t i = r * d + k;
            const double v = t->dtype == NB_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
            dst[transpose ? k * rows + r : i] = v;
        }
}

/* Row r of x (d values) against every row of y, given transposed (yT: d × C): returns the row's
 * kernel sum; with w (C doubles), w = ∂/∂D = −Σ_s c_s/(c_s + D)², and dc_s = Σ_c D/(c_s + D)².
 * D: C doubles of scratch. Built for AVX-512 and AVX2 beside the baseline, the CPU's pick made
 * at load time: the pair loops are most of a WAE step's time outside its GEMMs. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static double imq_row(const double *xr, const double *yT, int64_t C, int64_t d, const double *c, int64_t S,
                      double *w, double *dc, double *D)
{
    for (int64_t j = 0; j < C; j++) D[j] = 0;
    for (int64_t j = 0; w && j < C; j++) w[j] = 0;
    for (int64_t k = 0; k < d; k++)
        for (int64_t j = 0; j < C; j++) D[j] += (xr[k] - yT[k * C + j]) * (xr[k] - yT[k * C + j]);
    double total = 0;
    for (int64_t s = 0; s < S; s++) {
        const double cs = c[s];
        double sum = 0, dsum = 0;
        if (w) {
#pragma omp simd reduction(+ : sum, dsum)
            for (int64_t j = 0; j < C; j++) {
                const double q = 1 / (cs + D[j]);
                sum += cs * q, w[j] -= cs * q * q, dsum += D[j] * q * q;
            }
            dc[s] = dsum;
        } else {
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < C; j++) sum += cs / (cs + D[j]);
        }
        total += sum;
    }
    return total;
}

/* g (d values) += gy · ∂y/∂x_r = gy · 2 (x_r Σ_c w_c − Σ_c w_c y_c), from row r's w (C values). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void imq_grad_row(const double *xr, const double *yT, int64_t C, int64_t d, const double *w, double gy,
                         double *g)
{
    double wsum = 0;
#pragma omp simd reduction(+ : wsum)
    for (int64_t j = 0; j < C; j++) wsum += w[j];
    for (int64_t k = 0; k < d; k++) {
        double wy = 0;
#pragma omp simd reduction(+ : wy)
        for (int64_t j = 0; j < C; j++) wy += w[j] * yT[k * C + j];
        g[k] += gy * 2 * (xr[k] * wsum - wy);
    }
}

/* The threads for R rows against C: all of them when the work is worth it, else 1 */
static int imq_threads(int64_t R, int64_t C, int64_t d, int64_t S)
{
    return R * C * (d + S + 8) > (1 << 15) ? omp_get_max_threads() : 1;
}

static nb_status fwd_imq(nb_tape *tp, nb_node *n)
{
    const int64_t N = n->in[0]->shape[0], M = n->in[1]->shape[0], d = n->in[0]->shape[1], S = n->in[2]->shape[0];
    const int grad = nb_op_needs_grad(tp, n, 0) || nb_op_needs_grad(tp, n, 1) || nb_op_needs_grad(tp, n, 2);
    const int threads = imq_threads(N, M, d, S);
    /* kept: W (N × M), then each row's ∂y/∂c (N × S); scratch: the inputs, each row's sum and D */
    double *W = grad ? nb_op_alloc(tp, (size_t)(N * M + N * S) * sizeof(double)) : NULL;
    double *a = nb_op_scratch(tp, (size_t)(N * d + M * d + S + N + M * threads) * sizeof(double));
    if (!a || (grad && !W)) return nb_tape_status(tp);
    double *bT = a + N * d, *c = bT + M * d, *rowsum = c + S, *work = rowsum + N;
    imq_load(n->in[0], a, 0), imq_load(n->in[1], bT, 1), imq_load(n->in[2], c, 0);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < N; r++)
        rowsum[r] = imq_row(a + r * d, bT, M, d, c, S, W ? W + r * M : NULL, W ? W + N * M + r * S : NULL,
                            work + M * omp_get_thread_num());
    double total = 0; /* in row order: the same sum on any number of threads */
    for (int64_t r = 0; r < N; r++) total += rowsum[r];
    nb_set(n->out, 0, total);
    n->saved = W;
    return NB_OK;
}

/* g (R × d) += gy · 2 (x_r Σ_c W_rc − Σ_c W_rc y_c) for every row r of x, yT (d × C) the other side */
static void imq_grad_rows(const double *x, int64_t R, const double *yT, int64_t C, int64_t d, const double *W,
                          double gy, double *rowg, nb_tensor *g, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < R; r++) {
        for (int64_t k = 0; k < d; k++) rowg[r * d + k] = 0;
        imq_grad_row(x + r * d, yT, C, d, W + r * C, gy, rowg + r * d);
    }
    for (int64_t i = 0; i < R * d; i++) {
        if (g->dtype == NB_F64) ((double *)g->data)[i] += rowg[i];
        else ((float *)g->data)[i] += (float)rowg[i];
    }
}

/* a's rows from W's rows, b's from its columns (Wᵀ's rows): each adds into its own rows only,
 * even when a and b are one tensor. */
static nb_status bwd_imq(nb_tape *tp, nb_node *n)
{
    const int64_t N = n->in[0]->shape[0], M = n->in[1]->shape[0], d = n->in[0]->shape[1], S = n->in[2]->shape[0];
    const double gy = nb_get(n->out->grad, 0), *W = n->saved;
    nb_tensor *ga = nb_op_grad(tp, n, 0), *gb = nb_op_grad(tp, n, 1), *gc = nb_op_grad(tp, n, 2);
    if (!ga && !gb && !gc) return nb_tape_status(tp);
    const int threads = imq_threads(N, M, d, 1);
    double *a = nb_op_scratch(tp, (size_t)(2 * (N * d + M * d) + N * M + (N > M ? N : M) * d) * sizeof(double));
    if (!a) return nb_tape_status(tp);
    double *bT = a + N * d, *b = bT + M * d, *aT = b + M * d, *WT = aT + N * d, *rowg = WT + N * M;
    imq_load(n->in[0], a, 0), imq_load(n->in[1], bT, 1), imq_load(n->in[1], b, 0), imq_load(n->in[0], aT, 1);
    if (ga) imq_grad_rows(a, N, bT, M, d, W, gy, rowg, ga, threads);
    if (gb) {
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < M; j++) WT[j * N + i] = W[i * M + j];
        imq_grad_rows(b, M, aT, N, d, WT, gy, rowg, gb, threads);
    }
    for (int64_t s = 0; gc && s < S; s++) { /* the rows' shares in row order, as the forward's sum */
        double dc = 0;
        for (int64_t r = 0; r < N; r++) dc += W[N * M + r * S + s];
        nb_set(gc, s, nb_get(gc, s) + gy * dc);
    }
    return NB_OK;
}

const nb_op_def nb__op_imq_kernel_sum = {.name = "imq_kernel_sum", .flags = NB_OP_CONTIGUOUS,
                                         .shape = shape_imq, .forward = fwd_imq, .backward = bwd_imq};

nb_tensor *nb_imq_kernel_sum(nb_tape *tp, nb_tensor *a, nb_tensor *b, nb_tensor *c)
{
    return nb_op_apply(tp, &nb__op_imq_kernel_sum, &(nb_node){.nin = 3, .in = {a, b, c}});
}

/* ---- the nearest row of a codebook, for vector quantisation -------------------------------- */
/* y_i = argmin_k ‖z_i − e_k‖², the lowest k on ties; a NaN distance wins, as in nb_argmin.
 * ‖z_i‖² is the same for every k, so a row's distances are ‖e_k‖² − 2 z_i·e_k: one GEMM writes
 * them onto the ‖e‖² rows. It runs over blocks of NEAREST_ROWS rows, each block's distances in
 * a buffer that stays in L2 while its rows are scanned: the conv VQ-VAE's 6272 × 128 distances
 * (3.2 MB) never reach memory. */
enum { NEAREST_ROWS = 256 };

static nb_status shape_nearest(nb_tape *tp, const nb_node *n, int *ndim, int64_t shape[NB_MAX_DIMS])
{
    const nb_tensor *z = n->in[0], *e = n->in[1];
    if (z->ndim != 2 || e->ndim != 2 || z->shape[1] != e->shape[1] || e->shape[0] < 1)
        return nb_tape_fail(tp, NB_ERR_SHAPE, "nb_nearest_row: takes z (N, d) and a codebook (K, d), K >= 1; "
                            "got z %s, codebook %s", NB_SHP(z), NB_SHP(e));
    if (z->dtype == NB_F32 && e->shape[0] > (1 << 24))
        return nb_tape_fail(tp, NB_ERR_SHAPE, "nb_nearest_row: %lld codes do not fit f32 indices",
                            (long long)e->shape[0]);
    *ndim = 1;
    shape[0] = z->shape[0];
    return NB_OK;
}

/* Rows [r0, r0 + NEAREST_ROWS) and none from N on, D (NEAREST_ROWS × K) their distances' buffer,
 * e2 the codes' ‖e‖² */
static nb_status nearest_block(nb_node *n, const char *e2, char *D, int64_t r0)
{
    const nb_tensor *z = n->in[0], *e = n->in[1];
    const int64_t N = z->shape[0], K = e->shape[0], d = z->shape[1];
    const int64_t rows = N - r0 < NEAREST_ROWS ? N - r0 : NEAREST_ROWS;
    const size_t es = nb_dtype_size(z->dtype);
    for (int64_t r = 0; r < rows; r++) memcpy(D + (size_t)(r * K) * es, e2, (size_t)K * es);
    const nb_status st = nb_gemm(z->dtype, 0, 1, rows, K, d, -2.0, (const char *)z->data + (size_t)(r0 * d) * es, d,
                                 e->data, d, 1.0, D, K);
    const nb_kernel_table *k = nb_kernels(z->dtype);
    for (int64_t r = 0; !st && r < rows; r++) {
        const double best = (double)k->argmin(K, D + (size_t)(r * K) * es);
        if (z->dtype == NB_F64) ((double *)n->out->data)[r0 + r] = best;
        else ((float *)n->out->data)[r0 + r] = (float)best;
    }
    return st;
}

static nb_status fwd_nearest(nb_tape *tp, nb_node *n)
{
    const nb_tensor *z = n->in[0], *e = n->in[1];
    const int64_t N = z->shape[0], K = e->shape[0], d = z->shape[1];
    const size_t es = nb_dtype_size(z->dtype);
    const int threads = N > NEAREST_ROWS && N * K * d > (1 << 16) ? omp_get_max_threads() : 1;
    char *e2 = nb_op_scratch(tp, (size_t)(K + (int64_t)threads * NEAREST_ROWS * K) * es);
    if (!e2) return nb_tape_status(tp);
    for (int64_t j = 0; j < K; j++) { /* ‖e_j‖², summed in double */
        double s = 0;
        for (int64_t c = 0; c < d; c++) s += nb_get(e, j * d + c) * nb_get(e, j * d + c);
        if (z->dtype == NB_F64) ((double *)e2)[j] = s;
        else ((float *)e2)[j] = (float)s;
    }
    char *D = e2 + (size_t)K * es;
    nb_status st = NB_OK;
    if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t r0 = 0; r0 < N; r0 += NEAREST_ROWS) {
            const nb_status mine = nearest_block(n, e2, D + (size_t)(omp_get_thread_num() * NEAREST_ROWS * K) * es, r0);
            if (mine) {
#pragma omp critical(nb_nearest)
                st = st ? st : mine;
            }
        }
    } else { /* no parallel region at all: even an if(0) one costs a team and a futex round trip */
        for (int64_t r0 = 0; r0 < N && !st; r0 += NEAREST_ROWS) st = nearest_block(n, e2, D, r0);
    }
    return st ? nb_tape_fail(tp, st, "nb_nearest_row: the distances' GEMM failed (%lld x %lld x %lld)",
                             (long long)N, (long long)K, (long long)d) : NB_OK;
}

/* no backward: indices are constants */
const nb_op_def nb__op_nearest_row = {.name = "nearest_row", .flags = NB_OP_CONTIGUOUS, .shape = shape_nearest,
                                      .forward = fwd_nearest};

nb_tensor *nb_nearest_row(nb_tape *tp, nb_tensor *z, nb_tensor *codebook)
{
    nb_tensor *in[2] = {z, codebook};
    if (!nb_op_check(tp, "nearest_row", 2, in)) return NULL;
    /* the indices get no gradient, and need none from z or the codebook */
    return nb_op_apply(tp, &nb__op_nearest_row, &(nb_node){.nin = 2, .in = {nb_detach(tp, z), nb_detach(tp, codebook)}});
}
