/* tests/test_nn.c — the f32 fast paths against the f64 references, losses against their plain
 * formulas, initialiser bounds, optimizer behaviour that fixtures do not cover. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "autograd/tape.h"
#include "nabla/nn.h"
#include "tests/tap.h"

/* f32 copy of an f64 tensor (same values up to rounding), as a new leaf on tp */
static nb_tensor *to_f32(nb_tape *tp, const nb_tensor *t)
{
    nb_tensor *y = nb_empty(tp, NB_F32, t->ndim, t->shape);
    for (int64_t i = 0; i < nb_numel(t); i++) nb_set(y, i, nb_get(t, i));
    return y;
}

/* max |a - b| / max(max |b|, tiny) */
static double rel_err(const nb_tensor *a, const nb_tensor *b)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < nb_numel(b); i++) {
        e = fmax(e, fabs(nb_get(a, i) - nb_get(b, i)));
        s = fmax(s, fabs(nb_get(b, i)));
    }
    return e / fmax(s, 1e-30);
}

typedef struct conv_case {
    const char *what;
    int transposed, bias;
    int64_t x[4], w[4];
    nb_conv_cfg cfg;
} conv_case;

/* oneDNN f32 forward, backward-data and backward-weights against the f64 loops */
static void test_conv_vs_reference(void)
{
    const conv_case cs[] = {
        {"conv2d 3x5x9x11 k3 s2 p1", 0, 1, {3, 5, 9, 11}, {4, 5, 3, 3}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}}},
        {"conv2d 3x5x9x11 k4 s2 p1 no bias", 0, 0, {3, 5, 9, 11}, {2, 5, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}}},
        {"conv2d 3x5x9x11 k3 s1 p2 dilation 2", 0, 1, {3, 5, 9, 11}, {3, 5, 3, 3}, {{1, 1}, {2, 2}, {0, 0}, {2, 2}}},
        {"conv2d 3x1x28x28 k4 s2 p1 (the AE layer)", 0, 1, {3, 1, 28, 28}, {32, 1, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}}},
        {"conv_transpose2d 3x5x9x11 k3 s2 p1 op1", 1, 1, {3, 5, 9, 11}, {5, 4, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, {1, 1}}},
        {"conv_transpose2d 3x5x9x11 k4 s2 p1", 1, 1, {3, 5, 9, 11}, {5, 2, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}}},
        {"conv_transpose2d 3x5x9x11 k3 s3 p1 op2", 1, 0, {3, 5, 9, 11}, {5, 4, 3, 3}, {{3, 3}, {1, 1}, {2, 2}, {1, 1}}},
        {"conv_transpose2d 3x5x9x11 k3 s2 p0 op1 dilation 2", 1, 1, {3, 5, 9, 11}, {5, 3, 3, 3}, {{2, 2}, {0, 0}, {1, 1}, {2, 2}}},
        {"conv_transpose2d 3x64x7x7 k4 s2 p1 (the AE layer)", 1, 1, {3, 64, 7, 7}, {64, 32, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}}},
    };
    nb_tape *t64 = nb_tape_new(), *t32 = nb_tape_new();
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        const conv_case *c = &cs[k];
        nb_tape_reset(t64);
        nb_tape_reset(t32);
        nb_rng r = nb_rng_seed(100 + k);
        nb_tensor *x = nb_requires_grad(nb_uniform(t64, &r, NB_F64, 4, c->x, -1, 1));
        nb_tensor *w = nb_requires_grad(nb_uniform(t64, &r, NB_F64, 4, c->w, -1, 1));
        const int64_t O = c->transposed ? c->w[1] : c->w[0];
        nb_tensor *b = c->bias ? nb_requires_grad(nb_uniform(t64, &r, NB_F64, NB_SHAPE(O), -1, 1)) : NULL;
        nb_tensor *x32 = nb_requires_grad(to_f32(t32, x)), *w32 = nb_requires_grad(to_f32(t32, w));
        nb_tensor *b32 = b ? nb_requires_grad(to_f32(t32, b)) : NULL;
        /* round the f64 inputs to the f32 values, so both see the same numbers */
        for (int64_t i = 0; i < nb_numel(x); i++) nb_set(x, i, nb_get(x32, i));
        for (int64_t i = 0; i < nb_numel(w); i++) nb_set(w, i, nb_get(w32, i));
        if (b) for (int64_t i = 0; i < nb_numel(b); i++) nb_set(b, i, nb_get(b32, i));
        nb_tensor *y = c->transposed ? nb_conv_transpose2d(t64, x, w, b, c->cfg) : nb_conv2d(t64, x, w, b, c->cfg);
        nb_tensor *y32 = c->transposed ? nb_conv_transpose2d(t32, x32, w32, b32, c->cfg)
                                       : nb_conv2d(t32, x32, w32, b32, c->cfg);
        if (!ok(y && y32, "%s: runs (%s%s)", c->what, nb_tape_error(t64), nb_tape_error(t32))) continue;
        nb_tensor *u = nb_uniform(t64, &r, NB_F64, y->ndim, y->shape, -1, 1);
        nb_tensor *u32 = to_f32(t32, u);
        for (int64_t i = 0; i < nb_numel(u); i++) nb_set(u, i, nb_get(u32, i));
        nb_status s1 = nb_backward_from(t64, y, u), s2 = nb_backward_from(t32, y32, u32);
        const double ey = rel_err(y32, y), ex = rel_err(x32->grad, x->grad), ew = rel_err(w32->grad, w->grad);
        const double eb = b ? rel_err(b32->grad, b->grad) : 0;
        ok(!s1 && !s2 && ey < 1e-5 && ex < 1e-5 && ew < 1e-5 && eb < 1e-5,
           "%s: oneDNN f32 = f64 loops: y %.1e, dx %.1e, dw %.1e, db %.1e", c->what, ey, ex, ew, eb);
    }
    nb_tape_free(t64);
    nb_tape_free(t32);
}

/* The same x through two convolutions of one shape (so one set of cached primitives) with
 * different weights: the backward of the first runs after the second forward, so it must not
 * reuse the forward's reordered buffers, and both add into x's gradient. */
