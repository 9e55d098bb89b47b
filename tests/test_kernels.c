/* tests/test_kernels.c — every SIMD kernel against its plain C reference (checkasm-style).
 *
 * Inputs: random values at several scales plus edge values (±0, denormals, ±inf, NaN, huge
 * magnitudes) at random positions, over lengths that exercise the vector tails. Kernels built only
 * from IEEE arithmetic must match the reference bit for bit (the build keeps a*b+c unfused).
 * Kernels that call SLEEF must stay within the ulp bound their row in tensor/ew.def states
 * (2 for exp, log, log1p, tanh, each within 1 ulp of the true value on both sides; 4 for
 * kernels built from them); both results must be NaN together and infinite together.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/kernels.h"
#include "tests/tap.h"

enum { MAXN = 1000 };

/* The magnitude an error is measured against. Most kernels: the result, and for accumulating
 * kernels also what was there before and what was added. Kernels whose terms cancel (a sum of
 * a transcendental and other terms of opposite sign) are judged at the scale of their largest
 * term: both builds round that term differently, and the cancellation magnifies it alike. */
static double term_scale(nb_ew_id id, double a, double b, double c, double s0, double want,
                         double before)
{
    double t = fabs(want);
    switch (id) {
    case NB_EW_BCE: return fmax(t, fmax(fabs(a), fabs(a * b)));
    case NB_EW_GNLL:
    case NB_EW_LOGPDF: return fmax(t, fmax(fabs(b), a * a * exp(-b)));
    case NB_EW_ACC_LSMB: t = fmax(t, fmax(fabs(a), fabs(exp(b) * c))); break;
    case NB_EW_KL: return fmax(t, fmax(fmax(1, fabs(b)), fmax(a * a, exp(b))));
    case NB_EW_ACC_BCEB: t = fmax(t, fabs(s0 * a) * fmax(1, fabs(c))); break;
    case NB_EW_ACC_GNLL_LV: t = fmax(t, fabs(s0 * a) * fmax(1, b * b * exp(-c))); break;
    case NB_EW_ACC_GELUB: /* Φ(b) + b·φ(b): the terms have opposite signs for b < 0 */
        t = fmax(t, fabs(a) * fmax(0.5 * erfc(-b * M_SQRT1_2), fabs(b) * exp(-0.5 * b * b) * 0.3989422804));
        break;
    default: break;
    }
    if (!strncmp(nb_ew_names[id], "ACC", 3) || id == NB_EW_MAXACC || id == NB_EW_MINACC)
        t = fmax(t, fmax(fabs(before), fabs(want - before)));
    return t;
}

static double edge_value(nb_dtype dt, unsigned k)
{
    const double f32[] = {0.0, -0.0, 1e-40, -1e-40, FLT_MIN, INFINITY, -INFINITY, NAN,
                          FLT_MAX, -FLT_MAX, 88.7, -103.9, 1e30, -1e30, 1.0, -1.0};
    const double f64[] = {0.0, -0.0, 1e-310, -1e-310, DBL_MIN, INFINITY, -INFINITY, NAN,
                          DBL_MAX, -DBL_MAX, 709.7, -745.1, 1e300, -1e300, 1.0, -1.0};
    return dt == NB_F64 ? f64[k % 16] : f32[k % 16];
}

static void fill(nb_dtype dt, void *p, int n, unsigned *seed, int edges)
{
    for (int i = 0; i < n; i++) {
        double scale = (rand_r(seed) % 4 == 0) ? 100.0 : 10.0;
        double v = scale * (2.0 * rand_r(seed) / RAND_MAX - 1.0);
        if (edges && rand_r(seed) % 8 == 0) v = edge_value(dt, (unsigned)rand_r(seed));
        if (dt == NB_F64)
            ((double *)p)[i] = v;
        else
            ((float *)p)[i] = (float)v;
    }
}

