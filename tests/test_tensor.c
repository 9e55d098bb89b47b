/* tests/test_tensor.c — views, broadcasting, reductions, matmul against plain references, op
 * values against libm, the random generator, the arena, and every error path. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "tests/tap.h"

static nb_tensor *seq(nb_tape *tp, nb_dtype dt, int nd, const int64_t *shape)
{
    nb_tensor *t = nb_empty(tp, dt, nd, shape);
    for (int64_t i = 0; i < nb_numel(t); i++) nb_set(t, i, (double)i);
    return t;
}

static nb_tensor *rnd(nb_tape *tp, nb_dtype dt, int nd, const int64_t *shape, nb_rng *r)
{
    return nb_uniform(tp, r, dt, nd, shape, -2, 2);
}

/* ---- views ---------------------------------------------------------------------------------- */

static void test_views(void)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = seq(tp, NB_F32, NB_SHAPE(3, 5, 7));

    nb_tensor *p = nb_permute(tp, x, NB_AXES(2, 0, 1));
    int good = p->data == x->data && p->shape[0] == 7 && p->shape[1] == 3 && p->shape[2] == 5;
    for (int i = 0; i < 7 && good; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 5; k++) good &= nb_get(p, (i * 3 + j) * 5 + k) == j * 35 + k * 7 + i;
    ok(good, "permute (2,0,1) is a view with the right elements");

    nb_tensor *s = nb_slice(tp, x, 2, 1, 7, 3); /* columns 1, 4 */
    good = s->shape[2] == 2;
    for (int i = 0; i < 3 && good; i++)
        for (int j = 0; j < 5; j++)
            good &= nb_get(s, (i * 5 + j) * 2) == i * 35 + j * 7 + 1 &&
                    nb_get(s, (i * 5 + j) * 2 + 1) == i * 35 + j * 7 + 4;
    ok(good && !nb_is_contiguous(s), "slice [1:7:3] along the last axis");

    nb_tensor *r = nb_reshape(tp, x, NB_SHAPE(15, -1));
    ok(r->data == x->data && r->shape[1] == 7 && nb_get(r, 50) == 50, "reshape of a contiguous tensor is a view, -1 inferred");

    nb_tensor *rt = nb_reshape(tp, nb_transpose(tp, x, 0, 2), NB_SHAPE(7, 15));
    ok(rt->data != x->data && nb_get(rt, 1) == 35 && nb_get(rt, 15) == 1, "reshape of a transposed view copies in logical order");

    nb_tensor *b = seq(tp, NB_F32, NB_SHAPE(5, 1));
    nb_tensor *e = nb_expand(tp, b, NB_SHAPE(3, 5, 7));
    good = e->data == b->data && e->stride[0] == 0 && e->stride[2] == 0;
    for (int64_t i = 0; i < 105 && good; i++) good &= nb_get(e, i) == (double)((i / 7) % 5);
    ok(good, "expand (5,1) to (3,5,7) repeats with stride 0");

    nb_tensor *c = nb_contiguous(tp, p);
    good = nb_is_contiguous(c);
    for (int64_t i = 0; i < 105 && good; i++) good &= nb_get(c, i) == nb_get(p, i);
    ok(good, "contiguous copy of a permuted view");

    nb_tensor *cc = nb_concat(tp, 1, seq(tp, NB_F64, NB_SHAPE(2, 2)), nb_full(tp, NB_F64, NB_SHAPE(2, 3), -1));
    const double want[] = {0, 1, -1, -1, -1, 2, 3, -1, -1, -1};
    good = cc->shape[1] == 5;
    for (int i = 0; i < 10 && good; i++) good &= nb_get(cc, i) == want[i];
    ok(good, "concat along axis 1");

    /* elementwise through strided operands on both sides */
    nb_tensor *sum = nb_add(tp, p, nb_permute(tp, x, NB_AXES(2, 0, 1)));
    good = 1;
    for (int64_t i = 0; i < 105 && good; i++) good &= nb_get(sum, i) == 2 * nb_get(p, i);
    ok(good, "add of two permuted views");
    ok(nb_tape_status(tp) == NB_OK, "no error in the view tests (%s)", nb_tape_error(tp));
    nb_tape_free(tp);
}

/* ---- broadcasting --------------------------------------------------------------------------- */

static void test_broadcast(void)
{
    int64_t out[NB_MAX_DIMS];
    int nd = nb_broadcast_shape(NB_SHAPE(3, 1, 7), NB_SHAPE(5, 1), out);
    ok(nd == 3 && out[0] == 3 && out[1] == 5 && out[2] == 7, "(3,1,7) with (5,1) broadcasts to (3,5,7)");
    ok(nb_broadcast_shape(NB_SHAPE(3, 5), NB_SHAPE(4, 5), out) < 0, "(3,5) with (4,5) does not broadcast");
    ok(nb_broadcast_shape(0, NULL, NB_SHAPE(2, 3), out) == 2, "a scalar broadcasts to anything");

    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(7);
    nb_tensor *a = rnd(tp, NB_F64, NB_SHAPE(3, 1, 7), &r), *b = rnd(tp, NB_F64, NB_SHAPE(5, 1), &r);
    nb_tensor *ops[4] = {nb_add(tp, a, b), nb_sub(tp, a, b), nb_mul(tp, a, b), nb_div(tp, a, b)};
    double err = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 7; k++) {
                double x = nb_get(a, i * 7 + k), y = nb_get(b, j);
                double want[4] = {x + y, x - y, x * y, x / y};
                for (int o = 0; o < 4; o++)
                    err = fmax(err, fabs(nb_get(ops[o], (i * 5 + j) * 7 + k) - want[o]));
            }
    ok(err == 0, "add/sub/mul/div with broadcasting equal the plain loop (max diff %g)", err);
    nb_tape_free(tp);
}

