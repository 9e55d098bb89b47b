/* nn/linear.c — y = x·wᵀ + b as one op on the GEMM, and the Linear layer. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/dnnl_mm.h"
#include "nn/internal.h"
#include "tensor/error.h"

/* bf16 precision: x and w rounded once in the forward, kept for the backward's two products */
typedef struct lin_bf16 {
    uint16_t *x, *w;
} lin_bf16;

static int use_bf16(nb_tape *tp, const nb_tensor *y)
{
    return y->dtype == NB_F32 && nb_tape_precision(tp) == NB_PREC_BF16;
}

/* bf16 roundings of this step's activations, by the f32 tensor they round: an encoder's two
 * heads read one hidden layer, and a fused ReLU rounds its output as it writes it. An entry
 * holds for its tensor's step only (gen), so a later step's tensor at the same address is not
 * taken for it; parameters (gen 0) change between steps and are rounded at each use. */
enum { MEMO_N = 4 };
typedef struct bf16_memo {
    struct {
        const void *src;
        int64_t n;
        uint64_t gen;
        uint16_t *h;
    } e[MEMO_N];
    int next;
} bf16_memo;

/* NULL when it cannot be had: every reader then rounds for itself (a failed cache add is the
 * tape's error) */
static bf16_memo *memo_of(nb_tape *tp)
{
    static const char key[] = "nb_linear bf16 roundings";
    bf16_memo *m = nb_tape_cache_find(tp, key, sizeof key);
    if (!m && (m = calloc(1, sizeof *m)) && nb_tape_cache_add(tp, key, sizeof key, m, free)) m = NULL;
    return m;
}

static void memo_put(bf16_memo *m, const nb_tensor *t, uint16_t *h)
{
    if (!m || !t->gen) return;
    m->e[m->next].src = t->data, m->e[m->next].n = nb_numel(t), m->e[m->next].gen = t->gen, m->e[m->next].h = h;
    m->next = (m->next + 1) % MEMO_N;
}

static uint16_t *memo_get(const bf16_memo *m, const nb_tensor *t)
{
    for (int i = 0; m && t->gen && i < MEMO_N; i++)
        if (m->e[i].gen == t->gen && m->e[i].src == t->data && m->e[i].n == nb_numel(t)) return m->e[i].h;
    return NULL;
}

/* t rounded, in the step's arena: the backward's products read it too */
static uint16_t *to_bf16(nb_tape *tp, const nb_tensor *t)
{
    uint16_t *h = nb_op_alloc(tp, (size_t)nb_numel(t) * sizeof(uint16_t));
    if (h) nb__to_bf16(t->data, h, nb_numel(t));
    return h;
}

/* Rows [m0, m0 + rows) of y = x·wᵀ + b, then the fused ReLU: the bias copied into y first and
 * the GEMM adding onto it (beta = 1), the ReLU in place, on the GEMM's output while it is in
 * cache; not oneDNN's post-op, whose ReLU turns NaN into 0 and would hide a broken weight from
 * the NaN guard. */
static nb_status linear_rows(nb_tensor *y, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b,
                             int relu, int64_t m0, int64_t rows)
{
    const int64_t O = y->shape[1], I = x->shape[1];
    const size_t es = nb_dtype_size(y->dtype), row = (size_t)O * es;
    char *yd = (char *)y->data + (size_t)m0 * row;
    if (b)
        for (int64_t m = 0; m < rows; m++) memcpy(yd + (size_t)m * row, b->data, row);
    nb_status st = nb_gemm(y->dtype, 0, 1, rows, O, I, 1.0, (const char *)x->data + (size_t)(m0 * I) * es, I,
                           w->data, I, b ? 1.0 : 0.0, yd, O);
    if (!st && relu) {
        nb_tensor part;
        nb_tensor_wrap(&part, y->dtype, 2, (const int64_t[]){rows, O}, yd);
        nb_ew(NB_EW_RELU, &part, &part, NULL, NULL, 0, 0);
    }
    return st;
}