static double get(nb_dtype dt, const void *p, int i)
{
    return dt == NB_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static double ulp_of(nb_dtype dt, double x)
{
    x = fabs(x);
    if (dt == NB_F64) return nextafter(x, INFINITY) - x;
    return (double)nextafterf((float)x, INFINITY) - (double)(float)x;
}

/* Distance of got from want in ulps of scale; NaN and infinities must match exactly. */
static double ulp_err(nb_dtype dt, double got, double want, double scale)
{
    if (isnan(got) || isnan(want)) return isnan(got) && isnan(want) ? 0 : INFINITY;
    if (isinf(got) || isinf(want)) return got == want ? 0 : INFINITY;
    if (!isfinite(scale)) return 0; /* a non-finite term: nothing to measure against */
    return fabs(got - want) / ulp_of(dt, scale);
}

static void check_kernel(nb_dtype dt, const nb_kernel_table *ref, const nb_kernel_table *simd,
                         nb_ew_id id)
{
    static const int lengths[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, MAXN};
    const size_t es = nb_dtype_size(dt);
    unsigned seed = 1234u + (unsigned)id * 7u + (unsigned)dt;
    double buf[6][MAXN];
    const int bound = nb_ew_ulp[id], sleef = bound > 0;
    double worst = 0;
    int mismatches = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        for (int rep = 0; rep < 4; rep++) {
            const int n = lengths[li];
            void *a = buf[0], *b = buf[1], *c = buf[2], *y0 = buf[3], *yr = buf[4], *ys = buf[5];
            fill(dt, a, n, &seed, 1);
            fill(dt, b, n, &seed, rep & 1);
            fill(dt, c, n, &seed, 0);
            fill(dt, y0, n, &seed, 0);
            memcpy(yr, y0, (size_t)n * es);
            memcpy(ys, y0, (size_t)n * es);
            /* pow gets exponents that are not integers: ±1 would test nothing */
            const int power = id == NB_EW_POW || id == NB_EW_ACC_POWB;
            const double s[2] = {power ? (rep & 2 ? -1.5 : 2.5) : rep & 2 ? -1.0 : 1.0, 2.0};
            ref->ew[id](n, yr, a, b, c, s);
            simd->ew[id](n, ys, a, b, c, s);
            for (int i = 0; i < n; i++) {
                double r = get(dt, yr, i), v = get(dt, ys, i);
                if (!sleef) {
                    int same = !memcmp((char *)yr + i * es, (char *)ys + i * es, es) ||
                               (isnan(r) && isnan(v));
                    mismatches += !same;
                } else {
                    double sc = term_scale(id, get(dt, a, i), get(dt, b, i), get(dt, c, i), s[0], r,
                                           get(dt, y0, i));
                    double e = ulp_err(dt, v, r, sc);
                    if (!(e <= worst)) worst = e;
                }
            }
        }
    }
    if (sleef)
        ok(worst <= bound, "%s %s %s: max %.2f ulp from the reference (bound %d)", simd->isa,
           nb_dtype_name(dt), nb_ew_names[id], worst, bound);
    else
        ok(mismatches == 0, "%s %s %s: bit-identical to the reference (%d mismatches)",
           simd->isa, nb_dtype_name(dt), nb_ew_names[id], mismatches);
}

