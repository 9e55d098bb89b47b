/* autograd/op_elementwise.c — unary maths, binary arithmetic, where.
 *
 * Binary ops broadcast by expanding both inputs to the result's shape (nb_expand records the
 * view), so their kernels and backward only ever see operands of one shape.
 */
#include "autograd/tape.h"

/* ---- unary: one row per op ---------------------------------------------------------------- */

/* fwd: y = f(x; s0, s1). bwd: gx += g(gy, v; s0, s1) with v = y when uses_out, else x. */
static const struct unary_spec {
    nb_ew_id fwd, bwd;
    int uses_out;
} unary_spec[NB_OP_COUNT] = {
    [NB_OP_NEG] = {NB_EW_SCALE, NB_EW_ACC_SCALE, 0},   /* s0 = -1 */
    [NB_OP_SCALE] = {NB_EW_SCALE, NB_EW_ACC_SCALE, 0}, /* gx += s0·gy */
    [NB_OP_ADD_SCALAR] = {NB_EW_ADDS, NB_EW_ACC, 0},
    [NB_OP_EXP] = {NB_EW_EXP, NB_EW_ACC_MUL, 1},         /* gx += gy·y */
    [NB_OP_LOG] = {NB_EW_LOG, NB_EW_ACC_DIV, 0},         /* gx += gy/x */
    [NB_OP_LOG1P] = {NB_EW_LOG1P, NB_EW_ACC_LOG1PB, 0},  /* gx += gy/(1+x) */
    [NB_OP_SQRT] = {NB_EW_SQRT, NB_EW_ACC_SQRTB, 1},     /* gx += gy/(2y) */
    [NB_OP_SQUARE] = {NB_EW_SQUARE, NB_EW_ACC_SQUAREB, 0}, /* gx += 2x·gy */
    [NB_OP_TANH] = {NB_EW_TANH, NB_EW_ACC_TANHB, 1},     /* gx += gy(1-y²) */
    [NB_OP_SIGMOID] = {NB_EW_SIGMOID, NB_EW_ACC_SIGMOIDB, 1}, /* gx += gy·y(1-y) */
    [NB_OP_RELU] = {NB_EW_RELU, NB_EW_ACC_RELUB, 1},     /* y > 0 exactly where x > 0 */
    [NB_OP_SOFTPLUS] = {NB_EW_SOFTPLUS, NB_EW_ACC_MULSIG, 0},       /* gx += gy·σ(x), s0 = 1 */
    [NB_OP_LOG_SIGMOID] = {NB_EW_LOGSIGMOID, NB_EW_ACC_MULSIG, 0},  /* gx += gy·σ(-x), s0 = -1 */
    [NB_OP_CLAMP] = {NB_EW_CLAMP, NB_EW_ACC_CLAMPB, 0},  /* gradient passes inside [lo, hi] */
    [NB_OP_LEAKY_RELU] = {NB_EW_LEAKY_RELU, NB_EW_ACC_LEAKYB, 0},
    [NB_OP_ELU] = {NB_EW_ELU, NB_EW_ACC_ELUB, 1}, /* below 0, dy/dx = y + alpha */
    [NB_OP_GELU] = {NB_EW_GELU, NB_EW_ACC_GELUB, 0},
};

nb_status nb_fwd_unary(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(unary_spec[n->op].fwd, n->out, n->in[0], NULL, NULL, n->s[0], n->s[1]);
    return NB_OK;
}

void nb_bwd_unary(nb_tape *tp, nb_node *n)
{
    const struct unary_spec *sp = &unary_spec[n->op];
    nb_tensor *gx = nb__grad(tp, n->in[0]);
    if (gx) nb_ew(sp->bwd, gx, n->out->grad, sp->uses_out ? n->out : n->in[0], NULL, n->s[0], n->s[1]);
}