/* A fused op against its unfused twin, values and gradients: the first run (fused = 0) keeps
 * got[0..4) in keep (n values each); the second returns its largest relative difference from
 * them, INFINITY where a tensor is missing. */
static double keep_or_compare(nb_tensor *const got[4], int fused, double *keep[4], int64_t n[4])
{
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        if (!got[i]) {
            worst = INFINITY;
            continue;
        }
        if (!fused) {
            n[i] = nb_numel(got[i]);
            keep[i] = malloc(sizeof(double) * (size_t)n[i]);
            for (int64_t j = 0; j < n[i]; j++) keep[i][j] = nb_get(got[i], j);
        } else {
            for (int64_t j = 0; j < n[i] && j < nb_numel(got[i]); j++)
                worst = fmax(worst, fabs(nb_get(got[i], j) - keep[i][j]) / fmax(1, fabs(keep[i][j])));
        }
    }
    return worst;
}

/* The fused ReLU (a oneDNN post-op, and the mask in backward) against a convolution then nb_relu,
 * in f32: the same values and gradients. */
static void test_conv_relu_fused(void)
{
    for (int t = 0; t < 2; t++) {
        double worst = 0;
        double *keep[4] = {0};
        int64_t n[4] = {0};
        for (int fused = 0; fused < 2; fused++) {
            nb_tape *tp = nb_tape_new();
            nb_rng r = nb_rng_seed(8);
            nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(3, 4, 10, 10), -1, 1));
            nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(4, 6, 4, 4), -0.3, 0.3));
            nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(6), -0.3, 0.3));
            const nb_conv_cfg c = nb_conv(2, 1);
            nb_tensor *y = fused ? (t ? nb_conv_transpose2d_relu(tp, x, w, b, c) : nb_conv2d_relu(tp, x, nb_transpose(tp, w, 0, 1), b, c))
                                 : nb_relu(tp, t ? nb_conv_transpose2d(tp, x, w, b, c) : nb_conv2d(tp, x, nb_transpose(tp, w, 0, 1), b, c));
            nb_tensor *u = y ? nb_uniform(tp, &r, NB_F32, y->ndim, y->shape, -1, 1) : NULL;
            nb_backward(tp, nb_sum_all(tp, nb_mul(tp, y, u)));
            worst = fmax(worst, keep_or_compare((nb_tensor *[4]){y, x->grad, w->grad, b->grad}, fused, keep, n));
            nb_tape_free(tp);
        }
        for (int i = 0; i < 4; i++) free(keep[i]);
        ok(worst < 1e-5, "%s with a fused ReLU equals the convolution then nb_relu in f32 (values and "
           "gradients within %.1e)", t ? "conv_transpose2d" : "conv2d", worst);
    }
}

/* The fused ReLU of nb_linear_relu (in place on the product, the mask in backward)
 * against nb_linear then nb_relu, in f32 and f64: the same values and gradients. */
static void test_linear_relu_fused(void)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        double worst = 0;
        double *keep[4] = {0};
        int64_t n[4] = {0};
        for (int fused = 0; fused < 2; fused++) {
            nb_tape *tp = nb_tape_new();
            nb_rng r = nb_rng_seed(9);
            nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(37, 50), -1, 1));
            nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(29, 50), -0.3, 0.3));
            nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(29), -0.3, 0.3));
            nb_tensor *y = fused ? nb_linear_relu(tp, x, w, b) : nb_relu(tp, nb_linear(tp, x, w, b));
            nb_tensor *u = y ? nb_uniform(tp, &r, (nb_dtype)dt, y->ndim, y->shape, -1, 1) : NULL;
            nb_backward(tp, nb_sum_all(tp, nb_mul(tp, y, u)));
            worst = fmax(worst, keep_or_compare((nb_tensor *[4]){y, x->grad, w->grad, b->grad}, fused, keep, n));
            nb_tape_free(tp);
        }
        for (int i = 0; i < 4; i++) free(keep[i]);
        ok(worst < (dt == NB_F32 ? 1e-5 : 1e-13), "%s linear with a fused ReLU equals nb_linear then nb_relu "
           "(values and gradients within %.1e)", nb_dtype_name((nb_dtype)dt), worst);
    }
}

static void test_conv_twice(void)
{
    for (int transposed = 0; transposed < 2; transposed++) {
        nb_tape *t64 = nb_tape_new(), *t32 = nb_tape_new();
        nb_rng r = nb_rng_seed(33);
        const nb_conv_cfg cfg = {{2, 2}, {1, 1}, {transposed, transposed}, {1, 1}};
        nb_tensor *x = nb_requires_grad(nb_uniform(t64, &r, NB_F64, NB_SHAPE(3, 5, 9, 11), -1, 1));
        nb_tensor *w1 = nb_requires_grad(nb_uniform(t64, &r, NB_F64, NB_SHAPE(transposed ? 5 : 4, transposed ? 4 : 5, 3, 3), -1, 1));
        nb_tensor *w2 = nb_requires_grad(nb_uniform(t64, &r, NB_F64, NB_SHAPE(transposed ? 5 : 4, transposed ? 4 : 5, 3, 3), -1, 1));
        nb_tensor *x32 = nb_requires_grad(to_f32(t32, x)), *w132 = nb_requires_grad(to_f32(t32, w1));
        nb_tensor *w232 = nb_requires_grad(to_f32(t32, w2));
        for (int64_t i = 0; i < nb_numel(x); i++) nb_set(x, i, nb_get(x32, i));
        for (int64_t i = 0; i < nb_numel(w1); i++) nb_set(w1, i, nb_get(w132, i)), nb_set(w2, i, nb_get(w232, i));
        nb_tensor *(*conv)(nb_tape *, nb_tensor *, nb_tensor *, nb_tensor *, nb_conv_cfg) =
            transposed ? nb_conv_transpose2d : nb_conv2d;
        nb_tensor *y = nb_add(t64, conv(t64, x, w1, NULL, cfg), nb_scale(t64, conv(t64, x, w2, NULL, cfg), 0.5));
        nb_tensor *y32 = nb_add(t32, conv(t32, x32, w132, NULL, cfg), nb_scale(t32, conv(t32, x32, w232, NULL, cfg), 0.5));
        nb_tensor *u = nb_uniform(t64, &r, NB_F64, y->ndim, y->shape, -1, 1), *u32 = to_f32(t32, u);
        for (int64_t i = 0; i < nb_numel(u); i++) nb_set(u, i, nb_get(u32, i));
        nb_status s1 = nb_backward_from(t64, y, u), s2 = nb_backward_from(t32, y32, u32);
        const double ex = rel_err(x32->grad, x->grad), e1 = rel_err(w132->grad, w1->grad), e2 = rel_err(w232->grad, w2->grad);
        ok(!s1 && !s2 && ex < 1e-5 && e1 < 1e-5 && e2 < 1e-5,
           "%s used twice with one shape: gradients add up and stay per node (dx %.1e, dw1 %.1e, dw2 %.1e)",
           transposed ? "conv_transpose2d" : "conv2d", ex, e1, e2);
        nb_tape_free(t64);
        nb_tape_free(t32);
    }
}

