/* autograd/op_view.c — reshape, permute, slice, expand, contiguous, concat.
 *
 * The view ops share their input's data and only change shape and strides. Their gradients are
 * ordinary contiguous tensors; backward adds the output gradient into the matching view of the
 * input gradient (a permuted or sliced view), or, for expand, sums it over the broadcast dims:
 * that is the one place where broadcasting is undone.
 */
#include <stdio.h>
#include <string.h>

#include "autograd/tape.h"

/* ---- expand ------------------------------------------------------------------------------- */

static nb_status fwd_expand(nb_tape *tp, nb_node *n)
{
    (void)tp;
    const nb_tensor *a = n->in[0];
    nb_tensor *y = n->out;
    const int lead = y->ndim - a->ndim;
    for (int d = 0; d < y->ndim; d++) {
        int ad = d - lead;
        y->stride[d] = ad < 0 || (a->shape[ad] == 1 && y->shape[d] != 1) ? 0 : a->stride[ad];
    }
    y->data = a->data;
    return NB_OK;
}

static nb_status bwd_expand(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (!ga) return NB_OK;
    /* ga seen with the output's ndim (leading size-1 dims), then summed into */
    nb_tensor g = *ga;
    const int lead = n->out->ndim - ga->ndim;
    g.ndim = n->out->ndim;
    for (int d = 0; d < g.ndim; d++) {
        g.shape[d] = d < lead ? 1 : ga->shape[d - lead];
        g.stride[d] = d < lead ? 0 : ga->stride[d - lead];
    }
    nb_ew_reduce(NB_RED_SUM, &g, n->out->grad, 1);
    return NB_OK;
}

/* view ops that take their output shape as an argument: i[0..ndim) the sizes, i[4] ndim */
static nb_status shape_arg(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = (int)n->i[NB_MAX_DIMS];
    for (int d = 0; d < *nd; d++) shape[d] = n->i[d];
    return NB_OK;
}

const nb_op_def nb__op_expand = {.name = "expand", .flags = NB_OP_VIEW, .shape = shape_arg,
                                 .forward = fwd_expand, .backward = bwd_expand};

static nb_node shaped_node(nb_tensor *a, int ndim, const int64_t *shape)
{
    nb_node n = {.nin = 1, .in = {a}, .i = {[NB_MAX_DIMS] = ndim}};
    for (int d = 0; d < ndim; d++) n.i[d] = shape[d];
    return n;
}

nb_tensor *nb_expand(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape)
{
    if (!nb__inputs(tp, "expand", 1, &a)) return NULL;
    int ok = ndim >= a->ndim && ndim <= NB_MAX_DIMS && (shape || !ndim);
    for (int d = 0; ok && d < a->ndim; d++) {
        int64_t s = a->shape[d], t = shape[ndim - a->ndim + d];
        ok = s == t || s == 1;
    }
    if (!ok) {
        nb_tensor want;
        nb_tensor_wrap(&want, a->dtype, ndim >= 0 && ndim <= NB_MAX_DIMS && shape ? ndim : 0, shape, NULL);
        nb__fail(tp, NB_ERR_SHAPE, "nb_expand: cannot broadcast %s to %s", NB_SHP(a),
                 NB_SHP(&want));
        return NULL;
    }
    if (ndim == a->ndim && !memcmp(shape, a->shape, (size_t)ndim * sizeof *shape)) return a;
    nb_node n = shaped_node(a, ndim, shape);
    return nb_op_apply(tp, &nb__op_expand, &n);
}

/* ---- contiguous, reshape ------------------------------------------------------------------ */

