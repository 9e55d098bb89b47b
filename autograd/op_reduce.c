/* autograd/op_reduce.c — sum, mean and logsumexp over any axes. */
#include <math.h>

#include "autograd/tape.h"

/* n->i[0]: bitmask of reduced axes; n->i[1]: keepdim; n->s[0]: scale (1, or 1/count for mean) */

static int reduced_shape(const nb_tensor *a, uint32_t mask, int keepdim, int64_t *shape)
{
    int nd = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (!(mask >> d & 1))
            shape[nd++] = a->shape[d];
        else if (keepdim)
            shape[nd++] = 1;
    }
    return nd;
}

/* The output seen with the input's ndim: size 1 along the reduced axes. */
static nb_tensor keepdim_view(const nb_tensor *out, const nb_tensor *in, uint32_t mask)
{
    int64_t shape[NB_MAX_DIMS];
    reduced_shape(in, mask, 1, shape);
    nb_tensor v;
    nb_tensor_wrap(&v, out->dtype, in->ndim, shape, out->data);
    return v;
}

static nb_status fwd_sum(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_tensor y = keepdim_view(n->out, n->in[0], (uint32_t)n->i[0]);
    nb_ew_reduce(NB_RED_SUM, &y, n->in[0], 0);
    if (n->s[0] != 1) nb_ew(NB_EW_SCALE, n->out, n->out, NULL, NULL, n->s[0], 0);
    return NB_OK;
}

static nb_status bwd_sum(nb_tape *tp, nb_node *n)
{
    nb_tensor *gx = nb__grad(tp, n->in[0]);
    if (!gx) return NB_OK;
    nb_tensor gy = nb__unreduce(n->out->grad, n->in[0], (uint32_t)n->i[0]);
    nb_ew(NB_EW_ACC_SCALE, gx, &gy, NULL, NULL, n->s[0], 0);
    return NB_OK;
}

static nb_status reduce_shape(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = reduced_shape(n->in[0], (uint32_t)n->i[0], (int)n->i[1], shape);
    return NB_OK;
}

const nb_op_def nb__op_sum = {.name = "sum", .shape = reduce_shape, .forward = fwd_sum,
                              .backward = bwd_sum};

static nb_tensor *reduce(nb_tape *tp, const nb_op_def *op, const char *name, nb_tensor *a,
                         int naxes, const int *axes, int keepdim, int mean)
{
    if (!nb__inputs(tp, name, 1, &a)) return NULL;
    uint32_t mask;
    if (!nb__axes(tp, name, a, naxes, axes, &mask)) return NULL;
    int64_t count = 1;
    for (int d = 0; d < a->ndim; d++)
        if (mask >> d & 1) count *= a->shape[d];
    if (op == &nb__op_logsumexp && count == 0) {
        nb__fail(tp, NB_ERR_SHAPE, "nb_logsumexp: reducing an empty axis of %s", NB_SHP(a));
        return NULL;
    }
    nb_node n = {.nin = 1, .in = {a}, .i = {mask, keepdim != 0},
                 .s = {mean ? 1.0 / (double)count : 1.0}};
    return nb_op_apply(tp, op, &n);
}

nb_tensor *nb_sum(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim)
{
    return reduce(tp, &nb__op_sum, "sum", a, naxes, axes, keepdim, 0);
}

nb_tensor *nb_mean(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim)
{
    return reduce(tp, &nb__op_sum, "mean", a, naxes, axes, keepdim, 1);
}

nb_tensor *nb_sum_all(nb_tape *tp, nb_tensor *a) { return nb_sum(tp, a, 0, NULL, 0); }

/* logsumexp: y = m + log Σ exp(x - m), m the max (0 where the max is ±inf, so that rows of -inf
 * give -inf and rows holding +inf give +inf rather than NaN). */
