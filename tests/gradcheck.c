/* tests/gradcheck.c — see gradcheck.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/gradcheck.h"
#include "tests/tap.h"

static double draw(nb_rng *r, const gc_case *c, gc_domain dom)
{
    for (;;) {
        double u = nb_rng_uniform1(r), v;
        switch (dom) {
        case GC_POS: v = 0.2 + 1.8 * u; break;
        case GC_AWAY: v = (0.2 + 1.8 * u) * (nb_rng_uniform1(r) < 0.5 ? -1 : 1); break;
        case GC_UNIT: v = 0.05 + 0.9 * u; break;
        case GC_MASK: v = u < 0.5 ? 0 : 1; break;
        default: v = -2 + 4 * u; break;
        }
        int near = 0;
        for (int k = 0; k < c->nkink; k++) near |= fabs(v - c->kink[k]) < 0.1;
        if (!near) return v;
    }
}

static int differentiable(gc_domain d) { return d != GC_MASK && d != GC_CONST; }

static int64_t numel_of(const gc_input *in)
{
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    return n;
}

static nb_tensor *forward(const gc_case *c, nb_tape *tp, double **x, int grad, nb_tensor **in)
{
    nb_tape_reset(tp);
    nb_tape_set_grad(tp, grad);
    for (int i = 0; i < c->nin; i++) {
        in[i] = nb_tensor_from(tp, NB_F64, c->in[i].ndim, c->in[i].shape, x[i]);
        if (grad && differentiable(c->in[i].dom)) nb_requires_grad(in[i]);
    }
    return c->build(tp, in, c->ctx);
}

/* Σ u·y for the current inputs, recording off. */
static double objective(const gc_case *c, nb_tape *tp, double **x, const double *u)
{
    nb_tensor *in[4];
    nb_tensor *y = forward(c, tp, x, 0, in);
    if (!y) return NAN;
    double f = 0;
    for (int64_t j = 0, n = nb_numel(y); j < n; j++) f += u[j] * nb_get(y, j);
    return f;
}

/* Worst elementwise relative error, with a floor of 1e-3 of the largest entry so that entries
 * near zero are judged against the scale of the gradient, not against their own roundoff. */
static double compare(const double *an, const double *num, int64_t n, double *scale)
{
    double big = 0, worst = 0;
    for (int64_t j = 0; j < n; j++) big = fmax(big, fmax(fabs(an[j]), fabs(num[j])));
    for (int64_t j = 0; j < n; j++) {
        double den = fmax(fmax(fabs(an[j]), fabs(num[j])), 1e-3 * big);
        double e = den > 0 ? fabs(an[j] - num[j]) / den : 0;
        if (!(e <= worst)) worst = e; /* NaN wins */
    }
    *scale = big;
    return worst;
}

/* Fourth-order central difference of the objective along the value *v:
 * (f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h. Its truncation error is O(h⁴), so h can be large
 * enough (1e-3) that rounding in f, which grows like eps·|f|/h, stays near 1e-12. */
static double central(const gc_case *c, nb_tape *tp, double **x, const double *u, double *v)
{
    const double v0 = *v, h = 1e-3 * fmax(1.0, fabs(v0));
    double f[4];
    const double at[4] = {-2, -1, 1, 2};
    for (int k = 0; k < 4; k++) {
        *v = v0 + at[k] * h;
        f[k] = objective(c, tp, x, u);
    }
    *v = v0;
    return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h);
}

static double report(const gc_case *c, const char *what, const double *an, const double *num,
                     int64_t n)
{
    double scale, err = compare(an, num, n, &scale);
    ok(err <= GC_TOL && scale > 0, "%s: d/d %s: max rel err %.2e (|grad| up to %.3g)", c->label,
       what, err, scale);
    return scale > 0 ? err : INFINITY;
}

double gc_run(const gc_case *c, unsigned seed, int covered[GC_MAX_OPS])
{
    nb_rng r = nb_rng_seed(seed);
    nb_tape *tp = nb_tape_new();
    double *x[4] = {0}, *u = NULL, worst = 0;
    for (int i = 0; i < c->nin; i++) {
        int64_t n = numel_of(&c->in[i]);
        x[i] = malloc((size_t)(n ? n : 1) * sizeof(double));
        for (int64_t j = 0; j < n; j++) x[i][j] = draw(&r, c, c->in[i].dom);
    }

    /* analytic: backward from y seeded with a random cotangent u */
    nb_tensor *in[4];
    if (c->params) nb_params_zero_grad(c->params);
    nb_tensor *y = forward(c, tp, x, 1, in);
    if (!y) {
        ok(0, "%s: forward failed: %s", c->label, nb_tape_error(tp));
        worst = INFINITY;
        goto out;
    }
    const int64_t ny = nb_numel(y);
    u = malloc((size_t)(ny ? ny : 1) * sizeof(double));
    for (int64_t j = 0; j < ny; j++) u[j] = draw(&r, c, GC_ANY);
    nb_tensor *seed_t = nb_tensor_from(tp, NB_F64, y->ndim, y->shape, u);
    nb_status st = nb_backward_from(tp, y, seed_t);
    if (st) {
        ok(0, "%s: backward failed: %s", c->label, nb_tape_error(tp));
        worst = INFINITY;
        goto out;
    }
    int seen = 0;
    for (int k = 0; k < tp->n_nodes; k++) seen |= tp->nodes[k].op == (nb_op_id)c->op;
    if (!ok(seen, "%s: op %s is on the tape", c->label, nb_ops[c->op].name)) worst = INFINITY;
    else covered[c->op] = 1;

    /* copy the analytic gradients out before the numeric passes reset the tape */
    double *an[4] = {0};
    for (int i = 0; i < c->nin; i++) {
        if (!differentiable(c->in[i].dom)) continue;
        int64_t n = numel_of(&c->in[i]);
        an[i] = calloc((size_t)(n ? n : 1), sizeof(double));
        if (in[i]->grad) nb_copy_out(in[i]->grad, an[i]);
    }
    int np = c->params ? nb_params_count(c->params) : 0;
    double **anp = calloc((size_t)np + 1, sizeof *anp);
    for (int p = 0; p < np; p++) {
        nb_tensor *t = nb_params_at(c->params, p);
        anp[p] = malloc((size_t)nb_numel(t) * sizeof(double) + 1);
        nb_copy_out(t->grad, anp[p]);
    }

    for (int i = 0; i < c->nin; i++) {
        if (!differentiable(c->in[i].dom)) continue;
        int64_t n = numel_of(&c->in[i]);
        double *num = malloc((size_t)(n ? n : 1) * sizeof(double));
        for (int64_t j = 0; j < n; j++) num[j] = central(c, tp, x, u, &x[i][j]);
        char what[32];
        snprintf(what, sizeof what, "input %d", i + 1);
        worst = fmax(worst, report(c, what, an[i], num, n));
        free(num);
        free(an[i]);
    }
    for (int p = 0; p < np; p++) {
        nb_tensor *t = nb_params_at(c->params, p);
        int64_t n = nb_numel(t);
        double *num = malloc((size_t)n * sizeof(double) + 1);
        for (int64_t j = 0; j < n; j++) num[j] = central(c, tp, x, u, (double *)t->data + j);
        worst = fmax(worst, report(c, t->name, anp[p], num, n));
        free(num);
        free(anp[p]);
    }
    free(anp);
out:
    for (int i = 0; i < c->nin; i++) free(x[i]);
    free(u);
    nb_tape_free(tp);
    return worst;
}