/* Output rows per block when a Linear's output is large (evaluation decodes 16k rows at once):
 * a block's bias, product and ReLU stay in L2 instead of making three passes over memory, and
 * the blocks run on the threads, each GEMM on one. Training's 128-row batches are one block. */
enum { LINEAR_BLOCK_BYTES = 1 << 19, LINEAR_BLOCK_MIN_ROWS = 128 };

/* On several threads a training batch's Linear is split by us, not by the GEMM: each thread takes
 * its share of the rows (forward, dX, the ReLU mask) or of the output units (dW, the bias
 * gradient) and runs its GEMM alone, with the bias, ReLU and mask passes on its own rows, in its
 * own cache. dnnl_sgemm splitting a 128-row product over 2 threads ran the forward 13-17% and dX
 * 7% slower than two 64-row halves side by side (Zen 5), and left the passes around it serial.
 * Only for weights that stay near a core's cache: every thread reads all of them, where the
 * GEMM's own split gives each half, and with a 2000 x 784 layer (6.3 MB) the 512-row step ran 3%
 * slower split. Each share's rows or units, and so its bits, do not depend on which thread takes
 * it. */
enum { SPLIT_MIN_ROWS = 32, SPLIT_MAX_WEIGHT_BYTES = 2 << 20 };

static int split_threads(int64_t M, const nb_tensor *w)
{
    const int T = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int small = (size_t)nb_numel(w) * nb_dtype_size(w->dtype) <= SPLIT_MAX_WEIGHT_BYTES;
    return T > 1 && small && M >= (int64_t)T * SPLIT_MIN_ROWS ? T : 1;
}

static void share(int64_t n, int t, int T, int64_t *lo, int64_t *hi)
{
    *lo = n * t / T, *hi = n * (t + 1) / T;
}

/* x (M, in), w (out, in), b (out) or absent, all contiguous; y (M, out). In bf16, the matmul
 * primitive fuses the bias. */
static nb_status fwd_linear(nb_tape *tp, nb_node *n)
{
    const nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    nb_tensor *y = n->out;
    const int64_t M = y->shape[0], O = y->shape[1], I = x->shape[1];
    const int relu = n->op == &nb__op_linear_relu;
    nb_status st;
    if (use_bf16(tp, y)) {
        lin_bf16 *h = nb_op_alloc(tp, sizeof *h);
        bf16_memo *m = memo_of(tp);
        if (!h || nb_tape_status(tp)) return nb_tape_status(tp);
        if (!(h->x = memo_get(m, x))) {
            if (!(h->x = to_bf16(tp, x))) return nb_tape_status(tp);
            memo_put(m, x, h->x);
        }
        if (!(h->w = to_bf16(tp, w))) return nb_tape_status(tp);
        n->saved = h;
        st = nb__mm(tp, n->op->name, NB_MM_BF16, 0, 1, M, O, I, h->x, I, h->w, I, b ? b->data : NULL, 0, 0, y->data);
        if (!st && relu) { /* the next Linear's input, rounded while the output is in cache */
            uint16_t *yh = nb_op_alloc(tp, (size_t)(M * O) * sizeof *yh);
            if (!yh) return nb_tape_status(tp);
            nb__relu_to_bf16(y->data, yh, M * O);
            memo_put(m, y, yh);
        }
        return st;
    }
    /* each block's GEMM packs the weights again: worth it only for blocks of many rows (a
     * 2000-wide layer's 65-row blocks made the 512-row step's forward 42 -> 58 ms), each with an
     * output no smaller than a quarter of the weights (the 2000 -> 784 layer's 167-row blocks
     * still cost that step 3 ms) */
    const int64_t blk = LINEAR_BLOCK_BYTES / (O * (int64_t)nb_dtype_size(y->dtype));
    if (blk < LINEAR_BLOCK_MIN_ROWS || 4 * blk < I || M <= 2 * blk) {
        const int T = split_threads(M, w);
        if (T == 1) return linear_rows(y, x, w, b, relu, 0, M);
        st = NB_OK;
#pragma omp parallel num_threads(T) reduction(max : st)
        {
            int64_t m0, m1;
            share(M, omp_get_thread_num(), T, &m0, &m1);
            st = linear_rows(y, x, w, b, relu, m0, m1 - m0);
        }
        return st;
    }
    const int64_t nblk = (M + blk - 1) / blk;
    st = NB_OK;
#pragma omp parallel for schedule(static) reduction(max : st)
    for (int64_t k = 0; k < nblk; k++) {
        const int64_t m0 = k * blk;
        const nb_status s = linear_rows(y, x, w, b, relu, m0, M - m0 < blk ? M - m0 : blk);
        st = s > st ? s : st;
    }
    return st;
}

