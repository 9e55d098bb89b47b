/* autograd/gradcheck.c — see nabla/gradcheck.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/gradcheck.h"
#include "tensor/error.h"

/* Gradients below this are zero: roundoff of O(1) values through a few ops stays far below. */
#define ZERO_GRAD 1e-10

static double draw(nb_rng *r, const nb_gradcheck_case *c, const nb_gc_input *in)
{
    for (;;) {
        double u = nb_rng_uniform1(r), v;
        switch (in->dom) {
        case NB_GC_POS: v = 0.2 + 1.8 * u; break;
        case NB_GC_AWAY: v = (0.2 + 1.8 * u) * (nb_rng_uniform1(r) < 0.5 ? -1 : 1); break;
        case NB_GC_UNIT: v = 0.05 + 0.9 * u; break;
        case NB_GC_MASK: v = u < 0.5 ? 0 : 1; break;
        case NB_GC_INDEX: return (double)nb_rng_below(r, (uint64_t)in->index_max);
        default: v = -2 + 4 * u; break;
        }
        int near = 0;
        for (int k = 0; k < c->nkink; k++) near |= fabs(v - c->kink[k]) < 0.1;
        if (!near) return v;
    }
}

static int differentiable(nb_gc_domain d)
{
    return d != NB_GC_MASK && d != NB_GC_CONST && d != NB_GC_INDEX;
}

static int64_t numel_of(const nb_gc_input *in)
{
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    return n;
}

typedef struct run {
    const nb_gradcheck_case *c;
    nb_tape *tp;
    double *x[NB_GC_MAX_IN], *u;
    int64_t ny;
} run;

/* Gives the NB_GC_DISTINCT inputs the points of one grid 0.02 apart or more, shuffled. */
static nb_status draw_distinct(run *R, nb_rng *rng)
{
    const nb_gradcheck_case *c = R->c;
    int64_t total = 0;
    for (int i = 0; i < c->nin; i++)
        if (c->in[i].dom == NB_GC_DISTINCT) total += numel_of(&c->in[i]);
    if (!total) return NB_OK;
    double *grid = malloc((size_t)total * sizeof *grid);
    if (!grid) return NB_ERR_NOMEM;
    const double span = fmax(4.0, 0.02 * (double)total);
    for (int64_t k = 0; k < total; k++) grid[k] = -span / 2 + span * ((double)k + 0.5) / (double)total;
    for (int64_t k = total - 1; k > 0; k--) { /* Fisher-Yates */
        const int64_t j = (int64_t)nb_rng_below(rng, (uint64_t)k + 1);
        const double t = grid[k];
        grid[k] = grid[j], grid[j] = t;
    }
    int64_t at = 0;
    for (int i = 0; i < c->nin; i++)
        if (c->in[i].dom == NB_GC_DISTINCT)
            for (int64_t j = 0, n = numel_of(&c->in[i]); j < n; j++) R->x[i][j] = grid[at++];
    free(grid);
    return NB_OK;
}

static nb_tensor *forward(run *R, int grad, nb_tensor **in)
{
    const nb_gradcheck_case *c = R->c;
    nb_tape_reset(R->tp);
    nb_tape_set_grad(R->tp, grad);
    for (int i = 0; i < c->nin; i++) {
        in[i] = nb_tensor_from(R->tp, NB_F64, c->in[i].ndim, c->in[i].shape, R->x[i], numel_of(&c->in[i]));
        if (grad && differentiable(c->in[i].dom)) nb_requires_grad(in[i]);
    }
    return c->build(R->tp, in, c->ctx);
}

/* Σ u·y for the current inputs, recording off; NaN when the build fails. */
static double objective(run *R)
{
    nb_tensor *in[NB_GC_MAX_IN];
    nb_tensor *y = forward(R, 0, in);
    if (!y || nb_numel(y) != R->ny) return NAN;
    double f = 0;
    for (int64_t j = 0; j < R->ny; j++) f += R->u[j] * nb_get(y, j);
    return f;
}