/* Convolutions feeding convolutions, as the conv models chain them, in f32 against the f64
 * loops: a step keeps each f32 convolution's output, and the input gradient its backward wrote,
 * in oneDNN's blocked layout for the next convolution (no reorder), so this checks those copies:
 * a transposed convolution's bias and ReLU applied to its blocked output, the ReLU's mask taken
 * on blocked copies, 11 input channels (the conv CVAE's, where the two backward primitives want
 * different layouts), an output read by two nodes (its gradient added to after a convolution
 * wrote it), and a second step on the same tapes, its input without a gradient. */
static nb_tensor *conv_chain(nb_tape *tp, nb_tensor *const p[13])
{
    const nb_conv_cfg s2 = nb_conv(2, 1), one = nb_conv(1, 0);
    nb_tensor *h1 = nb_conv2d_relu(tp, p[0], p[1], p[2], s2); /* 11 -> 32, 28 -> 14 */
    nb_tensor *h2 = nb_conv2d_relu(tp, h1, p[3], p[4], s2);   /* 32 -> 64, 14 -> 7 */
    /* h2 and z have a second reader, made before the convolution that reads them: its backward
     * adds into their gradients after that convolution's wrote them */
    nb_tensor *side = nb_sum_all(tp, nb_square(tp, h2));
    nb_tensor *z = nb_conv2d(tp, h2, p[5], p[6], one); /* 64 -> 16 */
    side = nb_add(tp, side, nb_sum_all(tp, nb_mul(tp, z, z)));
    nb_tensor *g1 = nb_conv2d_relu(tp, z, p[7], p[8], one);            /* 16 -> 64 */
    nb_tensor *g2 = nb_conv_transpose2d_relu(tp, g1, p[9], p[10], s2); /* 64 -> 32, 7 -> 14 */
    nb_tensor *y = nb_conv_transpose2d(tp, g2, p[11], p[12], s2);      /* 32 -> 1, 14 -> 28 */
    return nb_add(tp, nb_sum_all(tp, nb_square(tp, y)), nb_scale(tp, side, 0.01));
}

static void test_conv_chain(void)
{
    const int64_t shp[13][4] = {{3, 11, 28, 28}, {32, 11, 4, 4}, {32}, {64, 32, 4, 4}, {64}, {16, 64, 1, 1},
                                {16}, {64, 16, 1, 1}, {64}, {64, 32, 4, 4}, {32}, {32, 1, 4, 4}, {1}};
    nb_tape *t64 = nb_tape_new(), *t32 = nb_tape_new();
    nb_rng r = nb_rng_seed(44);
    for (int step = 0; step < 2; step++) {
        nb_tape_reset(t64);
        nb_tape_reset(t32);
        nb_tensor *p64[13], *p32[13];
        for (int i = 0; i < 13; i++) {
            const int nd = shp[i][1] ? 4 : 1;
            const double a = i == 0 ? 1 : 0.3;
            p64[i] = nb_uniform(t64, &r, NB_F64, nd, shp[i], -a, a);
            p32[i] = to_f32(t32, p64[i]);
            if (i || !step) /* the second step's input has no gradient, as a model's images */
                nb_requires_grad(p64[i]), nb_requires_grad(p32[i]);
            for (int64_t j = 0; j < nb_numel(p64[i]); j++) nb_set(p64[i], j, nb_get(p32[i], j));
        }
        nb_tensor *l64 = conv_chain(t64, p64), *l32 = conv_chain(t32, p32);
        nb_status s1 = nb_backward(t64, l64), s2 = nb_backward(t32, l32);
        double worst = s1 || s2 ? INFINITY : fabs(nb_get(l32, 0) - nb_get(l64, 0)) / fabs(nb_get(l64, 0));
        int at = -1;
        for (int i = step; i < 13 && !s1 && !s2; i++) {
            const double e = rel_err(p32[i]->grad, p64[i]->grad);
            if (e > worst) worst = e, at = i;
        }
        ok(worst < 2e-5, "a chain of f32 convolutions (blocked copies between them) equals the f64 loops, "
           "step %d: loss and gradients within %.1e (worst: %s) %s%s", step + 1, worst,
           at < 0 ? "the loss" : at == 0 ? "the input" : "a parameter", nb_tape_error(t64), nb_tape_error(t32));
    }
    nb_tape_free(t64);
    nb_tape_free(t32);
}

/* The largest gap between y = x·wᵀ + b (through a ReLU when relu) and plain loops in double, and,
 * when u (y's upstream gradient) is given, between the gradients of x (if it has one), w and b
 * and theirs. */