static nb_status fwd_contiguous(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(NB_EW_COPY, n->out, n->in[0], NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status bwd_contiguous(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (ga) nb_ew(NB_EW_ACC, ga, n->out->grad, NULL, NULL, 0, 0);
    return NB_OK;
}

const nb_op_def nb__op_contiguous = {.name = "contiguous", .forward = fwd_contiguous,
                                     .backward = bwd_contiguous};

nb_tensor *nb_contiguous(nb_tape *tp, nb_tensor *a)
{
    if (!nb__inputs(tp, "contiguous", 1, &a)) return NULL;
    if (nb_is_contiguous(a)) return a;
    return nb_op_apply(tp, &nb__op_contiguous, &(nb_node){.nin = 1, .in = {a}});
}

static nb_status fwd_reshape(nb_tape *tp, nb_node *n)
{
    (void)tp;
    n->out->data = n->in[0]->data; /* the input is contiguous: same bytes, new shape */
    return NB_OK;
}

static nb_status bwd_reshape(nb_tape *tp, nb_node *n)
{
    nb_tensor *a = n->in[0];
    /* the same bytes in a new shape: an arena input that has no gradient yet takes the output's,
     * seen in its own shape, instead of a zeroed copy (nothing reads the output's afterwards) */
    if (a->flags & NB_REQUIRES_GRAD && !a->grad && !(a->flags & NB_PARAM)) {
        nb_tensor *g = nb__tensor(tp, a->dtype, a->ndim, a->shape, 0);
        if (!g) return nb_tape_status(tp);
        g->data = n->out->grad->data;
        a->grad = g;
        return NB_OK;
    }
    nb_tensor *ga = nb__grad(tp, a);
    if (!ga) return NB_OK;
    nb_tensor gy;
    nb_tensor_wrap(&gy, ga->dtype, ga->ndim, ga->shape, n->out->grad->data);
    nb_ew(NB_EW_ACC, ga, &gy, NULL, NULL, 0, 0);
    return NB_OK;
}

const nb_op_def nb__op_reshape = {.name = "reshape", .flags = NB_OP_VIEW, .shape = shape_arg,
                                  .forward = fwd_reshape, .backward = bwd_reshape};

nb_tensor *nb_reshape(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape)
{
    if (!nb__inputs(tp, "reshape", 1, &a)) return NULL;
    int64_t s[NB_MAX_DIMS], known = 1;
    int infer = -1, ok = ndim >= 0 && ndim <= NB_MAX_DIMS && (shape || !ndim);
    for (int d = 0; ok && d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1 && infer < 0)
            infer = d;
        else if (s[d] < 0)
            ok = 0;
        else
            known *= s[d];
    }
    const int64_t numel = nb_numel(a);
    if (ok && infer >= 0) {
        ok = known > 0 && numel % known == 0;
        if (ok) s[infer] = numel / known;
    }
    if (!ok || known * (infer >= 0 ? s[infer] : 1) != numel) {
        char want[96] = "(";
        for (int d = 0; shape && d < ndim && d < NB_MAX_DIMS + 1; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), d ? ",%lld" : "%lld",
                     (long long)shape[d]);
        strcat(want, ")");
        nb__fail(tp, NB_ERR_SHAPE, "nb_reshape: cannot view %s (%lld elements) as %s", NB_SHP(a),
                 (long long)numel, want);
        return NULL;
    }
    if (!(a = nb_contiguous(tp, a))) return NULL;
    nb_node n = shaped_node(a, ndim, s);
    return nb_op_apply(tp, &nb__op_reshape, &n);
}

/* ---- permute ------------------------------------------------------------------------------ */

/* The view of t with its dims reordered: dim d of the result is dim perm[d] of t. */
static nb_tensor permuted(const nb_tensor *t, const int64_t *perm)
{
    nb_tensor v = *t;
    for (int d = 0; d < t->ndim; d++) {
        v.shape[d] = t->shape[perm[d]];
        v.stride[d] = t->stride[perm[d]];
    }
    return v;
}

static nb_status fwd_permute(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_tensor v = permuted(n->in[0], n->i);
    n->out->data = v.data;
    memcpy(n->out->stride, v.stride, sizeof v.stride);
    return NB_OK;
}

static nb_status bwd_permute(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (!ga) return NB_OK;
    nb_tensor gv = permuted(ga, n->i); /* ga's elements in the output's order */
    nb_ew(NB_EW_ACC, &gv, n->out->grad, NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status shape_permute(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = n->in[0]->ndim;
    for (int d = 0; d < *nd; d++) shape[d] = n->in[0]->shape[n->i[d]];
    return NB_OK;
}

const nb_op_def nb__op_permute = {.name = "permute", .flags = NB_OP_VIEW, .shape = shape_permute,
                                  .forward = fwd_permute, .backward = bwd_permute};

nb_tensor *nb_permute(nb_tape *tp, nb_tensor *a, int nperm, const int *perm)
{
    if (!nb__inputs(tp, "permute", 1, &a)) return NULL;
    if (nperm != a->ndim || !perm) {
        nb__fail(tp, NB_ERR_ARG, "nb_permute: a permutation of %d dims for the %d dims of %s",
                 nperm, a->ndim, NB_SHP(a));
        return NULL;
    }
    nb_node n = {.nin = 1, .in = {a}};
    unsigned seen = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= a->ndim || (seen >> perm[d] & 1)) {
            nb__fail(tp, NB_ERR_ARG, "nb_permute: not a permutation of the %d dims of %s",
                     a->ndim, NB_SHP(a));
            return NULL;
        }
        seen |= 1u << perm[d];
        n.i[d] = perm[d];
    }
    return nb_op_apply(tp, &nb__op_permute, &n);
}

nb_tensor *nb_transpose(nb_tape *tp, nb_tensor *a, int d0, int d1)
{
    if (!nb__inputs(tp, "transpose", 1, &a)) return NULL;
    if (d0 < 0) d0 += a->ndim;
    if (d1 < 0) d1 += a->ndim;
    if (d0 < 0 || d0 >= a->ndim || d1 < 0 || d1 >= a->ndim) {
        nb__fail(tp, NB_ERR_ARG, "nb_transpose: dims %d, %d out of range for %s", d0, d1,
                 NB_SHP(a));
        return NULL;
    }
    int perm[NB_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) perm[d] = d;
    perm[d0] = d1;
    perm[d1] = d0;
    return nb_permute(tp, a, a->ndim, perm);
}

