/* autograd/op_matmul.c — a·b for matrices and batches of them, on nb_gemm. */
#include "autograd/tape.h"

/* How a (rows, cols) matrix view reaches the GEMM: stored as is or transposed, with a leading
 * dimension, and a batch stride (0 when one matrix serves the whole batch). */
typedef struct gemm_operand {
    const char *data;
    int trans;
    int64_t ld, batch_stride;
} gemm_operand;

static int as_operand(const nb_tensor *t, gemm_operand *g)
{
    const int r = t->ndim - 2, c = t->ndim - 1;
    g->data = t->data;
    g->batch_stride = t->ndim == 3 ? t->stride[0] : 0;
    if (t->stride[c] == 1 || t->shape[c] == 1) {
        g->trans = 0;
        g->ld = t->shape[r] == 1 || t->stride[r] < t->shape[c] ? t->shape[c] : t->stride[r];
        return t->shape[r] == 1 || t->stride[r] >= t->shape[c];
    }
    if (t->stride[r] == 1 || t->shape[r] == 1) {
        g->trans = 1;
        g->ld = t->stride[c] < t->shape[r] ? t->shape[r] : t->stride[c];
        return t->stride[c] >= t->shape[r];
    }
    return 0;
}

static int64_t batch_of(const nb_node *n) { return n->out->ndim == 3 ? n->out->shape[0] : 1; }

static nb_status fwd_matmul(nb_tape *tp, nb_node *n)
{
    (void)tp;
    gemm_operand A, B;
    as_operand(n->in[0], &A);
    as_operand(n->in[1], &B);
    const int64_t M = nb_dim(n->in[0], -2), K = nb_dim(n->in[0], -1), N = nb_dim(n->in[1], -1);
    const int64_t es = (int64_t)nb_dtype_size(n->out->dtype);
    for (int64_t b = 0; b < batch_of(n); b++) {
        nb_status st = nb_gemm(n->out->dtype, A.trans, B.trans, M, N, K, 1.0,
                               A.data + b * A.batch_stride * es, A.ld,
                               B.data + b * B.batch_stride * es, B.ld, 0.0,
                               (char *)n->out->data + b * M * N * es, N);
        if (st) return st;
    }
    return NB_OK;
}

/* dA += dC·op(B)ᵀ and dB += op(A)ᵀ·dC, batch by batch; a matrix shared across the batch
 * accumulates every batch's contribution in its one gradient. */
static nb_status bwd_matmul(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[0]), *gb = nb__grad(tp, n->in[1]);
    gemm_operand A, B;
    as_operand(n->in[0], &A);
    as_operand(n->in[1], &B);
    const int64_t M = nb_dim(n->in[0], -2), K = nb_dim(n->in[0], -1), N = nb_dim(n->in[1], -1);
    const int64_t es = (int64_t)nb_dtype_size(n->out->dtype);
    const int64_t ga_bs = n->in[0]->ndim == 3 ? M * K : 0, gb_bs = n->in[1]->ndim == 3 ? K * N : 0;
    const char *gc = n->out->grad->data;
    nb_status st = NB_OK;
    for (int64_t b = 0; b < batch_of(n) && !st; b++) {
        const char *gcb = gc + b * M * N * es;
        if (ga)
            st = nb_gemm(ga->dtype, 0, !B.trans, M, K, N, 1.0, gcb, N,
                         B.data + b * B.batch_stride * es, B.ld, 1.0,
                         (char *)ga->data + b * ga_bs * es, K);
        if (gb && !st)
            st = nb_gemm(gb->dtype, !A.trans, 0, K, N, M, 1.0, A.data + b * A.batch_stride * es,
                         A.ld, gcb, N, 1.0, (char *)gb->data + b * gb_bs * es, N);
    }
    if (st) nb__fail(tp, st, "nb_matmul: backward GEMM failed (%s)", nb_status_str(st));
    return st;
}

static nb_status shape_matmul(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    const nb_tensor *a = n->in[0], *b = n->in[1];
    *nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    if (*nd == 3) shape[0] = a->ndim == 3 ? a->shape[0] : b->shape[0];
    shape[*nd - 2] = nb_dim(a, -2);
    shape[*nd - 1] = nb_dim(b, -1);
    return NB_OK;
}

const nb_op_def nb__op_matmul = {.name = "matmul", .shape = shape_matmul, .forward = fwd_matmul,
                                 .backward = bwd_matmul};

nb_tensor *nb_matmul(nb_tape *tp, nb_tensor *a, nb_tensor *b)
{
    if (!nb__inputs(tp, "matmul", 2, (nb_tensor *[]){a, b})) return NULL;
    const int ok_dims = (a->ndim == 2 || a->ndim == 3) && (b->ndim == 2 || b->ndim == 3);
    if (!ok_dims || nb_dim(a, -1) != nb_dim(b, -2) ||
        (a->ndim == 3 && b->ndim == 3 && a->shape[0] != b->shape[0])) {
        nb__fail(tp, NB_ERR_SHAPE, "nb_matmul: %s x %s: %s", NB_SHP(a), NB_SHP(b),
                 !ok_dims ? "operands must be 2-D or 3-D"
                 : nb_dim(a, -1) != nb_dim(b, -2) ? "inner dimensions differ"
                                                  : "batch sizes differ");
        return NULL;
    }
    /* A batch against one shared matrix is one taller GEMM. */
    if (a->ndim == 3 && b->ndim == 2) {
        const int64_t B = a->shape[0], M = a->shape[1];
        nb_tensor *y = nb_matmul(tp, nb_reshape(tp, a, NB_SHAPE(B * M, a->shape[2])), b);
        return nb_reshape(tp, y, NB_SHAPE(B, M, b->shape[1]));
    }
    gemm_operand g;
    if (!as_operand(a, &g) && !(a = nb_contiguous(tp, a))) return NULL;
    if (!as_operand(b, &g) && !(b = nb_contiguous(tp, b))) return NULL;
    return nb_op_apply(tp, &nb__op_matmul, &(nb_node){.nin = 2, .in = {a, b}});
}