/* Fourth-order central difference of the objective along the value *v. */
static double central(run *R, double *v)
{
    const double v0 = *v, h = 1e-3 * fmax(1.0, fabs(v0));
    static const double at[4] = {-2, -1, 1, 2};
    double f[4];
    for (int k = 0; k < 4; k++) {
        *v = v0 + at[k] * h;
        f[k] = objective(R);
    }
    *v = v0;
    return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h);
}

/* Compares the analytic gradient an (n values) with central differences at the elements picked
 * by max_elems, moving each value of data in turn. */
static void check_tensor(run *R, const char *what, const double *an, double *data, int64_t n,
                         int zero, nb_gc_report *rep)
{
    const nb_gradcheck_case *c = R->c;
    const double tol = c->tol > 0 ? c->tol : 1e-6;
    const int64_t m = c->max_elems > 0 && c->max_elems < n ? c->max_elems : n;
    memset(rep, 0, sizeof *rep);
    snprintf(rep->what, sizeof rep->what, "%s", what);
    double *num = calloc((size_t)(m ? m : 1), sizeof *num);
    int64_t *at = calloc((size_t)(m ? m : 1), sizeof *at);
    if (!num || !at) {
        free(num), free(at);
        snprintf(rep->reason, sizeof rep->reason, "out of memory");
        rep->max_rel_err = INFINITY;
        return;
    }
    double big_an = 0, big_num = 0;
    for (int64_t k = 0; k < m; k++) {
        at[k] = m == n ? k : k * n / m;
        num[k] = central(R, &data[at[k]]);
        big_an = fmax(big_an, fabs(an[at[k]]));
        big_num = fmax(big_num, fabs(num[k]));
    }
    const double big = fmax(big_an, big_num);
    rep->checked = m;
    rep->max_abs = big;
    double worst = 0;
    int64_t wk = 0;
    for (int64_t k = 0; k < m; k++) {
        /* relative, with a floor of 1e-3 of the largest entry: entries near zero are judged
         * against the scale of the gradient, not against their own roundoff */
        const double a = an[at[k]], d = num[k];
        const double den = fmax(fmax(fabs(a), fabs(d)), 1e-3 * big);
        const double e = den > 0 ? fabs(a - d) / den : 0;
        if (!(e <= worst)) worst = e, wk = k; /* NaN wins */
    }
    rep->max_rel_err = worst;
    if (m) rep->worst = at[wk], rep->analytic = an[at[wk]], rep->numeric = num[wk];
    if (m == 0) {
        rep->ok = 1; /* an empty tensor has no gradient to be wrong */
    } else if (zero) {
        rep->ok = big < ZERO_GRAD;
        rep->max_rel_err = rep->ok ? 0 : INFINITY;
        if (!rep->ok)
            snprintf(rep->reason, sizeof rep->reason, "meant to be zero, but the analytic "
                     "gradient reaches %.3g and the numeric %.3g", big_an, big_num);
    } else if (big < ZERO_GRAD) {
        rep->max_rel_err = INFINITY;
        snprintf(rep->reason, sizeof rep->reason, "no gradient reaches it: analytic and numeric "
                 "are both zero (set .zero if that is meant)");
    } else if (big_num < ZERO_GRAD) {
        rep->max_rel_err = INFINITY;
        snprintf(rep->reason, sizeof rep->reason, "the numeric gradient is zero, but backward "
                 "gives up to %.3g (element %lld: %.6g)", big_an, (long long)rep->worst,
                 rep->analytic);
    } else if (big_an < ZERO_GRAD) {
        rep->max_rel_err = INFINITY;
        snprintf(rep->reason, sizeof rep->reason, "backward gives no gradient, but the numeric "
                 "one reaches %.3g", big_num);
    } else if (!(worst <= tol)) {
        snprintf(rep->reason, sizeof rep->reason, "element %lld: analytic %.9g, numeric %.9g "
                 "(relative error %.2e > %.0e)", (long long)rep->worst, rep->analytic,
                 rep->numeric, worst, tol);
    } else {
        rep->ok = 1;
    }
    free(num);
    free(at);
}