/* ---- slice -------------------------------------------------------------------------------- */

/* n->i = {axis, start, step, length} */
static nb_tensor sliced(const nb_tensor *t, const int64_t *arg, int64_t len)
{
    nb_tensor v = *t;
    const int ax = (int)arg[0];
    v.data = (char *)t->data + arg[1] * t->stride[ax] * (int64_t)nb_dtype_size(t->dtype);
    v.shape[ax] = len;
    v.stride[ax] = t->stride[ax] * arg[2];
    return v;
}

static nb_status fwd_slice(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_tensor v = sliced(n->in[0], n->i, n->out->shape[n->i[0]]);
    n->out->data = v.data;
    memcpy(n->out->stride, v.stride, sizeof v.stride);
    return NB_OK;
}

static nb_status bwd_slice(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]);
    if (!ga) return NB_OK;
    nb_tensor gv = sliced(ga, n->i, n->out->shape[n->i[0]]);
    nb_ew(NB_EW_ACC, &gv, n->out->grad, NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status shape_slice(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = n->in[0]->ndim;
    memcpy(shape, n->in[0]->shape, sizeof n->in[0]->shape);
    shape[n->i[0]] = n->i[3];
    return NB_OK;
}

const nb_op_def nb__op_slice = {.name = "slice", .flags = NB_OP_VIEW, .shape = shape_slice,
                                .forward = fwd_slice, .backward = bwd_slice};

nb_tensor *nb_slice(nb_tape *tp, nb_tensor *a, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!nb__inputs(tp, "slice", 1, &a)) return NULL;
    int ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim || step < 1) {
        nb__fail(tp, NB_ERR_ARG, "nb_slice: axis %d or step %lld invalid for %s", axis,
                 (long long)step, NB_SHP(a));
        return NULL;
    }
    const int64_t dim = a->shape[ax];
    if (start < 0) start += dim;
    if (end == NB_END) end = dim;
    else if (end < 0) end += dim;
    if (start < 0 || end > dim || start > end) {
        nb__fail(tp, NB_ERR_ARG, "nb_slice: range [%lld, %lld) out of bounds for axis %d of %s",
                 (long long)start, (long long)end, axis, NB_SHP(a));
        return NULL;
    }
    nb_node n = {.nin = 1, .in = {a}, .i = {ax, start, step, (end - start + step - 1) / step}};
    return nb_op_apply(tp, &nb__op_slice, &n);
}

/* ---- concat ------------------------------------------------------------------------------- */

/* n->i[0] = axis. The output's two halves are slices of it along the axis. */
static void halves(const nb_tensor *y, const nb_node *n, nb_tensor *ya, nb_tensor *yb)
{
    const int64_t len_a = n->in[0]->shape[n->i[0]];
    *ya = sliced(y, (const int64_t[]){n->i[0], 0, 1}, len_a);
    *yb = sliced(y, (const int64_t[]){n->i[0], len_a, 1}, y->shape[n->i[0]] - len_a);
}

static nb_status fwd_concat(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_tensor ya, yb;
    halves(n->out, n, &ya, &yb);
    nb_ew(NB_EW_COPY, &ya, n->in[0], NULL, NULL, 0, 0);
    nb_ew(NB_EW_COPY, &yb, n->in[1], NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status bwd_concat(nb_tape *tp, nb_node *n)
{
    nb_tensor ga_v, gb_v, *ga = nb__grad(tp, n->in[0]), *gb = nb__grad(tp, n->in[1]);
    halves(n->out->grad, n, &ga_v, &gb_v);
    if (ga) nb_ew(NB_EW_ACC, ga, &ga_v, NULL, NULL, 0, 0);
    if (gb) nb_ew(NB_EW_ACC, gb, &gb_v, NULL, NULL, 0, 0);
    return NB_OK;
}

static nb_status shape_concat(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    const nb_tensor *a = n->in[0], *b = n->in[1];
    const int ax = (int)n->i[0];
    int ok = a->ndim == b->ndim && ax >= 0 && ax < a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = d == ax || a->shape[d] == b->shape[d];
    if (!ok)
        return nb__fail(tp, NB_ERR_SHAPE, "nb_concat: shapes %s and %s do not join along axis %lld",
                        NB_SHP(a), NB_SHP(b), (long long)n->i[1]);
    *nd = a->ndim;
    memcpy(shape, a->shape, sizeof a->shape);
    shape[ax] += b->shape[ax];
    return NB_OK;
}

const nb_op_def nb__op_concat = {.name = "concat", .shape = shape_concat, .forward = fwd_concat,
                                 .backward = bwd_concat};

nb_tensor *nb_concat(nb_tape *tp, int axis, nb_tensor *a, nb_tensor *b)
{
    if (!nb__inputs(tp, "concat", 2, (nb_tensor *[]){a, b})) return NULL;
    const int ax = axis < 0 ? axis + a->ndim : axis;
    return nb_op_apply(tp, &nb__op_concat, &(nb_node){.nin = 2, .in = {a, b}, .i = {ax, axis}});
}