/* Input i's gradient for a GEMM over an inner size k: *acc 0 when the GEMM is to write it (the
 * gradient's first use: neither zero-filled nor read), 1 when it is to add into it. */
static nb_tensor *grad_for_gemm(nb_tape *tp, const nb_node *n, int i, int64_t k, int *acc)
{
    int fresh = 0;
    nb_tensor *g = k > 0 ? nb_op_grad_fresh(tp, n, i, &fresh) : nb_op_grad(tp, n, i);
    *acc = !fresh;
    return g;
}

/* bwd_linear on T threads: each masks its rows of gy (when masked is given) and makes their
 * rows of gx; then, all rows masked, each makes its output units' rows of gw and gb. */
static nb_status bwd_linear_split(nb_tape *tp, int T, const nb_tensor *x, const nb_tensor *w, nb_tensor *masked,
                                  const nb_tensor *gy, const nb_tensor *out, nb_tensor *gx, int ax, nb_tensor *gw,
                                  int aw, nb_tensor *gb)
{
    const int64_t M = gy->shape[0], O = gy->shape[1], I = x->shape[1];
    const size_t es = nb_dtype_size(gy->dtype);
    const nb_tensor *g = masked ? masked : gy;
    nb_status st = NB_OK;
#pragma omp parallel num_threads(T) reduction(max : st)
    {
        const int t = omp_get_thread_num();
        nb_status mine = NB_OK;
        int64_t lo, hi;
        share(M, t, T, &lo, &hi);
        if (masked) {
            nb_tensor dst, src, o;
            const int64_t shape[2] = {hi - lo, O};
            const size_t off = (size_t)(lo * O) * es;
            nb_tensor_wrap(&dst, g->dtype, 2, shape, (char *)masked->data + off);
            nb_tensor_wrap(&src, g->dtype, 2, shape, (char *)gy->data + off);
            nb_tensor_wrap(&o, g->dtype, 2, shape, (char *)out->data + off);
            nb_ew(NB_EW_RELU_MASK, &dst, &src, &o, NULL, 0, 0);
        }
        if (gx)
            mine = nb_gemm(gx->dtype, 0, 0, hi - lo, I, O, 1.0, (const char *)g->data + (size_t)(lo * O) * es, O,
                           w->data, I, ax, (char *)gx->data + (size_t)(lo * I) * es, I);
#pragma omp barrier
        share(O, t, T, &lo, &hi);
        if (gw && !mine)
            mine = nb_gemm(gw->dtype, 1, 0, hi - lo, I, M, 1.0, (const char *)g->data + (size_t)lo * es, O, x->data, I,
                           aw, (char *)gw->data + (size_t)(lo * I) * es, I);
        if (gb && hi > lo) { /* the columns [lo, hi) of gy summed into gb[lo, hi) */
            nb_tensor row, cols;
            nb_tensor_wrap(&row, gb->dtype, 2, (const int64_t[]){1, hi - lo}, (char *)gb->data + (size_t)lo * es);
            nb_tensor_wrap(&cols, g->dtype, 2, (const int64_t[]){M, hi - lo}, (char *)g->data + (size_t)lo * es);
            cols.stride[0] = O;
            nb_ew_reduce(NB_RED_SUM, &row, &cols, 1);
        }
        st = mine;
    }
    if (st) return nb_tape_fail(tp, st, "nb_linear: backward GEMM failed (%s)", nb_status_str(st));
    return NB_OK;
}