static nb_tensor *unary(nb_tape *tp, nb_op_id op, nb_tensor *a, double s0, double s1)
{
    if (!nb__inputs(tp, nb_ops[op].name, 1, &a)) return NULL;
    nb_node n = {.op = op, .nin = 1, .in = {a}, .s = {s0, s1}};
    return nb__apply(tp, &n, a->ndim, a->shape, 0);
}

nb_tensor *nb_neg(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_NEG, a, -1, 0); }
nb_tensor *nb_scale(nb_tape *tp, nb_tensor *a, double s) { return unary(tp, NB_OP_SCALE, a, s, 0); }
nb_tensor *nb_add_scalar(nb_tape *tp, nb_tensor *a, double s) { return unary(tp, NB_OP_ADD_SCALAR, a, s, 0); }
nb_tensor *nb_exp(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_EXP, a, 0, 0); }
nb_tensor *nb_log(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_LOG, a, 0, 0); }
nb_tensor *nb_log1p(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_LOG1P, a, 0, 0); }
nb_tensor *nb_sqrt(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_SQRT, a, 0, 0); }
nb_tensor *nb_square(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_SQUARE, a, 0, 0); }
nb_tensor *nb_tanh(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_TANH, a, 0, 0); }
nb_tensor *nb_sigmoid(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_SIGMOID, a, 0, 0); }
nb_tensor *nb_relu(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_RELU, a, 0, 0); }
nb_tensor *nb_softplus(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_SOFTPLUS, a, 1, 0); }
nb_tensor *nb_log_sigmoid(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_LOG_SIGMOID, a, -1, 0); }

nb_tensor *nb_leaky_relu(nb_tape *tp, nb_tensor *a, double slope) { return unary(tp, NB_OP_LEAKY_RELU, a, slope, 0); }
nb_tensor *nb_gelu(nb_tape *tp, nb_tensor *a) { return unary(tp, NB_OP_GELU, a, 0, 0); }

nb_tensor *nb_elu(nb_tape *tp, nb_tensor *a, double alpha)
{
    if (!(alpha > 0)) { /* the backward reads the sign of x off the output */
        nb__fail(tp, NB_ERR_ARG, "nb_elu: alpha must be positive, got %g", alpha);
        return NULL;
    }
    return unary(tp, NB_OP_ELU, a, alpha, 0);
}

nb_tensor *nb_clamp(nb_tape *tp, nb_tensor *a, double lo, double hi)
{
    if (!(lo <= hi)) { /* also catches NaN bounds */
        nb__fail(tp, NB_ERR_ARG, "nb_clamp: lower bound %g above upper bound %g", lo, hi);
        return NULL;
    }
    return unary(tp, NB_OP_CLAMP, a, lo, hi);
}

/* ---- binary ------------------------------------------------------------------------------- */

static const nb_ew_id binary_kernel[NB_OP_COUNT] = {
    [NB_OP_ADD] = NB_EW_ADD, [NB_OP_SUB] = NB_EW_SUB,
    [NB_OP_MUL] = NB_EW_MUL, [NB_OP_DIV] = NB_EW_DIV,
};

nb_status nb_fwd_binary(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(binary_kernel[n->op], n->out, n->in[0], n->in[1], NULL, 0, 0);
    return NB_OK;
}

void nb_bwd_binary(nb_tape *tp, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *gy = n->out->grad;
    nb_tensor *ga = nb__grad(tp, a), *gb = nb__grad(tp, b);
    switch (n->op) {
    case NB_OP_ADD:
        if (ga) nb_ew(NB_EW_ACC, ga, gy, NULL, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC, gb, gy, NULL, NULL, 0, 0);
        break;
    case NB_OP_SUB:
        if (ga) nb_ew(NB_EW_ACC, ga, gy, NULL, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_SCALE, gb, gy, NULL, NULL, -1, 0);
        break;
    case NB_OP_MUL:
        if (ga) nb_ew(NB_EW_ACC_MUL, ga, gy, b, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_MUL, gb, gy, a, NULL, 0, 0);
        break;
    case NB_OP_DIV: /* d(a/b)/db = -a/b² */
        if (ga) nb_ew(NB_EW_ACC_DIV, ga, gy, b, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_DIVB, gb, gy, a, b, 0, 0);
        break;
    default: break;
    }
}