static void check_reductions(nb_dtype dt, const nb_kernel_table *ref, const nb_kernel_table *simd)
{
    unsigned seed = 99;
    double a[MAXN];
    double worst_sum = 0;
    int max_ok = 1, min_ok = 1;
    for (int n = 1; n <= MAXN; n += 37) {
        fill(dt, a, n, &seed, 0);
        double rs = 0, ss = 0, rm = -INFINITY, sm = -INFINITY, rn = INFINITY, sn = INFINITY, abs_sum = 0;
        float rs32 = 0, ss32 = 0, rm32 = -INFINITY, sm32 = -INFINITY, rn32 = INFINITY, sn32 = INFINITY;
        if (dt == NB_F64) {
            ref->sum(n, a, &rs), simd->sum(n, a, &ss), ref->max(n, a, &rm), simd->max(n, a, &sm);
            ref->min(n, a, &rn), simd->min(n, a, &sn);
        } else {
            ref->sum(n, a, &rs32), simd->sum(n, a, &ss32);
            ref->max(n, a, &rm32), simd->max(n, a, &sm32);
            ref->min(n, a, &rn32), simd->min(n, a, &sn32);
            rs = rs32, ss = ss32, rm = rm32, sm = sm32, rn = rn32, sn = sn32;
        }
        min_ok &= rn == sn;
        for (int i = 0; i < n; i++) abs_sum += fabs(get(dt, a, i));
        /* a reordered sum differs by at most about n·eps·Σ|a| */
        double eps = dt == NB_F64 ? DBL_EPSILON : FLT_EPSILON;
        worst_sum = fmax(worst_sum, fabs(rs - ss) / (n * eps * abs_sum));
        max_ok &= rm == sm;
    }
    ok(worst_sum <= 1, "%s %s sum: reordering error %.3f of the n·eps·Σ|a| bound", simd->isa,
       nb_dtype_name(dt), worst_sum);
    ok(max_ok, "%s %s max: identical to the reference", simd->isa, nb_dtype_name(dt));
    ok(min_ok, "%s %s min: identical to the reference", simd->isa, nb_dtype_name(dt));
    /* a NaN or an infinity, in the vector body or the tail, at each end of a 45-element span */
    const double specials[3] = {NAN, INFINITY, -INFINITY};
    int special_ok = 1;
    for (int k = 0; k < 3; k++)
        for (int at = 0; at < 45; at += 11) {
            fill(dt, a, 45, &seed, 0);
            if (dt == NB_F64) ((double *)a)[at] = specials[k];
            else ((float *)a)[at] = (float)specials[k];
            double r[2][2];
            for (int side = 0; side < 2; side++) {
                const nb_kernel_table *t = side ? simd : ref;
                double mx = -INFINITY, mn = INFINITY;
                float mx32 = -INFINITY, mn32 = INFINITY;
                if (dt == NB_F64) t->max(45, a, &mx), t->min(45, a, &mn);
                else t->max(45, a, &mx32), t->min(45, a, &mn32), mx = mx32, mn = mn32;
                r[side][0] = mx, r[side][1] = mn;
            }
            const double want_max = k == 0 ? NAN : k == 1 ? INFINITY : r[0][0];
            const double want_min = k == 0 ? NAN : k == 2 ? -INFINITY : r[0][1];
            for (int side = 0; side < 2; side++)
                special_ok &= (isnan(want_max) ? isnan(r[side][0]) : r[side][0] == want_max) &&
                              (isnan(want_min) ? isnan(r[side][1]) : r[side][1] == want_min);
            special_ok &= k == 0 || (r[0][0] == r[1][0] && r[0][1] == r[1][1]);
        }
    ok(special_ok, "%s %s max and min: a NaN anywhere gives NaN, an infinity is the max or min, as the "
       "reference", simd->isa, nb_dtype_name(dt));
}

/* The optimizer updates are arithmetic and sqrt only: bit-identical to the reference. */
static void check_optimizers(nb_dtype dt, const nb_kernel_table *ref, const nb_kernel_table *simd)
{
    const size_t es = nb_dtype_size(dt);
    unsigned seed = 4242;
    double buf[4][MAXN], cpy[2][4][MAXN];
    const int n = 997; /* a ragged tail */
    const char *names[3] = {"sgd (momentum, nesterov, decay)", "adam (L2) and adamw", "adagrad"};
    for (int kind = 0; kind < 3; kind++) {
        int same = 1;
        for (int variant = 0; variant < 2; variant++) {
            fill(dt, buf[0], n, &seed, 0);
            fill(dt, buf[1], n, &seed, 0);
            fill(dt, buf[2], n, &seed, 0);
            fill(dt, buf[3], n, &seed, 0);
            for (int k = 0; k < 4; k++) /* Adam's second moment must be >= 0 */
                for (int i = 0; i < n; i++)
                    if (k == 3 || (kind == 2 && k == 2))
                        dt == NB_F64 ? (((double *)buf[k])[i] = fabs(((double *)buf[k])[i]))
                                     : (((float *)buf[k])[i] = fabsf(((float *)buf[k])[i]));
            nb_optim_args a = {.lr = 0.01, .weight_decay = 0.1, .momentum = 0.9, .dampening = 0.1,
                               .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step_size = 0.013,
                               .bc2_sqrt = 0.04, .nesterov = variant, .first = 0,
                               .decoupled = variant};
            for (int side = 0; side < 2; side++) {
                const nb_kernel_table *k = side ? simd : ref;
                memcpy(cpy[side][0], buf[0], (size_t)n * es);
                memcpy(cpy[side][1], buf[2], (size_t)n * es);
                memcpy(cpy[side][2], buf[3], (size_t)n * es);
                memcpy(cpy[side][3], buf[1], (size_t)n * es);
                if (kind == 0) k->sgd(n, cpy[side][0], cpy[side][3], cpy[side][1], &a);
                if (kind == 1) k->adam(n, cpy[side][0], cpy[side][3], cpy[side][1], cpy[side][2], &a);
                if (kind == 2) k->adagrad(n, cpy[side][0], cpy[side][3], cpy[side][1], &a);
            }
            for (int q = 0; q < 3; q++) same &= !memcmp(cpy[0][q], cpy[1][q], (size_t)n * es);
            for (int i = 0; i < n; i++) same &= get(dt, cpy[0][3], i) == 0 && get(dt, cpy[1][3], i) == 0;
        }
        ok(same, "%s %s optimizer %s: bit-identical to the reference, gradients zeroed", simd->isa,
           nb_dtype_name(dt), names[kind]);
    }
    double r = 0, v = 0;
    fill(dt, buf[0], n, &seed, 0);
    ref->sumsq(n, buf[0], &r);
    simd->sumsq(n, buf[0], &v);
    ok(fabs(r - v) <= 1e-14 * r, "%s %s sum of squares in double: %.17g vs %.17g", simd->isa, nb_dtype_name(dt), v, r);
}