/* ---- reductions ----------------------------------------------------------------------------- */

static void test_reductions(void)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_tape *tp = nb_tape_new();
        nb_rng r = nb_rng_seed(11);
        nb_tensor *x = rnd(tp, (nb_dtype)dt, NB_SHAPE(3, 5, 7), &r);
        nb_tensor *s1 = nb_sum(tp, x, NB_AXES(1), 0);
        nb_tensor *s02 = nb_sum(tp, x, NB_AXES(0, -1), 1);
        nb_tensor *m = nb_mean(tp, x, 0, NULL, 0);
        nb_tensor *l = nb_logsumexp(tp, x, NB_AXES(2), 0);
        double e1 = 0, e02 = 0, em, el = 0, tot = 0;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 7; k++) {
                double s = 0;
                for (int j = 0; j < 5; j++) s += nb_get(x, (i * 5 + j) * 7 + k);
                e1 = fmax(e1, fabs(nb_get(s1, i * 7 + k) - s));
            }
        for (int j = 0; j < 5; j++) {
            double s = 0;
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < 7; k++) s += nb_get(x, (i * 5 + j) * 7 + k);
            e02 = fmax(e02, fabs(nb_get(s02, j) - s));
            tot += s;
        }
        em = fabs(nb_get(m, 0) - tot / 105);
        for (int i = 0; i < 15; i++) {
            double s = 0;
            for (int k = 0; k < 7; k++) s += exp(nb_get(x, i * 7 + k));
            el = fmax(el, fabs(nb_get(l, i) - log(s)));
        }
        double tol = dt == NB_F64 ? 1e-13 : 1e-5;
        ok(e1 < tol && e02 < tol && em < tol && el < tol,
           "%s sum axis 1, sum axes 0,-1 keepdim, mean, logsumexp equal plain loops (%.1e %.1e %.1e %.1e)",
           nb_dtype_name((nb_dtype)dt), e1, e02, em, el);
        ok(s02->ndim == 3 && s02->shape[0] == 1 && s02->shape[2] == 1 && m->ndim == 0,
           "%s keepdim keeps size-1 axes; a full reduction has shape ()", nb_dtype_name((nb_dtype)dt));
        nb_tape_free(tp);
    }
    nb_tape *tp = nb_tape_new();
    nb_tensor *big = nb_tensor_from(tp, NB_F32, NB_SHAPE(2, 3), (const float[]){1000, 1000, 1000, -INFINITY, -INFINITY, -INFINITY}, 2 * 3);
    nb_tensor *l = nb_logsumexp(tp, big, NB_AXES(1), 0);
    ok(fabs(nb_get(l, 0) - (1000 + log(3.0))) < 1e-3 && isinf(nb_get(l, 1)) && nb_get(l, 1) < 0,
       "logsumexp of 1000s does not overflow (%g); of -inf is -inf (%g)", nb_get(l, 0), nb_get(l, 1));
    nb_tape_free(tp);
}

/* ---- matmul --------------------------------------------------------------------------------- */

static double matmul_err(nb_tape *tp, nb_tensor *a, nb_tensor *b, nb_tensor *y)
{
    /* plain triple loop in double over the logical (possibly strided) operands */
    const int batched = y->ndim == 3;
    const int64_t B = batched ? y->shape[0] : 1, M = nb_dim(a, -2), K = nb_dim(a, -1), N = nb_dim(b, -1);
    double err = 0, scale = 0;
    for (int64_t q = 0; q < B; q++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t ia = (a->ndim == 3 ? q * M * K : 0) + i * K + k;
                    int64_t ib = (b->ndim == 3 ? q * K * N : 0) + k * N + j;
                    s += nb_get(a, ia) * nb_get(b, ib);
                }
                err = fmax(err, fabs(nb_get(y, (q * M + i) * N + j) - s));
                scale = fmax(scale, fabs(s));
            }
    (void)tp;
    return err / fmax(scale, 1e-30);
}

