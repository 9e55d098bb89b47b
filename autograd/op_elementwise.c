/* autograd/op_elementwise.c — unary maths, binary arithmetic, where.
 *
 * Ops that share code share a forward and a backward and tell themselves apart by their
 * descriptor's data: the row kernels they run (tensor/ew.def).
 */
#include <math.h>

#include "autograd/tape.h"

/* ---- unary: one row per op ---------------------------------------------------------------- */

/* fwd: y = f(x; s0, s1). bwd: gx += g(gy, v; s0, s1) with v = y when uses_out, else x. */
typedef struct unary_spec {
    nb_ew_id fwd, bwd;
    int uses_out;
} unary_spec;

static nb_status fwd_unary(nb_tape *tp, nb_node *n)
{
    (void)tp;
    const unary_spec *sp = n->op->data;
    nb_ew(sp->fwd, n->out, n->in[0], NULL, NULL, n->s[0], n->s[1]);
    return NB_OK;
}

static nb_status bwd_unary(nb_tape *tp, nb_node *n)
{
    const unary_spec *sp = n->op->data;
    nb_tensor *gx = nb__grad(tp, n->in[0]);
    if (gx) nb_ew(sp->bwd, gx, n->out->grad, sp->uses_out ? n->out : n->in[0], NULL, n->s[0], n->s[1]);
    return NB_OK;
}

#define UNARY(name_, fwd_, bwd_, uses_out_)                                                  \
    const nb_op_def nb__op_##name_ = {.name = #name_, .forward = fwd_unary,                  \
                                      .backward = bwd_unary,                                 \
                                      .data = &(const unary_spec){NB_EW_##fwd_, NB_EW_##bwd_, uses_out_}};

UNARY(neg, SCALE, ACC_SCALE, 0)          /* s0 = -1 */
UNARY(scale, SCALE, ACC_SCALE, 0)        /* gx += s0·gy */
UNARY(add_scalar, ADDS, ACC, 0)
UNARY(exp, EXP, ACC_MUL, 1)              /* gx += gy·y */
UNARY(log, LOG, ACC_DIV, 0)              /* gx += gy/x */
UNARY(log1p, LOG1P, ACC_LOG1PB, 0)       /* gx += gy/(1+x) */
UNARY(sqrt, SQRT, ACC_SQRTB, 1)          /* gx += gy/(2y) */
UNARY(square, SQUARE, ACC_SQUAREB, 0)    /* gx += 2x·gy */
UNARY(tanh, TANH, ACC_TANHB, 1)          /* gx += gy(1-y²) */
UNARY(sigmoid, SIGMOID, ACC_SIGMOIDB, 1) /* gx += gy·y(1-y) */
UNARY(relu, RELU, ACC_RELUB, 1)          /* y > 0 exactly where x > 0 */
UNARY(softplus, SOFTPLUS, ACC_MULSIG, 0)       /* gx += gy·σ(x), s0 = 1 */
UNARY(log_sigmoid, LOGSIGMOID, ACC_MULSIG, 0)  /* gx += gy·σ(-x), s0 = -1 */
UNARY(clamp, CLAMP, ACC_CLAMPB, 0)       /* gradient passes inside [lo, hi] */
UNARY(leaky_relu, LEAKY_RELU, ACC_LEAKYB, 0)
UNARY(elu, ELU, ACC_ELUB, 1)             /* below 0, dy/dx = y + alpha */
UNARY(gelu, GELU, ACC_GELUB, 0)

static nb_tensor *unary(nb_tape *tp, const nb_op_def *op, nb_tensor *a, double s0, double s1)
{
    return nb_op_apply(tp, op, &(nb_node){.nin = 1, .in = {a}, .s = {s0, s1}});
}

nb_tensor *nb_neg(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_neg, a, -1, 0); }
nb_tensor *nb_scale(nb_tape *tp, nb_tensor *a, double s) { return unary(tp, &nb__op_scale, a, s, 0); }
nb_tensor *nb_add_scalar(nb_tape *tp, nb_tensor *a, double s) { return unary(tp, &nb__op_add_scalar, a, s, 0); }
nb_tensor *nb_exp(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_exp, a, 0, 0); }
nb_tensor *nb_log(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_log, a, 0, 0); }
nb_tensor *nb_log1p(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_log1p, a, 0, 0); }
nb_tensor *nb_sqrt(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_sqrt, a, 0, 0); }
nb_tensor *nb_square(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_square, a, 0, 0); }
nb_tensor *nb_tanh(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_tanh, a, 0, 0); }
nb_tensor *nb_sigmoid(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_sigmoid, a, 0, 0); }
nb_tensor *nb_relu(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_relu, a, 0, 0); }
nb_tensor *nb_softplus(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_softplus, a, 1, 0); }
nb_tensor *nb_log_sigmoid(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_log_sigmoid, a, -1, 0); }