/* nb_ew_rowsum against nb_ew then nb_ew_reduce: bit-identical, whatever the row length (vector
 * tails), with a second input shared by every row (row stride 0), and refused (0) where a row is
 * not dense or too long for its buffer. */
/* BCE's two-output kernel: its terms are the BCE kernel's, bit for bit, in each build; its
 * derivative σ(a) - b is within 4 ulp (of max(1, |b|)) of the reference's and of the one the
 * SIGMOID kernel gives */
static void check_bce2(nb_dtype dt, const nb_kernel_table *ref, const nb_kernel_table *simd)
{
    const size_t es = nb_dtype_size(dt);
    unsigned seed = 777u + (unsigned)dt;
    double a[MAXN], b[MAXN], y[2][MAXN], d[2][MAXN], t[MAXN], sg[MAXN];
    int same = 1;
    double worst = 0, worst_sig = 0;
    for (int rep = 0; rep < 8; rep++) {
        const int n = rep < 4 ? 1 + 13 * rep : MAXN - rep;
        fill(dt, a, n, &seed, rep & 1);
        for (int i = 0; i < n; i++) { /* targets in [0, 1] */
            const double v = (double)rand_r(&seed) / RAND_MAX;
            dt == NB_F64 ? (void)(((double *)b)[i] = v) : (void)(((float *)b)[i] = (float)v);
        }
        for (int side = 0; side < 2; side++) {
            const nb_kernel_table *k = side ? simd : ref;
            k->bce2(n, y[side], d[side], a, b);
            k->ew[NB_EW_BCE](n, t, a, b, NULL, NULL);
            for (int i = 0; i < n; i++)
                same &= !memcmp((char *)t + i * es, (char *)y[side] + i * es, es) || (isnan(get(dt, t, i)) && isnan(get(dt, y[side], i)));
        }
        ref->ew[NB_EW_SIGMOID](n, sg, a, NULL, NULL, NULL);
        for (int i = 0; i < n; i++) {
            const double sc = fmax(1, fabs(get(dt, b, i)));
            const double e = ulp_err(dt, get(dt, d[1], i), get(dt, d[0], i), sc);
            const double es2 = ulp_err(dt, get(dt, d[0], i), get(dt, sg, i) - get(dt, b, i), sc);
            if (!(e <= worst)) worst = e;
            if (!(es2 <= worst_sig)) worst_sig = es2;
        }
    }
    ok(same, "%s %s bce2: terms bit-identical to the BCE kernel's", simd->isa, nb_dtype_name(dt));
    ok(worst <= 4 && worst_sig <= 4, "%s %s bce2: sigmoid(a) - b within %.2f ulp of the reference, %.2f of the SIGMOID kernel's",
       simd->isa, nb_dtype_name(dt), worst, worst_sig);
}

/* f32 tanh is nabla's own (polynomial below |x| = 0.98, exp above): against the true value
 * (double tanh, correctly rounded to well under an f32 ulp), not only against glibc's tanhf,
 * which is itself 2.19 ulp off in places. Every 61st float from 0 to 10 (past which tanh rounds
 * to 1) and 67 more around the switch, alternately negated, and the edge values. */