static void test_matmul(void)
{
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(3);
    struct { int64_t a[3], b[3]; int na, nb; int ta, tb; const char *what; } cases[] = {
        {{13, 29}, {29, 17}, 2, 2, 0, 0, "(13,29)x(29,17)"},
        {{29, 13}, {29, 17}, 2, 2, 1, 0, "(29,13)T x (29,17)"},
        {{13, 29}, {17, 29}, 2, 2, 0, 1, "(13,29) x (17,29)T"},
        {{3, 5, 9}, {9, 4}, 3, 2, 0, 0, "(3,5,9)x(9,4)"},
        {{3, 5, 9}, {3, 9, 4}, 3, 3, 0, 0, "(3,5,9)x(3,9,4)"},
        {{1, 784}, {784, 400}, 2, 2, 0, 0, "(1,784)x(784,400)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int dt = NB_F32; dt <= NB_F64; dt++) {
            nb_tensor *a = rnd(tp, (nb_dtype)dt, cases[c].na, cases[c].a, &r);
            nb_tensor *b = rnd(tp, (nb_dtype)dt, cases[c].nb, cases[c].b, &r);
            if (cases[c].ta) a = nb_transpose(tp, a, 0, 1);
            if (cases[c].tb) b = nb_transpose(tp, b, 0, 1);
            nb_tensor *y = nb_matmul(tp, a, b);
            double e = y ? matmul_err(tp, a, b, y) : INFINITY;
            ok(e < (dt == NB_F64 ? 1e-14 : 1e-5), "%s matmul %s equals the plain loop (rel err %.1e)",
               nb_dtype_name((nb_dtype)dt), cases[c].what, e);
        }
    nb_tape_free(tp);
}

/* ---- op values against libm ------------------------------------------------------------------ */

static void test_values(void)
{
    nb_tape *tp = nb_tape_new();
    const double xs[] = {-100, -30, -5, -1, -0.25, 0, 0.5, 2, 7, 30, 100};
    const int n = (int)(sizeof xs / sizeof xs[0]);
    nb_tensor *x = nb_tensor_from(tp, NB_F64, NB_SHAPE(n), xs, n);
    nb_tensor *pos = nb_tensor_from(tp, NB_F64, NB_SHAPE(3), (const double[]){0.1, 1, 50}, 3);
    struct { const char *name; nb_tensor *y; nb_tensor *in; double (*f)(double); } cs[] = {
        {"exp", nb_exp(tp, nb_scale(tp, x, 0.1)), NULL, NULL},
        {"tanh", nb_tanh(tp, x), x, tanh},
        {"log", nb_log(tp, pos), pos, log},
        {"log1p", nb_log1p(tp, pos), pos, log1p},
        {"sqrt", nb_sqrt(tp, pos), pos, sqrt},
    };
    for (size_t c = 1; c < sizeof cs / sizeof cs[0]; c++) {
        double e = 0;
        for (int64_t i = 0; i < nb_numel(cs[c].in); i++)
            e = fmax(e, fabs(nb_get(cs[c].y, i) - cs[c].f(nb_get(cs[c].in, i))));
        ok(e < 1e-15, "f64 %s equals libm (max diff %.1e)", cs[c].name, e);
    }
    /* the stable forms against the naive formulas, in long double where those overflow */
    nb_tensor *sp = nb_softplus(tp, x), *ls = nb_log_sigmoid(tp, x), *sg = nb_sigmoid(tp, x);
    nb_tensor *rl = nb_relu(tp, x), *cl = nb_clamp(tp, x, -1, 2);
    double esp = 0, els = 0, esg = 0, erl = 0, ecl = 0;
    for (int i = 0; i < n; i++) {
        long double v = xs[i];
        double want_sp = (double)log1pl(expl(v)), want_sg = (double)(1 / (1 + expl(-v)));
        esp = fmax(esp, fabs(nb_get(sp, i) - want_sp) / fmax(1e-300, fabs(want_sp)));
        els = fmax(els, fabs(nb_get(ls, i) + (double)log1pl(expl(-v))) / fmax(1e-300, (double)log1pl(expl(-v))));
        esg = fmax(esg, fabs(nb_get(sg, i) - want_sg) / fmax(1e-300, want_sg));
        erl = fmax(erl, fabs(nb_get(rl, i) - fmax(xs[i], 0)));
        ecl = fmax(ecl, fabs(nb_get(cl, i) - fmin(fmax(xs[i], -1), 2)));
    }
    ok(esp < 1e-14, "softplus is accurate from -100 to 100 (rel err %.1e)", esp);
    ok(els < 1e-14, "log_sigmoid is accurate from -100 to 100 (rel err %.1e)", els);
    ok(esg < 1e-14, "sigmoid is accurate from -100 to 100 (rel err %.1e)", esg);
    ok(erl == 0 && ecl == 0, "relu and clamp are exact");

    nb_tensor *mask = nb_greater(tp, x, nb_scalar(tp, NB_F64, 0));
    nb_tensor *w = nb_where(tp, mask, x, nb_neg(tp, x)); /* |x| */
    double ew = 0;
    for (int i = 0; i < n; i++) ew = fmax(ew, fabs(nb_get(w, i) - fabs(xs[i])));
    ok(ew == 0 && !(mask->flags & NB_REQUIRES_GRAD), "where(x > 0, x, -x) is |x|; the mask is a constant");

    /* f32 SIMD path against the f64 reference */
    nb_rng r = nb_rng_seed(5);
    nb_tensor *x32 = nb_uniform(tp, &r, NB_F32, NB_SHAPE(1000), -20, 20);
    nb_tensor *y32[4] = {nb_exp(tp, x32), nb_tanh(tp, x32), nb_sigmoid(tp, x32), nb_softplus(tp, x32)};
    double (*ref[4])(double) = {exp, tanh, NULL, NULL};
    double e32 = 0;
    for (int i = 0; i < 1000; i++) {
        double v = nb_get(x32, i);
        double want[4] = {ref[0](v), ref[1](v), 1 / (1 + exp(-v)), fmax(v, 0) + log1p(exp(-fabs(v)))};
        for (int k = 0; k < 4; k++) e32 = fmax(e32, fabs(nb_get(y32[k], i) - want[k]) / fmax(fabs(want[k]), 1e-30));
    }
    ok(e32 < 4 * FLT_EPSILON, "f32 exp/tanh/sigmoid/softplus within 4 eps of double (rel err %.1e)", e32);
    ok(nb_tape_status(tp) == NB_OK, "no error in the value tests (%s)", nb_tape_error(tp));
    nb_tape_free(tp);
}

/* ---- random generator ---------------------------------------------------------------------- */

/* A shard of a batch's draws (nb_rng_shard) is exactly its rows of the whole batch's draws, and
 * leaves the counter where the whole fill does: rows of 7 values start mid-block in both dtypes. */
static void test_rng_shard(nb_tape *tp)
{
    enum { ROWS = 13, W = 7 };
    const int64_t cut[] = {0, 5, 6, 6, 13}; /* shards [0,5) [5,6) [6,6) [6,13), one empty */
    for (int dt = NB_F32; dt <= NB_F64; dt++)
        for (int kind = 0; kind < 3; kind++) {
            nb_rng whole = nb_rng_seed(77), before = whole;
            nb_tensor *all = nb_empty(tp, (nb_dtype)dt, NB_SHAPE(ROWS, W));
            if (kind == 0) nb_rng_uniform(&whole, all, -1, 2);
            if (kind == 1) nb_rng_normal(&whole, all, 0.5, 3);
            if (kind == 2) nb_rng_bernoulli(&whole, all, 0.4);
            int same = 1;
            for (int s = 0; s + 1 < 5; s++) {
                nb_rng r = before;
                same &= !nb_rng_shard(&r, cut[s], ROWS);
                nb_tensor *part = nb_empty(tp, (nb_dtype)dt, NB_SHAPE(cut[s + 1] - cut[s], W));
                if (kind == 0) nb_rng_uniform(&r, part, -1, 2);
                if (kind == 1) nb_rng_normal(&r, part, 0.5, 3);
                if (kind == 2) nb_rng_bernoulli(&r, part, 0.4);
                for (int64_t i = 0; i < nb_numel(part); i++) same &= nb_get(part, i) == nb_get(all, cut[s] * W + i);
                same &= r.counter == whole.counter;
            }
            ok(same, "%s %s: shards of 5, 1, 0 and 7 rows of 7 draw the whole batch's rows and advance as it does",
               nb_dtype_name((nb_dtype)dt), (const char *[]){"uniform", "normal", "bernoulli"}[kind]);
        }
    nb_rng r = nb_rng_seed(3), plain = r;
    nb_tensor *a = nb_empty(tp, NB_F32, NB_SHAPE(4, 3)), *b = nb_empty(tp, NB_F32, NB_SHAPE(4, 3));
    nb_rng_shard(&r, 0, 4);
    nb_rng_normal(&r, a, 0, 1), nb_rng_normal(&plain, b, 0, 1);
    ok(!memcmp(a->data, b->data, 48) && r.counter == plain.counter, "a shard of all the rows is the plain fill");
    nb_rng past = nb_rng_seed(3), whole = nb_rng_seed(3);
    nb_tensor *c = nb_empty(tp, NB_F64, NB_SHAPE(3, 5)), *d = nb_empty(tp, NB_F64, NB_SHAPE(6, 5));
    nb_rng_shard(&past, 3, 4); /* rows 3..5 of a batch said to have 4: drawn as a batch of 6 */
    nb_rng_uniform(&past, c, 0, 1), nb_rng_uniform(&whole, d, 0, 1);
    ok(!memcmp(c->data, (double *)d->data + 15, 15 * 8) && past.counter == whole.counter,
       "a shard reaching past its batch draws as a longer batch");
    nb_rng e = nb_rng_seed(1);
    ok(nb_rng_shard(&e, -1, 4) == NB_ERR_ARG && strstr(nb_last_error(), "nb_rng_shard") &&
       nb_rng_shard(&e, 2, 0) == NB_ERR_ARG && !nb_rng_shard(&e, 0, 0) && e.rows == 0,
       "nb_rng_shard refuses negative rows and an empty batch: %s", nb_last_error());
    nb_rng f = nb_rng_fork(&r, 5);
    ok(f.rows == 0, "a fork has no shard");
}

static void test_rng(void)
{
    /* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors). */
    struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t o[4];
        nb_philox4x32(kat[k].ctr, kat[k].key, o);
        ok(!memcmp(o, kat[k].out, sizeof o), "Philox4x32-10 known answer %d", k + 1);
    }

    nb_tape *tp = nb_tape_new();
    const int64_t n = 1 << 20;
    double mean[3] = {0}, var[3] = {0};
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_rng r = nb_rng_seed(42);
        nb_tensor *t[3] = {nb_uniform(tp, &r, (nb_dtype)dt, NB_SHAPE(n), 0, 1),
                           nb_randn(tp, &r, (nb_dtype)dt, NB_SHAPE(n)),
                           nb_bernoulli(tp, &r, (nb_dtype)dt, NB_SHAPE(n), 0.3)};
        for (int k = 0; k < 3; k++) {
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < n; i++) s += nb_get(t[k], i), s2 += nb_get(t[k], i) * nb_get(t[k], i);
            mean[k] = s / n;
            var[k] = s2 / n - mean[k] * mean[k];
        }
        /* 5 standard errors of the mean */
        ok(fabs(mean[0] - 0.5) < 5 * sqrt(1 / 12.0 / n) && fabs(var[0] - 1 / 12.0) < 1e-3,
           "%s uniform: mean %.5f var %.5f", nb_dtype_name((nb_dtype)dt), mean[0], var[0]);
        ok(fabs(mean[1]) < 5 / sqrt((double)n) && fabs(var[1] - 1) < 0.01,
           "%s normal: mean %.5f var %.5f", nb_dtype_name((nb_dtype)dt), mean[1], var[1]);
        ok(fabs(mean[2] - 0.3) < 5 * sqrt(0.21 / n), "%s bernoulli(0.3): rate %.5f",
           nb_dtype_name((nb_dtype)dt), mean[2]);
    }
    /* the stream must not depend on the thread count */
    nb_tensor *a = nb_empty(tp, NB_F32, NB_SHAPE(n)), *b = nb_empty(tp, NB_F32, NB_SHAPE(n));
    int threads = omp_get_max_threads();
    nb_rng r1 = nb_rng_seed(9), r2 = nb_rng_seed(9);
    omp_set_num_threads(1);
    nb_rng_normal(&r1, a, 0, 1);
    omp_set_num_threads(threads > 1 ? threads : 2);
    nb_rng_normal(&r2, b, 0, 1);
    omp_set_num_threads(threads);
    ok(!memcmp(a->data, b->data, (size_t)n * 4) && r1.counter == r2.counter,
       "normal draws are bit-identical with 1 and %d threads", threads > 1 ? threads : 2);
    nb_rng f1 = nb_rng_fork(&r1, 1), f2 = nb_rng_fork(&r1, 2);
    ok(f1.key != f2.key && f1.key != r1.key, "forked streams get distinct keys");
    uint64_t hist[7] = {0};
    nb_rng r3 = nb_rng_seed(1);
    for (int i = 0; i < 70000; i++) hist[nb_rng_below(&r3, 7)]++;
    int flat = 1;
    for (int i = 0; i < 7; i++) flat &= fabs((double)hist[i] - 10000) < 5 * sqrt(10000.0);
    ok(flat, "nb_rng_below(7) is uniform over 70000 draws");
    test_rng_shard(tp);
    nb_tape_free(tp);
}