static double linear_error(const nb_tensor *x, const nb_tensor *w, const nb_tensor *b, const nb_tensor *y,
                           const nb_tensor *u, int relu)
{
    const int64_t M = x->shape[0], I = x->shape[1], O = w->shape[0];
    double *dy = malloc((size_t)(M * O) * sizeof *dy), e = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t o = 0; o < O; o++) {
            double s = nb_get(b, o);
            for (int64_t k = 0; k < I; k++) s += nb_get(x, i * I + k) * nb_get(w, o * I + k);
            dy[i * O + o] = !u || (relu && s <= 0) ? 0 : nb_get(u, i * O + o);
            e = fmax(e, fabs(nb_get(y, i * O + o) - (relu && s < 0 ? 0 : s)));
        }
    for (int64_t i = 0; u && x->grad && i < M; i++)
        for (int64_t k = 0; k < I; k++) {
            double s = 0;
            for (int64_t o = 0; o < O; o++) s += dy[i * O + o] * nb_get(w, o * I + k);
            e = fmax(e, fabs(nb_get(x->grad, i * I + k) - s));
        }
    for (int64_t o = 0; u && o < O; o++) {
        double sb = 0;
        for (int64_t i = 0; i < M; i++) sb += dy[i * O + o];
        e = fmax(e, fabs(nb_get(b->grad, o) - sb));
        for (int64_t k = 0; k < I; k++) {
            double s = 0;
            for (int64_t i = 0; i < M; i++) s += dy[i * O + o] * nb_get(x, i * I + k);
            e = fmax(e, fabs(nb_get(w->grad, o * I + k) - s));
        }
    }
    free(dy);
    return e;
}

static void test_linear_vs_reference(void)
{
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(5);
    nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(13, 29), -1, 1));
    nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(17, 29), -1, 1));
    nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(17), -1, 1));
    nb_tensor *y = nb_linear(tp, x, w, b);
    nb_tensor *u = nb_uniform(tp, &r, NB_F32, NB_SHAPE(13, 17), -1, 1);
    const double e = nb_backward_from(tp, y, u) ? INFINITY : linear_error(x, w, b, y, u, 0);
    ok(e < 1e-5, "linear f32 (13,29)x(17,29)ᵀ+b and its gradients equal plain loops (%.1e)", e);
    nb_tape_free(tp);
}

/* On several threads a batch's Linear is split into shares of rows (forward, dX, the mask) and of
 * output units (dW, the bias): 2 and 3 threads, shares of uneven sizes, f32 and f64, with and
 * without the fused ReLU, every value and gradient against plain loops. */
static void test_linear_split(void)
{
    enum { M = 101, I = 29, O = 17 };
    const int threads = nb_get_threads();
    for (int T = 2; T <= 3; T++)
        for (int dt = NB_F32; dt <= NB_F64; dt++)
            for (int relu = 0; relu < 2; relu++) {
                nb_set_threads(T);
                nb_tape *tp = nb_tape_new();
                nb_rng r = nb_rng_seed(40 + T);
                const int xg = T == 2; /* on 3 threads the input takes no gradient, as a batch's */
                nb_tensor *x = nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(M, I), -1, 1);
                nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(O, I), -1, 1));
                nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(O), -1, 1));
                if (xg) nb_requires_grad(x);
                nb_tensor *y = relu ? nb_linear_relu(tp, x, w, b) : nb_linear(tp, x, w, b);
                nb_tensor *u = nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(M, O), -1, 1);
                const double e = nb_backward_from(tp, y, u) ? INFINITY : linear_error(x, w, b, y, u, relu);
                ok(e < (dt == NB_F64 ? 1e-12 : 2e-5), "%s linear%s (%d,%d)x(%d,%d)ᵀ+b on %d threads, split by rows and "
                   "units: values and gradients%s equal plain loops (%.1e)", nb_dtype_name((nb_dtype)dt),
                   relu ? "_relu" : "", M, I, O, I, T, xg ? "" : " (none for x)", e);
                nb_tape_free(tp);
            }
    nb_set_threads(threads);
}

/* A Linear whose output is large is computed in row blocks on the threads: f32 and f64, with
 * and without the fused ReLU, every row against the plain loop (the last block a short one). */
static void test_linear_blocks(void)
{
    enum { M = 1203, I = 37, O = 300 }; /* blocks of 436 f32 rows, 218 f64: three and six */
    for (int dt = NB_F32; dt <= NB_F64; dt++)
        for (int relu = 0; relu < 2; relu++) {
            nb_tape *tp = nb_tape_new();
            nb_rng r = nb_rng_seed(6);
            nb_tensor *x = nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(M, I), -1, 1);
            nb_tensor *w = nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(O, I), -1, 1);
            nb_tensor *b = nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(O), -1, 1);
            nb_tensor *y = relu ? nb_linear_relu(tp, x, w, b) : nb_linear(tp, x, w, b);
            const double e = y ? linear_error(x, w, b, y, NULL, relu) : INFINITY;
            ok(e < (dt == NB_F64 ? 1e-12 : 2e-5), "%s linear%s (%d,%d)x(%d,%d)ᵀ+b in row blocks equals the plain loop "
               "(%.1e)", nb_dtype_name((nb_dtype)dt), relu ? "_relu" : "", M, I, O, I, e);
            nb_tape_free(tp);
        }
}