static nb_status fwd_logsumexp(nb_tape *tp, nb_node *n)
{
    nb_tensor *x = n->in[0];
    const uint32_t mask = (uint32_t)n->i[0];
    nb_tensor y = keepdim_view(n->out, x, mask);
    nb_tensor *m = nb__tensor(tp, x->dtype, y.ndim, y.shape, 1);
    nb_tensor *e = nb__tensor(tp, x->dtype, x->ndim, x->shape, 1);
    if (!m || !e) return tp->status;
    nb_ew_reduce(NB_RED_MAX, m, x, 0);
    for (int64_t i = 0, k = nb_numel(m); i < k; i++)
        if (!isfinite(nb_get(m, i)) && !isnan(nb_get(m, i))) nb_set(m, i, 0.0);
    nb_tensor mb = nb__unreduce(m, x, mask);
    nb_ew(NB_EW_SUB, e, x, &mb, NULL, 0, 0);
    nb_ew(NB_EW_EXP, e, e, NULL, NULL, 0, 0);
    nb_ew_reduce(NB_RED_SUM, &y, e, 0);
    nb_ew(NB_EW_LOG, &y, &y, NULL, NULL, 0, 0);
    nb_ew(NB_EW_ACC, &y, m, NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status bwd_logsumexp(nb_tape *tp, nb_node *n)
{
    nb_tensor *gx = nb__grad(tp, n->in[0]);
    if (!gx) return NB_OK;
    const uint32_t mask = (uint32_t)n->i[0];
    nb_tensor gy = nb__unreduce(n->out->grad, n->in[0], mask);
    nb_tensor y = nb__unreduce(n->out, n->in[0], mask);
    nb_ew(NB_EW_ACC_MULEXP, gx, &gy, n->in[0], &y, 0, 0); /* gx += gy·softmax(x) */
    return NB_OK;
}

const nb_op_def nb__op_logsumexp = {.name = "logsumexp", .shape = reduce_shape,
                                    .forward = fwd_logsumexp, .backward = bwd_logsumexp};

nb_tensor *nb_logsumexp(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim)
{
    return reduce(tp, &nb__op_logsumexp, "logsumexp", a, naxes, axes, keepdim, 0);
}

nb_tensor *nb_mean_all(nb_tape *tp, nb_tensor *a) { return nb_mean(tp, a, 0, NULL, 0); }

/* ---- max, min: the gradient is shared equally by the elements that tie for the extreme ----- */

static nb_status fwd_extreme(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_tensor y = keepdim_view(n->out, n->in[0], (uint32_t)n->i[0]);
    nb_ew_reduce(*(const nb_red_kind *)n->op->data, &y, n->in[0], 0);
    return NB_OK;
}

static nb_status bwd_extreme(nb_tape *tp, nb_node *n)
{
    nb_tensor *gx = nb__grad(tp, n->in[0]), *x = n->in[0];
    if (!gx) return NB_OK;
    const uint32_t mask = (uint32_t)n->i[0];
    nb_tensor y = nb__unreduce(n->out, x, mask), gy = nb__unreduce(n->out->grad, x, mask);
    nb_tensor cv = keepdim_view(n->out, x, mask);
    nb_tensor *hit = nb__tensor(tp, x->dtype, x->ndim, x->shape, 1);
    nb_tensor *cnt = nb__tensor(tp, x->dtype, cv.ndim, cv.shape, 1);
    if (!hit || !cnt) return tp->status;
    nb_ew(NB_EW_EQ, hit, x, &y, NULL, 0, 0);
    nb_ew_reduce(NB_RED_SUM, cnt, hit, 0);
    nb_tensor cb = nb__unreduce(cnt, x, mask);
    nb_ew(NB_EW_ACC_MULDIV, gx, &gy, hit, &cb, 0, 0); /* gy · [x = y] / count */
    return NB_OK;
}

const nb_op_def nb__op_max = {.name = "max", .shape = reduce_shape, .forward = fwd_extreme,
                              .backward = bwd_extreme, .data = &(const nb_red_kind){NB_RED_MAX}};
const nb_op_def nb__op_min = {.name = "min", .shape = reduce_shape, .forward = fwd_extreme,
                              .backward = bwd_extreme, .data = &(const nb_red_kind){NB_RED_MIN}};

static nb_tensor *extreme(nb_tape *tp, const nb_op_def *op, nb_tensor *a, int naxes,
                          const int *axes, int keepdim)
{
    if (!nb__inputs(tp, op->name, 1, &a)) return NULL;
    uint32_t mask;
    if (!nb__axes(tp, op->name, a, naxes, axes, &mask)) return NULL;
    for (int d = 0; d < a->ndim; d++)
        if (mask >> d & 1 && a->shape[d] == 0) {
            nb__fail(tp, NB_ERR_SHAPE, "nb_%s: reducing an empty axis of %s", op->name, NB_SHP(a));
            return NULL;
        }
    return nb_op_apply(tp, op, &(nb_node){.nin = 1, .in = {a}, .i = {mask, keepdim != 0}});
}

nb_tensor *nb_max(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim)
{
    return extreme(tp, &nb__op_max, a, naxes, axes, keepdim);
}

nb_tensor *nb_min(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim)
{
    return extreme(tp, &nb__op_min, a, naxes, axes, keepdim);
}

/* ---- argmax, argmin: constants, the first index of the extreme (NaN counts as the max) ----- */

/* a contiguous, seen as (outer, len, inner) around the axis n->i[0] */
static void around(const nb_tensor *a, int ax, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++) *outer *= a->shape[d];
    for (int d = ax + 1; d < a->ndim; d++) *inner *= a->shape[d];
    *len = a->shape[ax];
}

#define ARG_LOOP(T)                                                                          \
    do {                                                                                     \
        const T *x = a->data;                                                                \
        T *y = n->out->data;                                                                 \
        for (int64_t o = 0; o < outer; o++)                                                  \
            for (int64_t j = 0; j < inner; j++) {                                            \
                const T *p = x + o * len * inner + j;                                        \
                int64_t best = 0;                                                            \
                for (int64_t k = 1; k < len && p[best * inner] == p[best * inner]; k++) {    \
                    const T v = p[k * inner];                                                \
                    if (v != v || (want_max ? v > p[best * inner] : v < p[best * inner]))    \
                        best = k;                                                            \
                }                                                                            \
                y[o * inner + j] = (T)best;                                                  \
            }                                                                                \
    } while (0)

/* The last axis, contiguous: the kernels' row argmin or argmax (the extreme by the vector
 * reduction, then a vectorised scan for its first index). Searching for the first index inside
 * one loop chains each step on the last best value and does not vectorise (the VQ-VAE's nearest
 * code, 128 distances a row: 2.6 ns a value so on a Xeon). */
#define ARG_ROWS(T)                                                                          \
    do {                                                                                     \
        const T *x = a->data;                                                                \
        T *y = n->out->data;                                                                 \
        for (int64_t o = 0; o < outer; o++)                                                  \
            y[o] = (T)(want_max ? k->argmax : k->argmin)(len, x + o * len);                  \
    } while (0)

static nb_status fwd_arg(nb_tape *tp, nb_node *n)
{
    (void)tp;
    const nb_tensor *a = n->in[0];
    const int want_max = *(const nb_red_kind *)n->op->data == NB_RED_MAX;
    int64_t outer, len, inner;
    around(a, (int)n->i[2], &outer, &len, &inner);
    if (inner == 1 && len > 0) {
        const nb_kernel_table *k = nb_kernels(a->dtype);
        if (a->dtype == NB_F64)
            ARG_ROWS(double);
        else
            ARG_ROWS(float);
        return NB_OK;
    }
    if (a->dtype == NB_F64)
        ARG_LOOP(double);
    else
        ARG_LOOP(float);
    return NB_OK;
}

/* no backward: indices are constants */
const nb_op_def nb__op_argmax = {.name = "argmax", .flags = NB_OP_CONTIGUOUS, .shape = reduce_shape,
                                 .forward = fwd_arg, .data = &(const nb_red_kind){NB_RED_MAX}};
const nb_op_def nb__op_argmin = {.name = "argmin", .flags = NB_OP_CONTIGUOUS, .shape = reduce_shape,
                                 .forward = fwd_arg, .data = &(const nb_red_kind){NB_RED_MIN}};

static nb_tensor *arg_extreme(nb_tape *tp, const nb_op_def *op, nb_tensor *a, int axis, int keepdim)
{
    if (!nb__inputs(tp, op->name, 1, &a)) return NULL;
    const int ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim || a->shape[ax] == 0) {
        nb__fail(tp, ax < 0 || ax >= a->ndim ? NB_ERR_ARG : NB_ERR_SHAPE,
                 "nb_%s: axis %d of %s %s", op->name, axis, NB_SHP(a),
                 ax < 0 || ax >= a->ndim ? "is out of range" : "is empty");
        return NULL;
    }
    if (a->dtype == NB_F32 && a->shape[ax] > (1 << 24)) {
        nb__fail(tp, NB_ERR_SHAPE, "nb_%s: %lld positions along axis %d do not fit f32 indices",
                 op->name, (long long)a->shape[ax], axis);
        return NULL;
    }
    nb_tensor *c = nb_detach(tp, a); /* the indices get no gradient, and need none from a */
    return nb_op_apply(tp, op, &(nb_node){.nin = 1, .in = {c}, .i = {1u << ax, keepdim != 0, ax}});
}

