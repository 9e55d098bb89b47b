/* nn/loss.c — BCE with logits, MSE, Gaussian NLL and analytic KL, each one fused op.
 *
 * Every loss computes its per-element terms with one kernel, sums them over every dim but the
 * batch and reduces over the batch (n->s[0] holds the batch scale: 1, or 1/B for the mean).
 * Backward reads the upstream gradient as a view broadcast to the inputs' shape (stride 0 over
 * the summed dims) and adds each input's derivative with one kernel.
 */
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

/* Each loss's descriptor data: the kernel of its per-element terms. */
static nb_status fwd_loss(nb_tape *tp, nb_node *n)
{
    const nb_tensor *a = n->in[0], *b = n->in[1];
    const nb_ew_id kernel = *(const nb_ew_id *)n->op->data;
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
    nb_tensor g = upstream(n, n->in[0]);
    nb_tensor *g0 = nb_op_grad(tp, n, 0), *g1 = nb_op_grad(tp, n, 1);
    switch (*(const nb_ew_id *)n->op->data) {
    case NB_EW_BCE: /* d/dl = σ(l) - t, d/dt = -l */
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