/* The fused losses against their textbook formulas, in f64 and f32. */
static void test_losses_vs_formula(void)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_tape *tp = nb_tape_new();
        nb_rng r = nb_rng_seed(21);
        const nb_dtype d = (nb_dtype)dt;
        nb_tensor *l = nb_uniform(tp, &r, d, NB_SHAPE(4, 3, 5), -6, 6);
        nb_tensor *t = nb_uniform(tp, &r, d, NB_SHAPE(4, 3, 5), 0, 1);
        nb_tensor *m = nb_uniform(tp, &r, d, NB_SHAPE(4, 3, 5), -1, 1);
        nb_tensor *lv = nb_uniform(tp, &r, d, NB_SHAPE(3, 5), -2, 2);
        nb_tensor *bce[3], *mse[3], *gnll[3], *kl[3];
        for (int red = 0; red < 3; red++) {
            bce[red] = nb_bce_logits(tp, l, t, (nb_reduce)red);
            mse[red] = nb_mse(tp, l, t, (nb_reduce)red);
            gnll[red] = nb_gaussian_nll(tp, l, m, lv, (nb_reduce)red);
            kl[red] = nb_kl_normal(tp, m, l, (nb_reduce)red);
        }
        double eb = 0, em = 0, eg = 0, ek = 0;
        double tot[4] = {0};
        for (int i = 0; i < 4; i++) {
            double sb = 0, sm = 0, sg = 0, sk = 0;
            for (int j = 0; j < 15; j++) {
                double lj = nb_get(l, i * 15 + j), tj = nb_get(t, i * 15 + j), mj = nb_get(m, i * 15 + j);
                double lvj = nb_get(lv, j), sg_ = 1 / (1 + exp(-lj));
                sb += -(tj * log(sg_) + (1 - tj) * log(1 - sg_)); /* finite for |l| <= 6 */
                sm += (lj - tj) * (lj - tj);
                sg += 0.5 * (log(2 * M_PI) + lvj + (lj - mj) * (lj - mj) / exp(lvj));
                sk += -0.5 * (1 + lj - mj * mj - exp(lj));
            }
            double per[4] = {sb, sm, sg, sk};
            nb_tensor *none[4] = {bce[2], mse[2], gnll[2], kl[2]};
            double *e[4] = {&eb, &em, &eg, &ek};
            for (int q = 0; q < 4; q++) {
                *e[q] = fmax(*e[q], fabs(nb_get(none[q], i) - per[q]) / fabs(per[q]));
                tot[q] += per[q];
            }
        }
        nb_tensor *means[4] = {bce[0], mse[0], gnll[0], kl[0]}, *sums[4] = {bce[1], mse[1], gnll[1], kl[1]};
        double *e[4] = {&eb, &em, &eg, &ek};
        for (int q = 0; q < 4; q++) {
            *e[q] = fmax(*e[q], fabs(nb_get(sums[q], 0) - tot[q]) / fabs(tot[q]));
            *e[q] = fmax(*e[q], fabs(nb_get(means[q], 0) - tot[q] / 4) / fabs(tot[q] / 4));
        }
        const double tol = dt == NB_F64 ? 1e-13 : 1e-5;
        ok(eb < tol, "%s bce_logits = -[t log σ + (1-t) log(1-σ)] for sum/mean/none (rel %.1e)", nb_dtype_name(d), eb);
        ok(em < tol, "%s mse = Σ (p - t)² (rel %.1e)", nb_dtype_name(d), em);
        ok(eg < tol, "%s gaussian_nll = ½(log 2π + lv + (x - m)²/e^lv), per-pixel logvar (rel %.1e)", nb_dtype_name(d), eg);
        ok(ek < tol, "%s kl_normal = -½ Σ(1 + lv - μ² - e^lv) (rel %.1e)", nb_dtype_name(d), ek);
        nb_tape_free(tp);
    }
    /* stability where the naive BCE formula breaks down */
    nb_tape *tp = nb_tape_new();
    nb_tensor *l = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, 4), (const float[]){100, -100, 40, -40}, 4);
    nb_tensor *t = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, 4), (const float[]){0, 1, 1, 0}, 4);
    nb_tensor *y = nb_bce_logits(tp, l, t, NB_REDUCE_SUM);
    ok(y && fabs(nb_get(y, 0) - 200) < 1e-4, "bce_logits at logits ±100 is finite and exact: %g (naive: inf)", y ? nb_get(y, 0) : NAN);
    nb_tape_free(tp);
}

/* The kernel sum against the double loop over pairs and scales, in f32 and f64, with more rows
 * than one thread takes (the parallel path), and its gradient against the formula. */
static void test_imq_vs_loop(void)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_tape *tp = nb_tape_new();
        nb_rng r = nb_rng_seed(31);
        const nb_dtype d = (nb_dtype)dt;
        enum { N = 150, M = 90, D = 7, S = 3 };
        nb_tensor *a = nb_randn(tp, &r, d, NB_SHAPE(N, D)), *b = nb_randn(tp, &r, d, NB_SHAPE(M, D));
        nb_tensor *c = nb_uniform(tp, &r, d, NB_SHAPE(S), 0.5, 20);
        nb_requires_grad(a);
        nb_tensor *y = nb_imq_kernel_sum(tp, a, b, c);
        const nb_status st = y ? nb_backward(tp, y) : nb_tape_status(tp);
        double want = 0, gerr = 0, ga0[D] = {0};
        for (int i = 0; i < N; i++)
            for (int j = 0; j < M; j++) {
                double dist = 0, w = 0;
                for (int k = 0; k < D; k++) dist += pow(nb_get(a, i * D + k) - nb_get(b, j * D + k), 2);
                for (int s2 = 0; s2 < S; s2++) {
                    const double cs = nb_get(c, s2);
                    want += cs / (cs + dist), w -= cs / ((cs + dist) * (cs + dist));
                }
                for (int k = 0; i == 0 && k < D; k++) ga0[k] += 2 * w * (nb_get(a, k) - nb_get(b, j * D + k));
            }
        for (int k = 0; !st && k < D; k++) gerr = fmax(gerr, fabs(nb_get(a->grad, k) - ga0[k]) / (fabs(ga0[k]) + 1e-3));
        const double err = y ? fabs(nb_get(y, 0) - want) / want : INFINITY, tol = dt == NB_F64 ? 1e-12 : 1e-5;
        ok(!st && err < tol && gerr < tol, "%s imq_kernel_sum (150,7) x (90,7), 3 scales = the loop over pairs "
           "(rel %.1e), its gradient too (rel %.1e)", nb_dtype_name(d), err, gerr);
        nb_tape_free(tp);
    }
    nb_tape *tp = nb_tape_new();
    nb_tensor *a = nb_zeros(tp, NB_F64, NB_SHAPE(4, 3)), *b = nb_zeros(tp, NB_F64, NB_SHAPE(4, 2));
    ok(!nb_imq_kernel_sum(tp, a, b, nb_full(tp, NB_F64, NB_SHAPE(2), 1)) && strstr(nb_tape_error(tp), "imq_kernel_sum"),
       "imq_kernel_sum refuses points of different dims: %s", nb_tape_error(tp));
    nb_tape_free(tp);
}