nb_tensor *nb_argmax(nb_tape *tp, nb_tensor *a, int axis, int keepdim)
{
    return arg_extreme(tp, &nb__op_argmax, a, axis, keepdim);
}

nb_tensor *nb_argmin(nb_tape *tp, nb_tensor *a, int axis, int keepdim)
{
    return arg_extreme(tp, &nb__op_argmin, a, axis, keepdim);
}

/* ---- softmax, log-softmax along one axis ---------------------------------------------------- */
/* n->i[0]: the axis as a mask. log-softmax: y = x - m - log Σ exp(x - m), m the max (0 where it
 * is not finite, as for logsumexp). Backward: gx += gy - exp(y)·Σgy (log-softmax) and
 * gx += y·(gy - Σ gy·y) (softmax). */

static nb_status log_softmax_into(nb_tape *tp, const nb_tensor *x, uint32_t mask, nb_tensor *y)
{
    nb_tensor mv = keepdim_view(y, x, mask); /* only its shape: m lives in its own buffer */
    nb_tensor *m = nb__tensor(tp, x->dtype, mv.ndim, mv.shape, 1);
    nb_tensor *s = nb__tensor(tp, x->dtype, mv.ndim, mv.shape, 1);
    if (!m || !s) return tp->status;
    nb_ew_reduce(NB_RED_MAX, m, x, 0);
    for (int64_t i = 0, k = nb_numel(m); i < k; i++)
        if (!isfinite(nb_get(m, i)) && !isnan(nb_get(m, i))) nb_set(m, i, 0.0);
    nb_tensor mb = nb__unreduce(m, x, mask);
    nb_ew(NB_EW_SUB, y, x, &mb, NULL, 0, 0); /* x - m */
    nb_tensor *e = nb__tensor(tp, x->dtype, x->ndim, x->shape, 1);
    if (!e) return tp->status;
    nb_ew(NB_EW_EXP, e, y, NULL, NULL, 0, 0);
    nb_ew_reduce(NB_RED_SUM, s, e, 0);
    nb_ew(NB_EW_LOG, s, s, NULL, NULL, 0, 0);
    nb_tensor sb = nb__unreduce(s, x, mask);
    nb_ew(NB_EW_SUB, y, y, &sb, NULL, 0, 0);
    return NB_OK;
}

