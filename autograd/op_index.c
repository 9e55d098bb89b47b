/* autograd/op_index.c — index_select and gather: picking elements by index along an axis.
 *
 * Indices are tensors of the data's dtype holding whole numbers (what argmax and argmin give);
 * they are constants, checked to be integers in range before anything runs. Backward adds each
 * output gradient back into the place it was read from, in order, so repeated indices add up
 * and the result does not depend on threads.
 */
#include <math.h>
#include <string.h>

#include "autograd/tape.h"

/* Checks that every value of idx is an integer in [0, dim); 0 with the error recorded. */
static int indices_ok(nb_tape *tp, const char *op, const nb_tensor *idx, int64_t dim, int axis)
{
    for (int64_t i = 0, n = nb_numel(idx); i < n; i++) {
        const double v = nb_get(idx, i);
        if (!(v >= 0 && v < (double)dim && v == floor(v))) {
            nb__fail(tp, NB_ERR_ARG, "nb_%s: index %g (element %lld of the index) is not a whole "
                     "number in [0, %lld) for axis %d", op, v, (long long)i, (long long)dim, axis);
            return 0;
        }
    }
    return 1;
}

static int64_t idx_at(const nb_tensor *idx, int64_t i)
{
    return (int64_t)(idx->dtype == NB_F64 ? ((const double *)idx->data)[i]
                                          : ((const float *)idx->data)[i]);
}

/* ---- index_select: y = a with positions index[k] along the axis, in that order ------------ */
/* a and index contiguous; a seen as (outer, dim, inner), y as (outer, n, inner). i[0]: axis */

static void around(const nb_tensor *a, int ax, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++) *outer *= a->shape[d];
    for (int d = ax + 1; d < a->ndim; d++) *inner *= a->shape[d];
}

static nb_status shape_index_select(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = n->in[0]->ndim;
    memcpy(shape, n->in[0]->shape, sizeof n->in[0]->shape);
    shape[n->i[0]] = nb_numel(n->in[1]);
    return NB_OK;
}

static nb_status fwd_index_select(nb_tape *tp, nb_node *n)
{
    (void)tp;
    const nb_tensor *a = n->in[0], *idx = n->in[1];
    const int ax = (int)n->i[0];
    int64_t outer, inner;
    around(a, ax, &outer, &inner);
    const int64_t dim = a->shape[ax], k = nb_numel(idx);
    const size_t row = (size_t)inner * nb_dtype_size(a->dtype);
    const char *src = a->data;
    char *dst = n->out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++)
            memcpy(dst + (o * k + j) * (int64_t)row, src + (o * dim + idx_at(idx, j)) * (int64_t)row, row);
    return NB_OK;
}

#define SCATTER_ADD(T)                                                                       \
    do {                                                                                     \
        T *g = ga->data;                                                                     \
        const T *gy = n->out->grad->data;                                                    \
        for (int64_t o = 0; o < outer; o++)                                                  \
            for (int64_t j = 0; j < k; j++) {                                                \
                T *to = g + (o * dim + idx_at(idx, j)) * inner;                              \
                const T *from = gy + (o * k + j) * inner;                                    \
                for (int64_t q = 0; q < inner; q++) to[q] += from[q];                        \
            }                                                                                \
    } while (0)

static nb_status bwd_index_select(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (!ga) return NB_OK;
    const nb_tensor *a = n->in[0], *idx = n->in[1];
    const int ax = (int)n->i[0];
    int64_t outer, inner;
    around(a, ax, &outer, &inner);
    const int64_t dim = a->shape[ax], k = nb_numel(idx);
    if (a->dtype == NB_F64)
        SCATTER_ADD(double);
    else
        SCATTER_ADD(float);
    return NB_OK;
}

const nb_op_def nb__op_index_select = {.name = "index_select", .flags = NB_OP_CONTIGUOUS,
                                       .shape = shape_index_select, .forward = fwd_index_select,
                                       .backward = bwd_index_select};