static void check_tanh_f32(const nb_kernel_table *simd)
{
    enum { N = 4096 };
    static float x[N], y[N];
    double worst = 0, worst_at = 0;
    int n = 0, bad_edges = 0;
    const uint32_t hi = 0x41200000u; /* 10.0f */
    for (uint64_t u = 0; u <= hi + 4096; u += 61) {
        uint32_t b = (uint32_t)u;
        if (u > hi) b = 0x3f7ae148u - 2048 + (uint32_t)(u - hi); /* around 0.98 */
        float v;
        memcpy(&v, &b, sizeof v);
        x[n++] = (u / 61) & 1 ? -v : v;
        if (n == N || u + 61 > hi + 4096) {
            simd->ew[NB_EW_TANH](n, y, x, NULL, NULL, (const double[]){1, 2});
            for (int i = 0; i < n; i++) {
                const double want = tanh((double)x[i]), e = ulp_err(NB_F32, y[i], want, want);
                if (!(e <= worst)) worst = e, worst_at = x[i];
            }
            n = 0;
        }
    }
    const float edge[6] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_TRUE_MIN};
    simd->ew[NB_EW_TANH](6, y, edge, NULL, NULL, (const double[]){1, 2});
    bad_edges += !(y[0] == 0 && !signbit(y[0])) + !(y[1] == 0 && signbit(y[1]));
    bad_edges += (y[2] != 1) + (y[3] != -1) + !isnan(y[4]) + (y[5] != FLT_TRUE_MIN && y[5] != 0);
    ok(worst <= 1.2 && bad_edges == 0, "%s f32 tanh: max %.3f ulp from the true value (at %.9g; bound 1.2), "
       "%d edge values wrong", simd->isa, worst, worst_at, bad_edges);
}

/* Box-Muller in the f64 table: the reference's and the SIMD normals within 4 ulp (of the pair's
 * scale, p1·ρ) of the formula computed here with libm, and a pair's normals the same bits alone
 * as in the vector body or the tail of a longer call. */
static void check_box_muller(const nb_kernel_table *ref, const nb_kernel_table *simd)
{
    static const int lengths[] = {1, 3, 7, 8, 9, 17, 100};
    const nb_kernel_table *tabs[2] = {ref, simd};
    unsigned seed = 4321;
    double worst = 0;
    int moved = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int n = lengths[li];
        double r0[100], t0[100], r[2][100], t[2][100];
        for (int i = 0; i < n; i++) {
            r0[i] = i == 0 ? 0.0 : i == 1 ? 1 - 0x1p-53 : rand_r(&seed) / ((double)RAND_MAX + 1);
            t0[i] = rand_r(&seed) / ((double)RAND_MAX + 1);
        }
        for (int k = 0; k < 2; k++) {
            memcpy(r[k], r0, sizeof r0), memcpy(t[k], t0, sizeof t0);
            tabs[k]->box_muller(n, r[k], t[k], 0.5, 2.0);
        }
        for (int i = 0; i < n; i++) {
            const double rho = sqrt(-2 * log(1 - r0[i])), sc = fmax(0.5, 2.0 * rho);
            const double wc = 0.5 + 2.0 * rho * cos(2 * M_PI * t0[i]), ws = 0.5 + 2.0 * rho * sin(2 * M_PI * t0[i]);
            for (int k = 0; k < 2; k++)
                worst = fmax(worst, fmax(ulp_err(NB_F64, r[k][i], wc, sc), ulp_err(NB_F64, t[k][i], ws, sc)));
            double a = r0[i], b = t0[i];
            simd->box_muller(1, &a, &b, 0.5, 2.0);
            moved += memcmp(&a, &r[1][i], sizeof a) != 0 || memcmp(&b, &t[1][i], sizeof b) != 0;
        }
    }
    ok(worst <= 4 && moved == 0, "%s box_muller: max %.2f ulp from the formula (bound 4), %d pairs that "
       "changed with their position", simd->isa, worst, moved);
}