/* ---- arena, recording ------------------------------------------------------------------------ */

static void test_arena(void)
{
    nb_tape *tp = nb_tape_new();
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(64, 256));
    nb_rng r = nb_rng_seed(1);
    nb_rng_normal(&r, w, 0, 0.1);
    size_t bytes_after_2 = 0;
    int cap_after_2 = 0, grew = 0, failed = 0;
    for (int step = 0; step < 1000; step++) {
        nb_tape_reset(tp);
        /* large enough that the first step needs several arena chunks */
        nb_tensor *x = nb_uniform(tp, &r, NB_F32, NB_SHAPE(512, 64), -1, 1);
        nb_tensor *h = nb_tanh(tp, nb_matmul(tp, x, w));
        nb_tensor *loss = nb_mean(tp, nb_square(tp, h), 0, NULL, 0);
        failed |= nb_backward(tp, loss) != NB_OK;
        nb_params_zero_grad(ps);
        if (step == 1) bytes_after_2 = nb_tape_arena_bytes(tp), cap_after_2 = tp->cap_nodes;
        if (step > 1) grew |= nb_tape_arena_bytes(tp) != bytes_after_2 || tp->cap_nodes != cap_after_2;
    }
    ok(!failed && !grew && bytes_after_2 > 0,
       "1000 identical steps: the arena holds %zu bytes after step 2 and never grows", bytes_after_2);

    nb_tape_reset(tp);
    nb_tape_set_grad(tp, 0);
    nb_tensor *y = nb_tanh(tp, nb_matmul(tp, nb_full(tp, NB_F32, NB_SHAPE(2, 64), 1), w));
    ok(y && nb_tape_size(tp) == 0 && !(y->flags & NB_REQUIRES_GRAD),
       "with recording off, ops compute but record nothing");
    nb_tape_set_grad(tp, 1);
    nb_params_free(ps);
    nb_tape_free(tp);
}