nb_tensor *nb_index_select(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index)
{
    if (!nb__inputs(tp, "index_select", 2, (nb_tensor *[]){a, index})) return NULL;
    const int ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim || index->ndim != 1) {
        nb__fail(tp, NB_ERR_ARG, "nb_index_select: axis %d of %s with index %s: %s", axis,
                 NB_SHP(a), NB_SHP(index), index->ndim != 1 ? "the index must be 1-D" : "axis out of range");
        return NULL;
    }
    nb_tensor *c = nb_contiguous(tp, nb_detach(tp, index));
    if (!c || !indices_ok(tp, "index_select", c, a->shape[ax], axis)) return NULL;
    return nb_op_apply(tp, &nb__op_index_select, &(nb_node){.nin = 2, .in = {a, c}, .i = {ax}});
}

/* ---- gather: y[p] = a[p with its axis coordinate replaced by index[p]] ---------------------- */
/* PyTorch's torch.gather: index has a's ndim, is no larger than a along the other dims, and y has
 * its shape. a and index contiguous. i[0]: axis */

static nb_status shape_gather(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = n->in[1]->ndim;
    memcpy(shape, n->in[1]->shape, sizeof n->in[1]->shape);
    return NB_OK;
}

/* The offset into a of output element p (row-major over the index's shape). */
static int64_t gather_src(const nb_tensor *a, const nb_tensor *idx, int ax, int64_t p)
{
    int64_t off = 0, rest = p;
    for (int d = idx->ndim - 1; d >= 0; d--) {
        const int64_t c = rest % idx->shape[d];
        rest /= idx->shape[d];
        off += (d == ax ? idx_at(idx, p) : c) * a->stride[d];
    }
    return off;
}

static nb_status fwd_gather(nb_tape *tp, nb_node *n)
{
    (void)tp;
    const nb_tensor *a = n->in[0], *idx = n->in[1];
    const int ax = (int)n->i[0];
    const int64_t m = nb_numel(idx);
    if (a->dtype == NB_F64)
        for (int64_t p = 0; p < m; p++)
            ((double *)n->out->data)[p] = ((const double *)a->data)[gather_src(a, idx, ax, p)];
    else
        for (int64_t p = 0; p < m; p++)
            ((float *)n->out->data)[p] = ((const float *)a->data)[gather_src(a, idx, ax, p)];
    return NB_OK;
}

static nb_status bwd_gather(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (!ga) return NB_OK;
    const nb_tensor *a = n->in[0], *idx = n->in[1], *gy = n->out->grad;
    const int ax = (int)n->i[0];
    const int64_t m = nb_numel(idx);
    if (a->dtype == NB_F64)
        for (int64_t p = 0; p < m; p++)
            ((double *)ga->data)[gather_src(a, idx, ax, p)] += ((const double *)gy->data)[p];
    else
        for (int64_t p = 0; p < m; p++)
            ((float *)ga->data)[gather_src(a, idx, ax, p)] += ((const float *)gy->data)[p];
    return NB_OK;
}

const nb_op_def nb__op_gather = {.name = "gather", .flags = NB_OP_CONTIGUOUS, .shape = shape_gather,
                                 .forward = fwd_gather, .backward = bwd_gather};

nb_tensor *nb_gather(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index)
{
    if (!nb__inputs(tp, "gather", 2, (nb_tensor *[]){a, index})) return NULL;
    const int ax = axis < 0 ? axis + a->ndim : axis;
    int ok = ax >= 0 && ax < a->ndim && index->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = d == ax || index->shape[d] <= a->shape[d];
    if (!ok) {
        nb__fail(tp, NB_ERR_SHAPE, "nb_gather: axis %d of %s with index %s: the index needs the "
                 "input's dims and no larger sizes but along the axis", axis, NB_SHP(a), NB_SHP(index));
        return NULL;
    }
    nb_tensor *c = nb_contiguous(tp, nb_detach(tp, index));
    if (!c || !indices_ok(tp, "gather", c, a->shape[ax], axis)) return NULL;
    return nb_op_apply(tp, &nb__op_gather, &(nb_node){.nin = 2, .in = {a, c}, .i = {ax}});
}
