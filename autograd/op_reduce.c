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