/* The arena's chunks after a step: a chain that holds little more than the step used is kept
 * (the same allocations land where they did, in memory already touched); one that holds much
 * more, or a step that used far less, gives one chunk of the step's size. */
static void test_arena_chunks(void)
{
    nb_arena a;
    nb_arena_init(&a, 1024);
    void *p[3], *q[3];
    const size_t sizes[3] = {960, 2048, 4096};
    for (int i = 0; i < 3; i++) p[i] = nb_arena_alloc(&a, sizes[i]);
    nb_arena_reset(&a);
    const size_t kept = nb_arena_capacity(&a);
    for (int i = 0; i < 3; i++) q[i] = nb_arena_alloc(&a, sizes[i]);
    ok(kept == 1024 + 2048 + 4096 && p[0] == q[0] && p[1] == q[1] && p[2] == q[2] && nb_arena_capacity(&a) == kept,
       "a chain of 3 chunks holding %zu bytes for a step of 7104 is kept, and the step's allocations land "
       "where they did", kept);
    nb_arena_reset(&a);
    (void)nb_arena_alloc(&a, 64);
    nb_arena_reset(&a);
    ok(nb_arena_capacity(&a) == 1024, "after a step of 64 bytes it shrinks to one first-size chunk (%zu bytes)",
       nb_arena_capacity(&a));
    (void)nb_arena_alloc(&a, 960);
    (void)nb_arena_alloc(&a, 100); /* does not fit: a 2048-byte chunk for 128 */
    nb_arena_reset(&a);
    ok(nb_arena_capacity(&a) == 1088, "a chain of 3072 bytes for a step of 1088 becomes one chunk of 1088 (%zu)",
       nb_arena_capacity(&a));
    nb_arena_free(&a);
}

/* ---- errors ---------------------------------------------------------------------------------- */