/* nb_nearest_row against the plain loop over codes: small integers make every distance exact, so
 * the ties (duplicated codes) must go to the lowest index as the loop's do. 517 rows: two whole
 * blocks and a tail, on the threads. A NaN in a row of z, or in a code, wins as in nb_argmin. */
static void test_nearest_row(void)
{
    enum { N = 517, K = 37, D = 5 };
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_tape *tp = nb_tape_new();
        nb_tensor *z = nb_zeros(tp, (nb_dtype)dt, NB_SHAPE(N, D)), *e = nb_zeros(tp, (nb_dtype)dt, NB_SHAPE(K, D));
        unsigned seed = 77;
        for (int64_t i = 0; i < N * D; i++) nb_set(z, i, (double)(rand_r(&seed) % 7) - 3);
        for (int64_t i = 0; i < K * D; i++) nb_set(e, i, (double)(rand_r(&seed) % 7) - 3);
        for (int c = 0; c < D; c++) nb_set(e, 20 * D + c, nb_get(e, 3 * D + c)); /* code 20 = code 3 */
        nb_set(z, 100 * D + 2, NAN);
        int wrong = 0;
        nb_tensor *k = nb_nearest_row(tp, z, e);
        for (int64_t i = 0; k && i < N; i++) {
            int64_t best = 0;
            double bd = INFINITY;
            for (int64_t j = 0; j < K; j++) {
                double dist = 0;
                for (int c = 0; c < D; c++) dist += pow(nb_get(z, i * D + c) - nb_get(e, j * D + c), 2);
                if (dist != dist) { best = j; break; }
                if (dist < bd) bd = dist, best = j;
            }
            wrong += nb_get(k, i) != (double)best;
        }
        nb_set(e, 9 * D + 4, NAN); /* every row's distance to code 9 is NaN */
        nb_tensor *k9 = nb_nearest_row(tp, z, e);
        int not9 = 0;
        for (int64_t i = 0; k9 && i < N; i++) not9 += nb_get(k9, i) != (i == 100 ? 0 : 9);
        ok(k && k9 && k->ndim == 1 && k->shape[0] == N && wrong == 0 && not9 == 0,
           "%s nearest_row (%d,%d) against (%d,%d) = the loop over codes, ties to the lowest (%d wrong); "
           "a NaN code taken by every row (%d not)", nb_dtype_name((nb_dtype)dt), N, D, K, D, wrong, not9);
        nb_tape_free(tp);
    }
    nb_tape *tp = nb_tape_new();
    nb_tensor *z = nb_zeros(tp, NB_F32, NB_SHAPE(4, 3)), *e = nb_zeros(tp, NB_F32, NB_SHAPE(6, 2));
    ok(!nb_nearest_row(tp, z, e) && strstr(nb_tape_error(tp), "nearest_row"),
       "nearest_row refuses codes of another dim: %s", nb_tape_error(tp));
    nb_tape_free(tp);
}

/* The analytic KL against a Monte Carlo estimate: within 3 standard errors. */
static void test_kl_monte_carlo(void)
{
    nb_tape *tp = nb_tape_new();
    const double mu[3] = {0.3, -1.2, 2.0}, lv[3] = {-1.0, 0.5, 0.0};
    nb_tensor *tm = nb_tensor_from(tp, NB_F64, NB_SHAPE(1, 3), mu, 3), *tl = nb_tensor_from(tp, NB_F64, NB_SHAPE(1, 3), lv, 3);
    double analytic = nb_get(nb_kl_normal(tp, tm, tl, NB_REDUCE_SUM), 0);
    nb_rng r = nb_rng_seed(77);
    const int S = 200000;
    nb_tensor *eps = nb_randn(tp, &r, NB_F64, NB_SHAPE(S, 3));
    double s = 0, s2 = 0;
    for (int i = 0; i < S; i++) {
        double v = 0; /* log q(z) - log p(z) at z = mu + sigma eps */
        for (int d = 0; d < 3; d++) {
            double e = nb_get(eps, i * 3 + d), z = mu[d] + exp(0.5 * lv[d]) * e;
            v += (-0.5 * lv[d] - 0.5 * e * e) - (-0.5 * z * z);
        }
        s += v, s2 += v * v;
    }
    double mean = s / S, se = sqrt((s2 / S - mean * mean) / S);
    ok(fabs(mean - analytic) < 3 * se, "KL analytic %.5f vs Monte Carlo %.5f ± %.5f (3 s.e.)", analytic, mean, se);
    nb_tape_free(tp);
}

static void test_init(void)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(8);
    nb_linear_layer lin;
    nb_conv_layer conv, deconv;
    int ok_init = !nb_linear_init(&lin, ps, "fc", 784, 400, 1, &r) &&
                  !nb_conv2d_init(&conv, ps, "conv", 1, 32, 4, nb_conv(2, 1), 1, &r) &&
                  !nb_conv_transpose2d_init(&deconv, ps, "deconv", 64, 32, 4, nb_conv(2, 1), 1, &r);
    ok(ok_init && nb_params_find(ps, "fc.weight") && nb_params_find(ps, "deconv.bias") &&
       deconv.weight->shape[0] == 64 && deconv.weight->shape[1] == 32,
       "layers register PyTorch names and layouts (ConvTranspose2d weight is (in, out, kh, kw))");
    /* PyTorch: weight and bias ~ U(±1/√fan_in); fan_in = 784, 1·4·4, 32·4·4 */
    struct { const char *name; const nb_tensor *t; double bound; } cs[] = {
        {"Linear(784,400).weight", lin.weight, 1 / sqrt(784.0)},
        {"Linear(784,400).bias", lin.bias, 1 / sqrt(784.0)},
        {"Conv2d(1,32,4).weight", conv.weight, 1 / sqrt(16.0)},
        {"Conv2d(1,32,4).bias", conv.bias, 1 / sqrt(16.0)},
        {"ConvTranspose2d(64,32,4).weight", deconv.weight, 1 / sqrt(512.0)},
        {"ConvTranspose2d(64,32,4).bias", deconv.bias, 1 / sqrt(512.0)},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        const int64_t n = nb_numel(cs[k].t);
        double mx = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = nb_get(cs[k].t, i);
            mx = fmax(mx, fabs(v));
            s2 += v * v;
        }
        const double var = s2 / n, want = cs[k].bound * cs[k].bound / 3;
        /* var of U(±b) is b²/3; allow 5 standard errors (var of u² is 4b⁴/45) */
        const double se = cs[k].bound * cs[k].bound * sqrt(4.0 / 45 / n);
        ok(mx <= cs[k].bound && mx > cs[k].bound * (1 - 20.0 / n) && fabs(var - want) < 5 * se + 1e-12,
           "%s ~ U(±%.5f): max |w| %.5f, var %.3g (want %.3g)", cs[k].name, cs[k].bound, mx, var, want);
    }
    nb_params_free(ps);
}