/* Broadcasts the n inputs to one shape (failing with their shapes named); 0 on failure. */
static int broadcast_inputs(nb_tape *tp, const char *op, int n, nb_tensor **in, int *nd,
                            int64_t shape[NB_MAX_DIMS])
{
    if (!nb__inputs(tp, op, n, in)) return 0;
    *nd = in[0]->ndim;
    for (int d = 0; d < *nd; d++) shape[d] = in[0]->shape[d];
    for (int i = 1; i < n; i++) {
        int64_t s[NB_MAX_DIMS];
        int k = nb_broadcast_shape(*nd, shape, in[i]->ndim, in[i]->shape, s);
        if (k < 0) {
            nb_tensor first;
            nb_tensor_wrap(&first, in[0]->dtype, *nd, shape, NULL);
            nb__fail(tp, NB_ERR_SHAPE, "nb_%s: shapes %s and %s do not broadcast", op,
                     NB_SHP(i == 1 ? in[0] : &first), NB_SHP(in[i]));
            return 0;
        }
        *nd = k;
        for (int d = 0; d < k; d++) shape[d] = s[d];
    }
    for (int i = 0; i < n; i++)
        if (!(in[i] = nb_expand(tp, in[i], *nd, shape))) return 0;
    return 1;
}

static nb_tensor *binary(nb_tape *tp, nb_op_id op, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[2] = {a, b};
    int nd;
    int64_t shape[NB_MAX_DIMS];
    if (!broadcast_inputs(tp, nb_ops[op].name, 2, in, &nd, shape)) return NULL;
    nb_node n = {.op = op, .nin = 2, .in = {in[0], in[1]}};
    return nb__apply(tp, &n, nd, shape, 0);
}

nb_tensor *nb_add(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, NB_OP_ADD, a, b); }
nb_tensor *nb_sub(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, NB_OP_SUB, a, b); }
nb_tensor *nb_mul(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, NB_OP_MUL, a, b); }
nb_tensor *nb_div(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, NB_OP_DIV, a, b); }

/* ---- where -------------------------------------------------------------------------------- */

nb_status nb_fwd_where(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(NB_EW_WHERE, n->out, n->in[0], n->in[1], n->in[2], 0, 0);
    return NB_OK;
}

void nb_bwd_where(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[1]), *gb = nb__grad(tp, n->in[2]);
    if (ga) nb_ew(NB_EW_ACC_MASK, ga, n->out->grad, n->in[0], NULL, 1, 0);
    if (gb) nb_ew(NB_EW_ACC_MASK, gb, n->out->grad, n->in[0], NULL, 0, 0);
}

nb_tensor *nb_where(nb_tape *tp, nb_tensor *mask, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[3] = {mask ? nb_detach(tp, mask) : NULL, a, b};
    int nd;
    int64_t shape[NB_MAX_DIMS];
    if (!broadcast_inputs(tp, "where", 3, in, &nd, shape)) return NULL;
    nb_node n = {.op = NB_OP_WHERE, .nin = 3, .in = {in[0], in[1], in[2]}};
    return nb__apply(tp, &n, nd, shape, 0);
}

nb_tensor *nb_greater(nb_tape *tp, nb_tensor *a, nb_tensor *b)
{
    /* a constant: computed on detached inputs, so nothing is recorded */
    nb_tensor *in[2] = {a ? nb_detach(tp, a) : NULL, b ? nb_detach(tp, b) : NULL};
    int nd;
    int64_t shape[NB_MAX_DIMS];
    if (!broadcast_inputs(tp, "greater", 2, in, &nd, shape)) return NULL;
    nb_tensor *y = nb__tensor(tp, in[0]->dtype, nd, shape, 1);
    if (y) nb_ew(NB_EW_GT, y, in[0], in[1], NULL, 0, 0);
    return y;
}