typedef nb_tensor *(*bad_fn)(nb_tape *tp);
#define BAD(name, expr) static nb_tensor *bad_##name(nb_tape *tp) { return expr; }
#define T(...) nb_zeros(tp, NB_F32, NB_SHAPE(__VA_ARGS__))
BAD(add, nb_add(tp, T(3, 5), T(4, 5)))
BAD(mul, nb_mul(tp, T(2, 3, 4), T(3, 3)))
BAD(where, nb_where(tp, T(3), T(4), T(3)))
BAD(matmul_inner, nb_matmul(tp, T(128, 784), T(400, 784)))
BAD(matmul_rank, nb_matmul(tp, T(3), T(3, 4)))
BAD(matmul_batch, nb_matmul(tp, T(2, 3, 4), T(3, 4, 5)))
BAD(concat, nb_concat(tp, 1, T(2, 3), T(3, 3)))
BAD(reshape, nb_reshape(tp, T(3, 5), NB_SHAPE(4, 4)))
BAD(reshape_infer, nb_reshape(tp, T(3, 5), NB_SHAPE(-1, 4)))
BAD(expand, nb_expand(tp, T(3, 2), NB_SHAPE(3, 4)))
BAD(permute, nb_permute(tp, T(3, 2), NB_AXES(0, 0)))
BAD(transpose, nb_transpose(tp, T(3, 2), 0, 2))
BAD(slice, nb_slice(tp, T(3, 2), 0, 1, 5, 1))
BAD(sum_axis, nb_sum(tp, T(3, 2), NB_AXES(2), 0))
BAD(logsumexp_empty, nb_logsumexp(tp, T(3, 0), NB_AXES(1), 0))
BAD(dtype, nb_add(tp, T(3), nb_zeros(tp, NB_F64, NB_SHAPE(3))))
BAD(null, nb_exp(tp, NULL))
BAD(clamp, nb_clamp(tp, T(3), 1, -1))
BAD(too_many_dims, nb_zeros(tp, NB_F32, NB_SHAPE(1, 2, 3, 4, 5)))
static nb_tensor *I(nb_tape *tp, int n, const float *v) { return nb_tensor_from(tp, NB_F32, 1, (const int64_t[]){n}, v, n); }
BAD(index_range, nb_index_select(tp, T(3, 2), 0, I(tp, 2, (const float[]){1, 3})))
BAD(index_fraction, nb_index_select(tp, T(3, 2), 1, I(tp, 1, (const float[]){0.5f})))
BAD(index_rank, nb_index_select(tp, T(3, 2), 0, T(2, 1)))
BAD(gather_shape, nb_gather(tp, T(3, 2), 1, T(4, 2)))
BAD(softmax_axis, nb_softmax(tp, T(3, 2), 2))
BAD(argmax_empty, nb_argmax(tp, T(3, 0), 1, 0))
BAD(max_empty, nb_max(tp, T(0, 2), NB_AXES(0), 0))
BAD(pow_inf, nb_pow(tp, T(3), 1.0 / 0.0))
BAD(slice_step, nb_slice(tp, T(3, 2), 0, 0, NB_END, 0))

static void test_errors(void)
{
    struct { const char *name; bad_fn f; nb_status want; const char *needle[2]; } cs[] = {
        {"add", bad_add, NB_ERR_SHAPE, {"nb_add", "(3,5) and (4,5)"}},
        {"mul", bad_mul, NB_ERR_SHAPE, {"nb_mul", "(2,3,4) and (3,3)"}},
        {"where", bad_where, NB_ERR_SHAPE, {"nb_where", "(3) and (4)"}},
        {"matmul inner", bad_matmul_inner, NB_ERR_SHAPE, {"nb_matmul", "(128,784) x (400,784)"}},
        {"matmul rank", bad_matmul_rank, NB_ERR_SHAPE, {"nb_matmul", "2-D or 3-D"}},
        {"matmul batch", bad_matmul_batch, NB_ERR_SHAPE, {"nb_matmul", "batch sizes differ"}},
        {"concat", bad_concat, NB_ERR_SHAPE, {"nb_concat", "(2,3) and (3,3)"}},
        {"reshape", bad_reshape, NB_ERR_SHAPE, {"nb_reshape", "(3,5) (15 elements) as (4,4)"}},
        {"reshape -1", bad_reshape_infer, NB_ERR_SHAPE, {"nb_reshape", "(-1,4)"}},
        {"expand", bad_expand, NB_ERR_SHAPE, {"nb_expand", "(3,2) to (3,4)"}},
        {"permute", bad_permute, NB_ERR_ARG, {"nb_permute", "(3,2)"}},
        {"transpose", bad_transpose, NB_ERR_ARG, {"nb_transpose", "(3,2)"}},
        {"slice", bad_slice, NB_ERR_ARG, {"nb_slice", "[1, 5)"}},
        {"sum axis", bad_sum_axis, NB_ERR_ARG, {"nb_sum", "axis 2"}},
        {"logsumexp of nothing", bad_logsumexp_empty, NB_ERR_SHAPE, {"nb_logsumexp", "(3,0)"}},
        {"dtype", bad_dtype, NB_ERR_DTYPE, {"nb_add", "f32 and f64"}},
        {"NULL input", bad_null, NB_ERR_ARG, {"nb_exp", "NULL"}},
        {"clamp bounds", bad_clamp, NB_ERR_ARG, {"nb_clamp", "1 above upper bound -1"}},
        {"5 dims", bad_too_many_dims, NB_ERR_SHAPE, {"nb_zeros", "5 dims (at most 4)"}},
        {"index out of range", bad_index_range, NB_ERR_ARG, {"nb_index_select", "index 3 (element 1"}},
        {"index not whole", bad_index_fraction, NB_ERR_ARG, {"nb_index_select", "index 0.5"}},
        {"index not 1-D", bad_index_rank, NB_ERR_ARG, {"nb_index_select", "must be 1-D"}},
        {"gather shapes", bad_gather_shape, NB_ERR_SHAPE, {"nb_gather", "(3,2) with index (4,2)"}},
        {"softmax axis", bad_softmax_axis, NB_ERR_ARG, {"nb_softmax", "axis 2"}},
        {"argmax of nothing", bad_argmax_empty, NB_ERR_SHAPE, {"nb_argmax", "is empty"}},
        {"max of nothing", bad_max_empty, NB_ERR_SHAPE, {"nb_max", "(0,2)"}},
        {"pow to infinity", bad_pow_inf, NB_ERR_ARG, {"nb_pow", "inf"}},
        {"slice step 0", bad_slice_step, NB_ERR_ARG, {"nb_slice", "step 0"}},
    };
    nb_tape *tp = nb_tape_new();
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        nb_tape_reset(tp);
        nb_tensor *y = cs[i].f(tp);
        const char *msg = nb_tape_error(tp);
        ok(!y && nb_tape_status(tp) == cs[i].want && strstr(msg, cs[i].needle[0]) &&
               strstr(msg, cs[i].needle[1]),
           "error: %s -> status %d, \"%s\"", cs[i].name, nb_tape_status(tp), msg);
    }
    /* sticky: later ops pass NULL through, backward reports the first error */
    nb_tape_reset(tp);
    nb_tensor *y = bad_add(tp);
    nb_tensor *z = nb_sum_all(tp, nb_exp(tp, y));
    nb_tensor *w = nb_mul(tp, T(2, 2), T(3, 3)); /* a second, different error */
    ok(!z && !w && nb_backward(tp, z) == NB_ERR_SHAPE && strstr(nb_tape_error(tp), "(3,5) and (4,5)"),
       "errors are sticky: the first message survives later failures");

    nb_tape_reset(tp);
    nb_tensor *leaf = nb_requires_grad(T(2, 3));
    ok(nb_backward(tp, nb_exp(tp, leaf)) == NB_ERR_SHAPE && strstr(nb_tape_error(tp), "scalar"),
       "backward of a non-scalar names the problem: %s", nb_tape_error(tp));
    nb_tape_reset(tp);
    ok(nb_backward(tp, nb_sum_all(tp, T(2, 3))) == NB_ERR_ARG && strstr(nb_tape_error(tp), "requires a gradient"),
       "backward of a constant says so");
    nb_tape_reset(tp);
    leaf = nb_requires_grad(T(2, 3));
    nb_tensor *l = nb_sum_all(tp, nb_exp(tp, leaf));
    ok(nb_backward(tp, l) == NB_OK && nb_backward(tp, l) == NB_ERR_STATE, "a second backward is refused");
    nb_tape_free(tp);

    nb_params *ps = nb_params_new(NB_F32);
    ok(nb_param(ps, "w", NB_SHAPE(2)) && !nb_param(ps, "w", NB_SHAPE(3)) &&
           strstr(nb_last_error(), "'w' is already registered"),
       "a parameter name can be registered once");
    ok(!nb_param(ps, "", NB_SHAPE(3)), "an empty parameter name is refused");
    nb_params_free(ps);
}