static nb_status refuse(nb_gradcheck_result *r, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static nb_status refuse(nb_gradcheck_result *r, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->ok = 0;
    r->worst = INFINITY;
    return nb_error(st, "%s", r->error);
}

static nb_status validate(const nb_gradcheck_case *c, nb_gradcheck_result *r)
{
    const char *label = c->label ? c->label : "gradient check";
    if (!c->build) return refuse(r, NB_ERR_ARG, "nb_gradcheck: %s: no build function", label);
    if (c->nin < 0 || c->nin > NB_GC_MAX_IN)
        return refuse(r, NB_ERR_ARG, "nb_gradcheck: %s: nin must be 0 to %d", label, NB_GC_MAX_IN);
    if (c->nkink < 0 || c->nkink > NB_GC_MAX_KINKS)
        return refuse(r, NB_ERR_ARG, "nb_gradcheck: %s: nkink must be 0 to %d", label, NB_GC_MAX_KINKS);
    for (int i = 0; i < c->nin; i++) {
        const nb_gc_input *in = &c->in[i];
        int ok = in->ndim >= 0 && in->ndim <= NB_MAX_DIMS;
        for (int d = 0; ok && d < in->ndim; d++) ok = in->shape[d] >= 0 && in->shape[d] <= 1 << 20;
        if (ok && numel_of(in) > 1 << 24) ok = 0;
        if (!ok) return refuse(r, NB_ERR_SHAPE, "nb_gradcheck: %s: input %d has a bad shape", label, i + 1);
        if (in->dom == NB_GC_INDEX && in->index_max < 1)
            return refuse(r, NB_ERR_ARG, "nb_gradcheck: %s: input %d is an index without index_max",
                          label, i + 1);
    }
    if (c->params && nb_params_dtype(c->params) != NB_F64)
        return refuse(r, NB_ERR_DTYPE, "nb_gradcheck: %s: the parameters are %s; the check "
                      "needs an f64 store", label, nb_dtype_name(nb_params_dtype(c->params)));
    return NB_OK;
}

nb_status nb_gradcheck(const nb_gradcheck_case *c, nb_gradcheck_result *r)
{
    if (!r) return nb_error(NB_ERR_ARG, "nb_gradcheck: the result is NULL");
    memset(r, 0, sizeof *r);
    if (!c) return refuse(r, NB_ERR_ARG, "nb_gradcheck: the case is NULL");
    nb_status st = validate(c, r);
    if (st) return st;
    const char *label = c->label ? c->label : "gradient check";
    const int np = c->params ? nb_params_count(c->params) : 0;
    run R = {.c = c, .tp = nb_tape_new()};
    double **anp = calloc((size_t)np + 1, sizeof *anp), *an[NB_GC_MAX_IN] = {0};
    if (!R.tp || !anp) {
        st = refuse(r, NB_ERR_NOMEM, "nb_gradcheck: %s: out of memory", label);
        goto out;
    }
    nb_rng rng = nb_rng_seed(c->seed ? c->seed : 1);
    for (int i = 0; i < c->nin; i++) {
        const int64_t n = numel_of(&c->in[i]);
        if (!(R.x[i] = malloc((size_t)(n ? n : 1) * sizeof(double)))) {
            st = refuse(r, NB_ERR_NOMEM, "nb_gradcheck: %s: out of memory", label);
            goto out;
        }
        for (int64_t j = 0; j < n; j++) R.x[i][j] = draw(&rng, c, &c->in[i]);
    }
    if ((st = draw_distinct(&R, &rng))) {
        refuse(r, st, "nb_gradcheck: %s: out of memory", label);
        goto out;
    }

    /* analytic: backward from y seeded with a random cotangent u */
    nb_tensor *in[NB_GC_MAX_IN];
    if (c->params) nb_params_zero_grad(c->params);
    nb_tensor *y = forward(&R, 1, in);
    if (!y) {
        st = refuse(r, nb_tape_status(R.tp) ? nb_tape_status(R.tp) : NB_ERR_ARG,
                    "nb_gradcheck: %s: the forward failed: %s", label, nb_tape_error(R.tp));
        goto out;
    }
    if (y->dtype != NB_F64) {
        st = refuse(r, NB_ERR_DTYPE, "nb_gradcheck: %s: the output is %s, not f64", label,
                    nb_dtype_name(y->dtype));
        goto out;
    }
    R.ny = nb_numel(y);
    if (!(R.u = malloc((size_t)(R.ny ? R.ny : 1) * sizeof(double)))) {
        st = refuse(r, NB_ERR_NOMEM, "nb_gradcheck: %s: out of memory", label);
        goto out;
    }
    const nb_gc_input any = {.dom = NB_GC_ANY};
    for (int64_t j = 0; j < R.ny; j++) R.u[j] = draw(&rng, c, &any);
    nb_tensor *seed = nb_tensor_from(R.tp, NB_F64, y->ndim, y->shape, R.u, R.ny);
    if (nb_backward_from(R.tp, y, seed)) {
        st = refuse(r, nb_tape_status(R.tp), "nb_gradcheck: %s: the backward failed: %s", label,
                    nb_tape_error(R.tp));
        goto out;
    }
    for (int k = 0; k < nb_tape_size(R.tp); k++) {
        const nb_op_def *op = nb_tape_node(R.tp, k)->op;
        if (!nb_gradcheck_saw(r, op) && r->nops < NB_GC_MAX_OPS) r->ops[r->nops++] = op;
    }

    /* copy the analytic gradients out before the numeric passes reset the tape */
    for (int i = 0; i < c->nin; i++) {
        if (!differentiable(c->in[i].dom)) continue;
        const int64_t n = numel_of(&c->in[i]);
        if (!(an[i] = calloc((size_t)(n ? n : 1), sizeof(double)))) {
            st = refuse(r, NB_ERR_NOMEM, "nb_gradcheck: %s: out of memory", label);
            goto out;
        }
        if (in[i]->grad) nb_copy_out(in[i]->grad, an[i], nb_numel(in[i]->grad));
    }
    for (int p = 0; p < np; p++) {
        nb_tensor *t = nb_params_at(c->params, p);
        if (!(anp[p] = calloc((size_t)nb_numel(t) + 1, sizeof(double)))) {
            st = refuse(r, NB_ERR_NOMEM, "nb_gradcheck: %s: out of memory", label);
            goto out;
        }
        if (t->grad) nb_copy_out(t->grad, anp[p], nb_numel(t));
    }

    r->ok = 1;
    for (int i = 0; i < c->nin; i++) {
        if (!differentiable(c->in[i].dom)) continue;
        char what[32];
        snprintf(what, sizeof what, "input %d", i + 1);
        nb_gc_report rep;
        check_tensor(&R, what, an[i], R.x[i], numel_of(&c->in[i]), c->in[i].zero, &rep);
        r->ok &= rep.ok;
        r->worst = fmax(r->worst, rep.max_rel_err);
        if (r->n < NB_GC_MAX_REPORTS) r->report[r->n++] = rep;
    }
    for (int p = 0; p < np; p++) {
        nb_tensor *t = nb_params_at(c->params, p);
        nb_gc_report rep;
        check_tensor(&R, t->name, anp[p], t->data, nb_numel(t), 0, &rep);
        r->ok &= rep.ok;
        r->worst = fmax(r->worst, rep.max_rel_err);
        if (r->n < NB_GC_MAX_REPORTS) r->report[r->n++] = rep;
    }
    if (c->op && !nb_gradcheck_saw(r, c->op)) {
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "nb_gradcheck: %s: op %s is not on the tape", label,
                 c->op->name ? c->op->name : "(unnamed)");
    }
out:
    for (int i = 0; i < NB_GC_MAX_IN; i++) free(R.x[i]), free(an[i]);
    for (int p = 0; anp && p < np; p++) free(anp[p]);
    free(anp);
    free(R.u);
    nb_tape_free(R.tp);
    return st;
}

int nb_gradcheck_saw(const nb_gradcheck_result *r, const nb_op_def *op)
{
    for (int k = 0; r && k < r->nops; k++)
        if (r->ops[k] == op) return 1;
    return 0;
}