static void check_rowsum(nb_dtype dt)
{
    static const nb_ew_id ids[] = {NB_EW_BCE, NB_EW_KL, NB_EW_SQDIFF, NB_EW_SOFTPLUS};
    static const int64_t inners[] = {1, 17, 784, 4096};
    const size_t es = nb_dtype_size(dt);
    for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++)
        for (size_t li = 0; li < sizeof inners / sizeof inners[0]; li++)
            for (int shared = 0; shared < 2; shared++) {
                const nb_ew_id id = ids[t];
                const int64_t R = 37, L = inners[li], n = R * L;
                const int two = nb_ew_arity[id] == 2;
                if ((dt == NB_F64 && L == 4096) || (shared && !two)) continue; /* 4096 doubles: past the buffer */
                char *a = malloc((size_t)n * es), *b = malloc((size_t)n * es), *terms = malloc((size_t)n * es);
                char *y1 = malloc((size_t)R * es), *y2 = malloc((size_t)R * es);
                for (int64_t i = 0; i < n; i++) {
                    const double va = 6 * ((double)rand() / RAND_MAX - 0.5), vb = (double)rand() / RAND_MAX;
                    if (dt == NB_F64) ((double *)a)[i] = va, ((double *)b)[i] = vb;
                    else ((float *)a)[i] = (float)va, ((float *)b)[i] = (float)vb;
                }
                nb_tensor ta, tb, tt, ty1, ty2;
                nb_tensor_wrap(&ta, dt, 2, (const int64_t[]){R, L}, a);
                nb_tensor_wrap(&tb, dt, 2, (const int64_t[]){R, L}, b);
                if (shared) tb.stride[0] = 0;
                nb_tensor_wrap(&tt, dt, 2, (const int64_t[]){R, L}, terms);
                nb_tensor_wrap(&ty1, dt, 1, (const int64_t[]){R}, y1);
                nb_tensor_wrap(&ty2, dt, 2, (const int64_t[]){R, 1}, y2);
                const int done = nb_ew_rowsum(id, &ty1, &ta, two ? &tb : NULL);
                nb_ew(id, &tt, &ta, two ? &tb : NULL, NULL, 0, 0);
                nb_ew_reduce(NB_RED_SUM, &ty2, &tt, 0);
                ok(done && !memcmp(y1, y2, (size_t)R * es), "%s rowsum %s, %lld x %lld%s: equals the terms then their row sums",
                   nb_dtype_name(dt), nb_ew_names[id], (long long)R, (long long)L, shared ? ", second input shared" : "");
                free(a), free(b), free(terms), free(y1), free(y2);
            }
    if (dt != NB_F32) return;
    static float buf[2 * 9000], out[2];
    nb_tensor ta, ty;
    nb_tensor_wrap(&ty, NB_F32, 1, (const int64_t[]){2}, out);
    nb_tensor_wrap(&ta, NB_F32, 2, (const int64_t[]){2, 9000}, buf);
    ok(!nb_ew_rowsum(NB_EW_SOFTPLUS, &ty, &ta, NULL), "rowsum refuses rows of 9000 floats (past its buffer)");
    nb_tensor_wrap(&ta, NB_F32, 2, (const int64_t[]){2, 100}, buf);
    ta.stride[1] = 2;
    ok(!nb_ew_rowsum(NB_EW_SOFTPLUS, &ty, &ta, NULL), "rowsum refuses rows that are not dense");
}

int main(void)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        const nb_kernel_table *ref = nb_kernels_isa((nb_dtype)dt, NB_ISA_REF);
        for (int isa = NB_ISA_AVX2; isa < NB_ISA_COUNT; isa++) {
            const nb_kernel_table *simd = nb_kernels_isa((nb_dtype)dt, (nb_isa)isa);
            if (!simd) {
                ok(1, "# SKIP %s ISA %d: not built, or this CPU lacks it", nb_dtype_name((nb_dtype)dt), isa);
                continue;
            }
            for (int id = 0; id < NB_EW_COUNT; id++) check_kernel((nb_dtype)dt, ref, simd, (nb_ew_id)id);
            check_reductions((nb_dtype)dt, ref, simd);
            check_optimizers((nb_dtype)dt, ref, simd);
            check_bce2((nb_dtype)dt, ref, simd);
            if (dt == NB_F32) check_tanh_f32(simd);
            if (dt == NB_F64) check_box_muller(ref, simd);
        }
    }
    check_rowsum(NB_F32);
    check_rowsum(NB_F64);
    tap_diag("kernels in use: %s", nb_kernels(NB_F32)->isa);
    return tap_done();
}