/* What the new ops do where the gradient check cannot look: ties, NB_END, argmax's ties. */
static void test_ties(void)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_requires_grad(nb_tensor_from(tp, NB_F64, NB_SHAPE(2, 3), (const double[]){1, 3, 3, 2, 2, 2}, 2 * 3));
    nb_tensor *m = nb_max(tp, x, NB_AXES(1), 0);
    nb_backward_from(tp, m, nb_tensor_from(tp, NB_F64, NB_SHAPE(2), (const double[]){1, 3}, 2));
    const double want[6] = {0, 0.5, 0.5, 1, 1, 1};
    int same = m && nb_get(m, 0) == 3 && nb_get(m, 1) == 2 && x->grad;
    for (int i = 0; same && i < 6; i++) same = nb_get(x->grad, i) == want[i];
    ok(same, "max: elements that tie share the gradient equally");
    nb_tape_reset(tp);
    x = nb_requires_grad(nb_tensor_from(tp, NB_F64, NB_SHAPE(3), (const double[]){1, 2, 5}, 3));
    nb_tensor *y = nb_requires_grad(nb_tensor_from(tp, NB_F64, NB_SHAPE(3), (const double[]){1, 4, 3}, 3));
    nb_tensor *mx = nb_maximum(tp, x, y);
    nb_backward(tp, nb_sum_all(tp, mx));
    ok(mx && nb_get(x->grad, 0) == 0.5 && nb_get(y->grad, 0) == 0.5 && nb_get(x->grad, 1) == 0 &&
           nb_get(y->grad, 1) == 1 && nb_get(x->grad, 2) == 1 && nb_get(y->grad, 2) == 0,
       "maximum: a tie splits the gradient in half, as PyTorch does");
    nb_tape_reset(tp);
    nb_tensor *a = nb_tensor_from(tp, NB_F32, NB_SHAPE(2, 4), (const float[]){3, 1, 3, 0, -1, -1, -2, -2}, 2 * 4);
    nb_tensor *am = nb_argmax(tp, a, 1, 0), *an = nb_argmin(tp, a, 1, 1);
    ok(am && an && am->ndim == 1 && an->ndim == 2 && nb_get(am, 0) == 0 && nb_get(am, 1) == 0 &&
           nb_get(an, 0) == 3 && nb_get(an, 1) == 2,
       "argmax and argmin: the first of tied positions, keepdim honoured");
    /* long rows (the vector path along the last axis) and columns (the strided loop) against a
     * plain loop: ties, a NaN (the first NaN is the answer), infinities */
    enum { R = 9, C = 77 };
    float v[R * C];
    nb_rng rng = nb_rng_seed(5);
    for (int i = 0; i < R * C; i++) v[i] = (float)(nb_rng_below(&rng, 50)) - 25;
    v[1 * C + 60] = NAN, v[1 * C + 70] = NAN, v[2 * C + 5] = INFINITY, v[3 * C + 40] = -INFINITY;
    v[4 * C + 76] = NAN, v[5 * C + 0] = NAN;
    nb_tensor *big = nb_tensor_from(tp, NB_F32, NB_SHAPE(R, C), v, R * C);
    int arg_ok = 1;
    for (int axis = 0; axis < 2; axis++)
        for (int want_max = 0; want_max < 2; want_max++) {
            nb_tensor *got = want_max ? nb_argmax(tp, big, axis, 0) : nb_argmin(tp, big, axis, 0);
            const int lines = axis ? R : C, len = axis ? C : R;
            for (int l = 0; got && l < lines; l++) {
                int best = 0;
                for (int k = 0; k < len; k++) {
                    const float e = axis ? v[l * C + k] : v[k * C + l], b = axis ? v[l * C + best] : v[best * C + l];
                    if (b != b) break;
                    if (e != e || (want_max ? e > b : e < b)) best = k;
                }
                arg_ok &= nb_get(got, l) == best;
            }
            arg_ok &= got != NULL;
        }
    ok(arg_ok, "argmax and argmin over rows of 77 and columns of 9: the plain loop's first index, NaN and "
       "infinities included");
    nb_tensor *sl = nb_slice(tp, a, 1, 1, NB_END, 2);
    ok(sl && sl->shape[1] == 2 && nb_get(sl, 1) == 0, "slice to NB_END: the rest of the axis");
    nb_tensor *sm = nb_softmax(tp, nb_tensor_from(tp, NB_F64, NB_SHAPE(2), (const double[]){1000, 1000}, 2), 0);
    ok(sm && nb_get(sm, 0) == 0.5 && nb_get(sm, 1) == 0.5, "softmax of large equal logits: 1/2 each, no overflow");
    nb_tape_free(tp);
}