/* gx += gy·w, gw += gyᵀ·x, gb += Σ_rows gy, with gy first masked where a fused ReLU was off */
static nb_status bwd_linear(nb_tape *tp, nb_node *n)
{
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL, *gy = n->out->grad, masked;
    const int relu = n->op == &nb__op_linear_relu;
    if (n->saved) { /* bf16: dY masked, rounded once for both products and summed for the bias in one pass */
        const lin_bf16 *h = n->saved;
        const int64_t M = gy->shape[0], O = gy->shape[1], I = x->shape[1];
        int ax, aw;
        nb_tensor *gx = grad_for_gemm(tp, n, 0, O, &ax), *gw = grad_for_gemm(tp, n, 1, M, &aw);
        nb_tensor *gb = b ? nb_op_grad(tp, n, 2) : NULL;
        uint16_t *g = nb_op_scratch(tp, (size_t)(M * O) * sizeof *g);
        if (!g || nb_tape_status(tp)) return nb_tape_status(tp);
        nb__grad_to_bf16(M, O, gy->data, relu ? n->out->data : NULL, g, gb ? gb->data : NULL);
        nb_status st = NB_OK;
        if (gx) st = nb__mm(tp, "linear", NB_MM_BF16, 0, 0, M, I, O, g, O, h->w, I, NULL, ax, 0, gx->data);
        if (gw && !st) st = nb__mm(tp, "linear", NB_MM_BF16, 1, 0, O, I, M, g, O, h->x, I, NULL, aw, 0, gw->data);
        return st;
    }
    if (relu) {
        void *buf = nb_op_scratch(tp, (size_t)nb_numel(gy) * nb_dtype_size(gy->dtype));
        if (!buf) return nb_tape_status(tp);
        nb_tensor_wrap(&masked, gy->dtype, gy->ndim, gy->shape, buf);
    }
    const int64_t M = gy->shape[0], O = gy->shape[1], I = x->shape[1];
    int ax, aw;
    nb_tensor *gx = grad_for_gemm(tp, n, 0, O, &ax), *gw = grad_for_gemm(tp, n, 1, M, &aw);
    nb_tensor *gb = b ? nb_op_grad(tp, n, 2) : NULL;
    if (nb_tape_status(tp)) return nb_tape_status(tp);
    const int T = split_threads(M, w);
    if (T > 1) return bwd_linear_split(tp, T, x, w, relu ? &masked : NULL, gy, n->out, gx, ax, gw, aw, gb);
    if (relu) {
        nb_ew(NB_EW_RELU_MASK, &masked, gy, n->out, NULL, 0, 0);
        gy = &masked;
    }
    nb_status st = NB_OK;
    if (gx) st = nb_gemm(gx->dtype, 0, 0, M, I, O, 1.0, gy->data, O, w->data, I, ax, gx->data, I);
    if (gw && !st) st = nb_gemm(gw->dtype, 1, 0, O, I, M, 1.0, gy->data, O, x->data, I, aw, gw->data, I);
    if (st) return nb_tape_fail(tp, st, "nb_linear: backward GEMM failed (%s)", nb_status_str(st));
    if (gb) {
        nb_tensor row = *gb;
        row.ndim = 2, row.shape[0] = 1, row.shape[1] = O, row.stride[0] = O, row.stride[1] = 1;
        nb_ew_reduce(NB_RED_SUM, &row, gy, 1);
    }
    return NB_OK;
}

static nb_status shape_linear(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = 2;
    shape[0] = n->in[0]->shape[0];
    shape[1] = n->in[1]->shape[0];
    return NB_OK;
}

const nb_op_def nb__op_linear = {.name = "linear", .shape = shape_linear, .forward = fwd_linear,
                                 .backward = bwd_linear};