nb_tensor *nb_leaky_relu(nb_tape *tp, nb_tensor *a, double slope) { return unary(tp, &nb__op_leaky_relu, a, slope, 0); }
nb_tensor *nb_gelu(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_gelu, a, 0, 0); }

nb_tensor *nb_elu(nb_tape *tp, nb_tensor *a, double alpha)
{
    if (!(alpha > 0)) { /* the backward reads the sign of x off the output */
        nb__fail(tp, NB_ERR_ARG, "nb_elu: alpha must be positive, got %g", alpha);
        return NULL;
    }
    return unary(tp, &nb__op_elu, a, alpha, 0);
}

nb_tensor *nb_clamp(nb_tape *tp, nb_tensor *a, double lo, double hi)
{
    if (!(lo <= hi)) { /* also catches NaN bounds */
        nb__fail(tp, NB_ERR_ARG, "nb_clamp: lower bound %g above upper bound %g", lo, hi);
        return NULL;
    }
    return unary(tp, &nb__op_clamp, a, lo, hi);
}

/* ---- binary ------------------------------------------------------------------------------- */
/* NB_OP_BROADCAST: inputs arrive expanded to one shape, so kernels and backward never see
 * broadcasting; the expand op's backward sums the gradients back. */

static nb_status fwd_binary(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(*(const nb_ew_id *)n->op->data, n->out, n->in[0], n->in[1], NULL, 0, 0);
    return NB_OK;
}

static nb_status bwd_binary(nb_tape *tp, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *gy = n->out->grad;
    nb_tensor *ga = nb__grad(tp, a), *gb = nb__grad(tp, b);
    switch (*(const nb_ew_id *)n->op->data) {
    case NB_EW_ADD:
        if (ga) nb_ew(NB_EW_ACC, ga, gy, NULL, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC, gb, gy, NULL, NULL, 0, 0);
        break;
    case NB_EW_SUB:
        if (ga) nb_ew(NB_EW_ACC, ga, gy, NULL, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_SCALE, gb, gy, NULL, NULL, -1, 0);
        break;
    case NB_EW_MUL:
        if (ga) nb_ew(NB_EW_ACC_MUL, ga, gy, b, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_MUL, gb, gy, a, NULL, 0, 0);
        break;
    case NB_EW_DIV: /* d(a/b)/db = -a/b² */
        if (ga) nb_ew(NB_EW_ACC_DIV, ga, gy, b, NULL, 0, 0);
        if (gb) nb_ew(NB_EW_ACC_DIVB, gb, gy, a, b, 0, 0);
        break;
    default: break;
    }
    return NB_OK;
}

#define BINARY(name_, kernel_)                                                               \
    const nb_op_def nb__op_##name_ = {.name = #name_, .flags = NB_OP_BROADCAST,              \
                                      .forward = fwd_binary, .backward = bwd_binary,         \
                                      .data = &(const nb_ew_id){NB_EW_##kernel_}};
BINARY(add, ADD)
BINARY(sub, SUB)
BINARY(mul, MUL)
BINARY(div, DIV)

static nb_tensor *binary(nb_tape *tp, const nb_op_def *op, nb_tensor *a, nb_tensor *b)
{
    return nb_op_apply(tp, op, &(nb_node){.nin = 2, .in = {a, b}});
}

nb_tensor *nb_add(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_add, a, b); }
nb_tensor *nb_sub(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_sub, a, b); }
nb_tensor *nb_mul(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_mul, a, b); }
nb_tensor *nb_div(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_div, a, b); }