/* 1 when a subnormal product is flushed to zero on both threads of a 2-thread team; *each counts
 * the threads that flushed it. */
static int flushed_on_all(int *each)
{
    int n = 0;
#pragma omp parallel num_threads(2) reduction(+ : n)
    {
        volatile float tiny = 1e-38f;
        tiny *= 0.5f;
        n += tiny == 0;
    }
    *each = n;
    return n == 2;
}

/* nb_flush_denormal_begin reaches the pool's threads, not only the caller's; the pairs nest, and
 * the last end gives every thread its own mode back. */
static void test_flush_denormal(void)
{
    const int threads = omp_get_max_threads();
    nb_set_threads(2);
    int n, all = flushed_on_all(&n);
    ok(!all && n == 0, "subnormals are kept by default (flushed on %d of 2 threads)", n);
    nb_flush_denormal_begin();
    all = flushed_on_all(&n);
    ok(all, "after nb_flush_denormal_begin, subnormals are flushed on %d of 2 threads", n);
    nb_flush_denormal_begin();
    nb_flush_denormal_end();
    all = flushed_on_all(&n);
    ok(all, "an inner begin/end pair leaves the flush on (%d of 2 threads)", n);
    nb_flush_denormal_end();
    flushed_on_all(&n);
    ok(n == 0, "the outer end restores every thread's mode (flushed on %d of 2 threads)", n);
    nb_set_threads(threads);
}

static void test_params(void)
{
    nb_params *ps = nb_params_new(NB_F64);
    nb_tensor *a = nb_param(ps, "a", NB_SHAPE(3, 5));
    nb_set(a, 7, 1.5);
    /* enough parameters to force the flat blocks to move */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        nb_param(ps, name, NB_SHAPE(100, 100));
    }
    void *data, *grad;
    int64_t n;
    nb_params_flat(ps, &data, &grad, &n);
    ok(nb_get(a, 7) == 1.5 && a->data == data && a->grad->data == grad,
       "parameters keep their values when the flat block grows");
    ok(nb_params_count(ps) == 41 && nb_params_numel(ps) == 15 + 40 * 10000 && n >= nb_params_numel(ps),
       "41 parameters, %lld values in a block of %lld", (long long)nb_params_numel(ps), (long long)n);
    ok(nb_params_find(ps, "p39") == nb_params_at(ps, 40) && !nb_params_find(ps, "nope"), "lookup by name");
    int aligned = 1;
    for (int i = 0; i < nb_params_count(ps); i++) aligned &= ((uintptr_t)nb_params_at(ps, i)->data % 64) == 0;
    ok(aligned, "every parameter starts on a 64-byte boundary");
    nb_params_free(ps);
}

static void test_ndtri(void)
{
    /* quantiles from Cephes' ndtri (torch.special.ndtri, float64) */
    const struct { double p, x; } q[] = {
        {0.5, 0.0}, {0.975, 1.959963984540054}, {0.05, -1.6448536269514729},
        {0.9, 1.2815515655446004}, {1e-10, -6.3613409024040557}, {0.999999, 4.7534243088170867},
        {1e-300, -37.047096299361199},
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        worst = fmax(worst, fabs(nb_ndtri(q[i].p) - q[i].x) / fmax(1, fabs(q[i].x)));
    ok(worst < 1e-14, "ndtri matches known quantiles (worst rel err %.1e)", worst);
    /* round trip through the CDF, Φ(x) = erfc(-x/√2)/2, across all three regions */
    double rt = 0;
    for (int i = 1; i < 1000; i++) {
        const double p = i / 1000.0, pt = pow(10.0, -i / 10.0);
        rt = fmax(rt, fabs(0.5 * erfc(-nb_ndtri(p) / sqrt(2.0)) - p) / p);
        rt = fmax(rt, fabs(0.5 * erfc(-nb_ndtri(pt) / sqrt(2.0)) - pt) / pt);
    }
    ok(rt < 1e-12, "Φ(ndtri(p)) = p from 1e-100 to 0.999 (worst rel err %.1e)", rt);
    ok(isinf(nb_ndtri(0)) && nb_ndtri(0) < 0 && isinf(nb_ndtri(1)) && isnan(nb_ndtri(1.5)) && isnan(nb_ndtri(NAN)),
       "ndtri: -inf at 0, +inf at 1, NaN outside [0, 1]");
}

int main(void)
{
    test_ndtri();
    test_views();
    test_broadcast();
    test_reductions();
    test_matmul();
    test_values();
    test_rng();
    test_arena();
    test_arena_chunks();
    test_errors();
    test_ties();
    test_params();
    test_flush_denormal();
    return tap_done();
}