const nb_op_def nb__op_linear_relu = {.name = "linear_relu", .shape = shape_linear, .forward = fwd_linear,
                                      .backward = bwd_linear};

static nb_tensor *linear(nb_tape *tp, const nb_op_def *op, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    nb_tensor *in[3] = {x, w, b};
    if (!nb_op_check(tp, op->name, b ? 3 : 2, in)) return NULL;
    const int ok = x->ndim >= 1 && w->ndim == 2 && nb_dim(x, -1) == w->shape[1] &&
                   (!b || (b->ndim == 1 && b->shape[0] == w->shape[0]));
    if (!ok) {
        nb_tape_fail(tp, NB_ERR_SHAPE, "nb_%s: input %s, weight %s, bias %s: want (..., in), "
                 "(out, in), (out)", op->name, NB_SHP(x), NB_SHP(w), b ? NB_SHP(b) : "none");
        return NULL;
    }
    const int64_t I = w->shape[1], O = w->shape[0];
    /* any leading dims fold into the GEMM's rows */
    nb_tensor *x2 = nb_contiguous(tp, x->ndim == 2 ? x : nb_reshape(tp, x, NB_SHAPE(-1, I)));
    if (!(w = nb_contiguous(tp, w)) || !x2) return NULL;
    nb_tensor *y = nb_op_apply(tp, op, &(nb_node){.nin = b ? 3 : 2, .in = {x2, w, b}});
    if (!y || x->ndim == 2) return y;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = O;
    return nb_reshape(tp, y, x->ndim, shape);
}

nb_tensor *nb_linear(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    return linear(tp, &nb__op_linear, x, w, b);
}

nb_tensor *nb_linear_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    return linear(tp, &nb__op_linear_relu, x, w, b);
}

static nb_tensor *named_param(nb_params *ps, const char *name, const char *part, int ndim,
                              const int64_t *shape)
{
    char full[300];
    snprintf(full, sizeof full, "%s.%s", name, part);
    return nb_param(ps, full, ndim, shape);
}

nb_status nb_linear_init(nb_linear_layer *l, nb_params *ps, const char *name, int64_t in,
                         int64_t out, int bias, nb_rng *rng)
{
    memset(l, 0, sizeof *l);
    l->in = in, l->out = out;
    if (!ps || !name) return nb_error(NB_ERR_ARG, "nb_linear_init: the store or the name is NULL");
    if (in < 1 || out < 1 || in > (1 << 24) || out > (1 << 24))
        return nb_error(NB_ERR_ARG, "nb_linear_init: %s: sizes %lld -> %lld (each 1 to 2^24)", name,
                        (long long)in, (long long)out);
    l->weight = named_param(ps, name, "weight", NB_SHAPE(out, in));
    if (bias) l->bias = named_param(ps, name, "bias", NB_SHAPE(out));
    if (!l->weight || (bias && !l->bias)) return NB_ERR_ARG; /* nb_params_error says why */
    nb_init_kaiming_uniform(l->weight, rng, sqrt(5.0));
    if (l->bias) nb_init_uniform(l->bias, rng, -1 / sqrt((double)in), 1 / sqrt((double)in));
    return NB_OK;
}

nb_tensor *nb_linear_fwd(nb_tape *tp, const nb_linear_layer *l, nb_tensor *x)
{
    return nb_linear(tp, x, l->weight, l->bias);
}

nb_tensor *nb_linear_relu_fwd(nb_tape *tp, const nb_linear_layer *l, nb_tensor *x)
{
    return nb_linear_relu(tp, x, l->weight, l->bias);
}

static const nb_op_def *const nn_ops[] = {
#define NB_OP(name) &nb__op_##name,
#include "nn/ops.def"
#undef NB_OP
};

const nb_op_def *const *nb_nn_ops(int *n)
{
    if (n) *n = (int)(sizeof nn_ops / sizeof nn_ops[0]);
    return nn_ops;
}