static nb_status fwd_softmax(nb_tape *tp, nb_node *n)
{
    nb_status st = log_softmax_into(tp, n->in[0], (uint32_t)n->i[0], n->out);
    if (!st && n->op == &nb__op_softmax) nb_ew(NB_EW_EXP, n->out, n->out, NULL, NULL, 0, 0);
    return st;
}

static nb_status bwd_softmax(nb_tape *tp, nb_node *n)
{
    nb_tensor *gx = nb__grad(tp, n->in[0]), *x = n->in[0], *y = n->out, *gy = y->grad;
    if (!gx) return NB_OK;
    const uint32_t mask = (uint32_t)n->i[0];
    nb_tensor sv = keepdim_view(y, x, mask);
    nb_tensor *s = nb__tensor(tp, x->dtype, sv.ndim, sv.shape, 1);
    if (!s) return tp->status;
    if (n->op == &nb__op_softmax) {
        nb_tensor *t = nb__tensor(tp, x->dtype, x->ndim, x->shape, 1);
        if (!t) return tp->status;
        nb_ew(NB_EW_MUL, t, gy, y, NULL, 0, 0);
        nb_ew_reduce(NB_RED_SUM, s, t, 0);
        nb_tensor sb = nb__unreduce(s, x, mask);
        nb_ew(NB_EW_ACC_SMB, gx, gy, y, &sb, 0, 0);
    } else {
        nb_ew_reduce(NB_RED_SUM, s, gy, 0);
        nb_tensor sb = nb__unreduce(s, x, mask);
        nb_ew(NB_EW_ACC_LSMB, gx, gy, y, &sb, 0, 0);
    }
    return NB_OK;
}

const nb_op_def nb__op_softmax = {.name = "softmax", .forward = fwd_softmax, .backward = bwd_softmax};
const nb_op_def nb__op_log_softmax = {.name = "log_softmax", .forward = fwd_softmax,
                                      .backward = bwd_softmax};

static nb_tensor *softmax_op(nb_tape *tp, const nb_op_def *op, nb_tensor *a, int axis)
{
    if (!nb__inputs(tp, op->name, 1, &a)) return NULL;
    const int ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim) {
        nb__fail(tp, NB_ERR_ARG, "nb_%s: axis %d out of range for shape %s", op->name, axis, NB_SHP(a));
        return NULL;
    }
    return nb_op_apply(tp, op, &(nb_node){.nin = 1, .in = {a}, .i = {1u << ax}});
}

nb_tensor *nb_softmax(nb_tape *tp, nb_tensor *a, int axis) { return softmax_op(tp, &nb__op_softmax, a, axis); }

nb_tensor *nb_log_softmax(nb_tape *tp, nb_tensor *a, int axis)
{
    return softmax_op(tp, &nb__op_log_softmax, a, axis);
}