/* ---- where, greater ----------------------------------------------------------------------- */

static nb_status fwd_where(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(NB_EW_WHERE, n->out, n->in[0], n->in[1], n->in[2], 0, 0);
    return NB_OK;
}

static nb_status bwd_where(nb_tape *tp, nb_node *n)
{
    nb_tensor *ga = nb__grad(tp, n->in[1]), *gb = nb__grad(tp, n->in[2]);
    if (ga) nb_ew(NB_EW_ACC_MASK, ga, n->out->grad, n->in[0], NULL, 1, 0);
    if (gb) nb_ew(NB_EW_ACC_MASK, gb, n->out->grad, n->in[0], NULL, 0, 0);
    return NB_OK;
}

const nb_op_def nb__op_where = {.name = "where", .flags = NB_OP_BROADCAST, .forward = fwd_where,
                                .backward = bwd_where};

nb_tensor *nb_where(nb_tape *tp, nb_tensor *mask, nb_tensor *a, nb_tensor *b)
{
    /* the mask is a constant: detached, it gets no gradient */
    return nb_op_apply(tp, &nb__op_where, &(nb_node){.nin = 3, .in = {mask ? nb_detach(tp, mask) : NULL, a, b}});
}

static nb_status fwd_greater(nb_tape *tp, nb_node *n)
{
    (void)tp;
    nb_ew(NB_EW_GT, n->out, n->in[0], n->in[1], NULL, 0, 0);
    return NB_OK;
}

/* no backward: a constant mask, never recorded */
const nb_op_def nb__op_greater = {.name = "greater", .flags = NB_OP_BROADCAST, .forward = fwd_greater};

nb_tensor *nb_greater(nb_tape *tp, nb_tensor *a, nb_tensor *b)
{
    return nb_op_apply(tp, &nb__op_greater,
                       &(nb_node){.nin = 2, .in = {a ? nb_detach(tp, a) : NULL, b ? nb_detach(tp, b) : NULL}});
}

/* ---- abs, pow, maximum, minimum ----------------------------------------------------------- */

UNARY(abs, ABS, ACC_SIGNB, 0)  /* the gradient at 0 is 0, as PyTorch's */
UNARY(pow, POW, ACC_POWB, 0)   /* gx += gy·p·x^(p-1), s0 = p */

nb_tensor *nb_abs(nb_tape *tp, nb_tensor *a) { return unary(tp, &nb__op_abs, a, 0, 0); }

nb_tensor *nb_pow(nb_tape *tp, nb_tensor *a, double p)
{
    if (!isfinite(p)) {
        nb__fail(tp, NB_ERR_ARG, "nb_pow: exponent %g is not finite", p);
        return NULL;
    }
    return unary(tp, &nb__op_pow, a, p, 0);
}

/* Ties send half the gradient to each side, as PyTorch does. */
static nb_status bwd_extremum(nb_tape *tp, nb_node *n)
{
    nb_tensor *a = n->in[0], *b = n->in[1], *gy = n->out->grad;
    nb_tensor *ga = nb__grad(tp, a), *gb = nb__grad(tp, b);
    const int is_max = *(const nb_ew_id *)n->op->data == NB_EW_MAX2;
    if (ga) nb_ew(NB_EW_ACC_PICKB, ga, gy, is_max ? a : b, is_max ? b : a, 0, 0);
    if (gb) nb_ew(NB_EW_ACC_PICKB, gb, gy, is_max ? b : a, is_max ? a : b, 0, 0);
    return NB_OK;
}

const nb_op_def nb__op_maximum = {.name = "maximum", .flags = NB_OP_BROADCAST, .forward = fwd_binary,
                                  .backward = bwd_extremum, .data = &(const nb_ew_id){NB_EW_MAX2}};
const nb_op_def nb__op_minimum = {.name = "minimum", .flags = NB_OP_BROADCAST, .forward = fwd_binary,
                                  .backward = bwd_extremum, .data = &(const nb_ew_id){NB_EW_MIN2}};

nb_tensor *nb_maximum(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_maximum, a, b); }
nb_tensor *nb_minimum(nb_tape *tp, nb_tensor *a, nb_tensor *b) { return binary(tp, &nb__op_minimum, a, b); }