static void test_optim_guard(void)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *a = nb_param(ps, "a", NB_SHAPE(3)), *b = nb_param(ps, "b", NB_SHAPE(2, 2));
    nb_optim *o = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 0.1));
    nb_set(a, 0, 1.0);
    nb_set(b->grad, 3, NAN);
    nb_set(a->grad, 1, 2.0);
    nb_status st = nb_optim_step(o);
    ok(st == NB_ERR_NAN && strstr(nb_last_error(), "'b'") && strstr(nb_last_error(), "index 3") &&
           nb_get(a, 0) == 1.0 && nb_optim_steps(o) == 0,
       "a NaN gradient stops the step, names the parameter and index, changes nothing: %s", nb_last_error());
    nb_set(b->grad, 3, 0.5);
    int zero = nb_optim_step(o) == NB_OK && nb_get(a, 1) != 0;
    for (int i = 0; i < 3; i++) zero &= nb_get(a->grad, i) == 0;
    for (int i = 0; i < 4; i++) zero &= nb_get(b->grad, i) == 0;
    ok(zero, "a step updates the parameters and leaves every gradient zero for the next backward");
    nb_optim_free(o);
    nb_optim_cfg bad = nb_optim_defaults(NB_SGD, 0.1);
    bad.nesterov = 1;
    ok(!nb_optim_new(ps, bad) && strstr(nb_last_error(), "Nesterov"), "Nesterov without momentum is refused: %s", nb_last_error());
    o = nb_optim_new(ps, nb_optim_defaults(NB_SGD, 0.1));
    nb_param(ps, "late", NB_SHAPE(2));
    ok(nb_optim_step(o) == NB_ERR_STATE, "parameters added after the optimizer are caught: %s", nb_last_error());
    nb_optim_free(o);
    nb_params_free(ps);
}

/* The optimizers flush subnormal state to zero (their speed under decaying moments), and leave
 * the caller's floating-point mode as it was, subnormals and all. */
static void test_optim_flush(void)
{
    static const nb_optim_kind kinds[] = {NB_SGD, NB_ADAM};
    for (int kk = 0; kk < 2; kk++) {
        nb_params *ps = nb_params_new(NB_F32);
        nb_tensor *w = nb_param(ps, "w", NB_SHAPE(2));
        nb_optim_cfg c = nb_optim_defaults(kinds[kk], 0.1);
        c.momentum = 0.9;
        nb_optim *o = nb_optim_new(ps, c);
        nb_set(w, 0, 0.25), nb_set(w, 1, 0.5);
        nb_set(w->grad, 1, 0.5);
        nb_tensor *m = nb_optim_state(o, 0, 0);
        nb_optim_set_steps(o, 3); /* SGD's first step would overwrite its momentum */
        nb_set(m, 0, 1e-39), nb_set(m, 1, 1e-3);
        const int stepped = nb_optim_step(o) == NB_OK;
        const float b1 = 0.9f, c1 = (float)(1 - 0.9); /* 1 − β1 rounded from double, as PyTorch */
        const float want1 = kinds[kk] == NB_SGD ? 1e-3f * b1 + 0.5f : 1e-3f * b1 + c1 * 0.5f;
        ok(stepped && nb_get(m, 0) == 0 && nb_get(w, 0) == 0.25 && nb_get(m, 1) == (double)want1,
           "%s: a subnormal %s under a zero gradient is flushed to 0 (%g), the parameter untouched, a normal one "
           "updated (%g)", kk ? "Adam" : "SGD", nb_optim_state_name(o, 0), nb_get(m, 0), nb_get(m, 1));
        nb_optim_free(o);
        nb_params_free(ps);
    }
    volatile float tiny = 1e-38f;
    tiny *= 0.5f;
    ok(tiny != 0, "the caller keeps its subnormals after a step (%g)", (double)tiny);
}

/* An optimizer that marks the gradients zero (clear_grad) against one that writes zeros: the
 * same gradients bit for bit after every backward, and the same parameters after every step.
 * w1 is read by two Linears (its first use writes the gradient, the second adds), u by nothing
 * (its stale gradient must count as zero), and the inputs' gradient is made by the first write. */
static void test_clear_grad(void)
{
    nb_params *ps[2];
    nb_optim *o[2];
    nb_tensor *w1[2], *b1[2], *w2[2], *b2[2], *u[2];
    for (int s = 0; s < 2; s++) {
        ps[s] = nb_params_new(NB_F32);
        w1[s] = nb_param(ps[s], "w1", NB_SHAPE(6, 5)), b1[s] = nb_param(ps[s], "b1", NB_SHAPE(6));
        w2[s] = nb_param(ps[s], "w2", NB_SHAPE(3, 6)), b2[s] = nb_param(ps[s], "b2", NB_SHAPE(3));
        u[s] = nb_param(ps[s], "u", NB_SHAPE(4));
        nb_rng r = nb_rng_seed(11);
        for (int i = 0; i < nb_params_count(ps[s]); i++) nb_init_normal(nb_params_at(ps[s], i), &r, 0, 0.5);
        nb_set(u[s]->grad, 2, 5.0); /* applied by the first step, then stale in the second store */
        nb_optim_cfg c = nb_optim_defaults(NB_ADAM, 0.05);
        c.clear_grad = s;
        o[s] = nb_optim_new(ps[s], c);
    }
    nb_tape *tp = nb_tape_new();
    int same = 1, stale = 0;
    for (int step = 0; step < 3; step++) {
        for (int s = 0; s < 2; s++) {
            nb_tape_reset(tp);
            nb_rng r = nb_rng_seed(20 + (uint64_t)step);
            nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(7, 5), -1, 1));
            nb_tensor *h = nb_linear_relu(tp, x, w1[s], b1[s]);
            nb_tensor *y = nb_linear(tp, h, w2[s], b2[s]);
            nb_tensor *loss = nb_add(tp, nb_sum(tp, nb_mul(tp, y, y), 0, NULL, 0),
                                     nb_sum(tp, nb_linear(tp, x, w1[s], b1[s]), 0, NULL, 0));
            same &= nb_backward(tp, loss) == NB_OK;
            static float gx[2][35];
            for (int i = 0; i < 35 && x->grad; i++) gx[s][i] = (float)nb_get(x->grad, i);
            if (s) same &= !memcmp(gx[0], gx[1], sizeof gx[0]);
            if (s) /* every gradient backward reached, as it sits in memory */
                for (int i = 0; i < 4; i++) {
                    const nb_tensor *a = nb_params_at(ps[0], i), *b = nb_params_at(ps[1], i);
                    same &= !memcmp(a->grad->data, b->grad->data, (size_t)nb_numel(a) * sizeof(float));
                }
        }
        stale += step > 0 && (u[1]->flags & NB_GRAD_CLEARED) && nb_get(u[1]->grad, 2) == 5.0;
        for (int s = 0; s < 2; s++) same &= nb_optim_step(o[s]) == NB_OK;
        void *p0, *p1;
        int64_t n;
        nb_params_flat(ps[0], &p0, NULL, &n);
        nb_params_flat(ps[1], &p1, NULL, NULL);
        same &= !memcmp(p0, p1, (size_t)n * sizeof(float));
    }
    void *g;
    int64_t n;
    nb_params_flat(ps[1], NULL, &g, &n);
    int zero = 1;
    for (int64_t i = 0; i < n; i++) zero &= ((float *)g)[i] == 0;
    for (int i = 0; i < nb_params_count(ps[1]); i++) zero &= !(nb_params_at(ps[1], i)->flags & NB_GRAD_CLEARED);
    ok(same && stale == 1 && zero, "gradients marked zero by the step (clear_grad) and written by the next backward: "
       "gradients and parameters bit-identical to zeroed ones over 3 steps, a stale gradient counted as zero, "
       "nb_params_flat zeroes what is still marked");
    nb_tape_free(tp);
    for (int s = 0; s < 2; s++) nb_optim_free(o[s]), nb_params_free(ps[s]);
}

/* nb_op_needs_grad in a forward: 1 only for an input that requires a gradient on a tape that
 * records them. BCE's per-example loss takes its two-output path then, with the same values. */
static int probe_seen[2];
static nb_status probe_fwd(nb_tape *tp, nb_node *n)
{
    probe_seen[0] = nb_op_needs_grad(tp, n, 0), probe_seen[1] = nb_op_needs_grad(tp, n, 1);
    nb_fill(n->out, 0.0);
    return NB_OK;
}
static nb_status probe_bwd(nb_tape *tp, nb_node *n) { (void)tp, (void)n; return NB_OK; }

static void test_needs_grad(void)
{
    static const nb_op_def probe = {.name = "probe", .forward = probe_fwd, .backward = probe_bwd};
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(3);
    nb_tensor *x = nb_requires_grad(nb_randn(tp, &r, NB_F32, NB_SHAPE(4, 6))), *c = nb_randn(tp, &r, NB_F32, NB_SHAPE(4, 6));
    nb_op_apply(tp, &probe, &(nb_node){.nin = 2, .in = {x, c}});
    const int on0 = probe_seen[0], on1 = probe_seen[1];
    nb_tape_set_grad(tp, 0);
    nb_op_apply(tp, &probe, &(nb_node){.nin = 2, .in = {x, c}});
    ok(on0 == 1 && on1 == 0 && probe_seen[0] == 0 && probe_seen[1] == 0 && !nb_op_needs_grad(NULL, NULL, 0),
       "nb_op_needs_grad: 1 for the input that requires a gradient, 0 for a constant and with gradients off");

    nb_tensor *t = nb_uniform(tp, &r, NB_F32, NB_SHAPE(4, 6), 0, 1);
    nb_tensor *off = nb_bce_logits(tp, x, t, NB_REDUCE_NONE);
    nb_tape_set_grad(tp, 1);
    nb_tensor *on = nb_bce_logits(tp, x, t, NB_REDUCE_NONE);
    int back = off && on && !nb_backward(tp, nb_sum_all(tp, on)) && x->grad;
    double worst = 0;
    for (int i = 0; back && i < 24; i++) { /* d/dl of Σ BCE = σ(l) - t */
        const double l = ((float *)x->data)[i], tt = ((float *)t->data)[i];
        worst = fmax(worst, fabs(((float *)x->grad->data)[i] - (1 / (1 + exp(-l)) - tt)));
    }
    ok(back && !memcmp(off->data, on->data, 4 * sizeof(float)) && worst < 1e-6,
       "bce_logits per example: the same values with gradients on (sigmoid(l) - t kept) and off; "
       "the gradient within %.1e of sigmoid(l) - t", worst);
    nb_tape_free(tp);
}

int main(void)
{
    test_conv_vs_reference();
    test_conv_twice();
    test_conv_relu_fused();
    test_conv_chain();
    test_linear_relu_fused();
    test_linear_vs_reference();
    test_linear_blocks();
    test_linear_split();
    test_losses_vs_formula();
    test_kl_monte_carlo();
    test_imq_vs_loop();
    test_nearest_row();
    test_init();
    test_optim_guard();
    test_optim_flush();
    test_clear_grad();
    test_needs_grad();
    return tap_done();
}
