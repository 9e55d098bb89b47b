/* tests/test_linalg.c — apps/linalg.c on synthetic data with a known answer: PCA recovers planted
 * directions and variances, its eigenpairs satisfy C·v = λ·v for a plain-loop covariance, codes
 * round-trip; the Gaussian fit recovers a known covariance and samples from it; bad arguments
 * and bad data fail with a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/linalg.h"
#include "tests/tap.h"

enum { PD = 10, PN = 20000, GD = 3, GN = 20000 };

static double normal(nb_rng *r) /* Box–Muller; 1 - u keeps log away from 0 */
{
    const double u = 1.0 - nb_rng_uniform1(r), v = nb_rng_uniform1(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double dot(const double *a, const double *b, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

/* Plain two-pass reference covariance (full d × d) of n rows, float or double. */
static void ref_cov(const float *f, const double *g, int64_t n, int d, double *cov)
{
    double *m = calloc((size_t)d, sizeof *m);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) m[j] += (f ? f[i * d + j] : g[i * d + j]) / (double)n;
    memset(cov, 0, (size_t)d * (size_t)d * sizeof *cov);
    for (int64_t i = 0; i < n; i++)
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                cov[a * d + b] += ((f ? f[i * d + a] : g[i * d + a]) - m[a]) *
                                  ((f ? f[i * d + b] : g[i * d + b]) - m[b]) / (double)(n - 1);
    free(m);
}

/* ---- PCA ------------------------------------------------------------------------------------ */

static void test_pca(void)
{
    /* Three orthonormal directions (Gram–Schmidt on random vectors) with standard deviations
     * 3, 2, 1, plus isotropic noise of standard deviation 0.05 and an offset mean. */
    nb_rng r = nb_rng_seed(11);
    double u[3][PD], sd[3] = {3, 2, 1}, mu[PD];
    const double noise = 0.05;
    for (int a = 0; a < 3; a++) {
        for (int j = 0; j < PD; j++) u[a][j] = normal(&r);
        for (int b = 0; b < a; b++) {
            const double p = dot(u[a], u[b], PD);
            for (int j = 0; j < PD; j++) u[a][j] -= p * u[b][j];
        }
        const double len = sqrt(dot(u[a], u[a], PD));
        for (int j = 0; j < PD; j++) u[a][j] /= len;
    }
    for (int j = 0; j < PD; j++) mu[j] = 0.5 * j - 2;
    float *x = malloc(sizeof(float) * PN * PD);
    for (int i = 0; i < PN; i++) {
        const double c[3] = {normal(&r), normal(&r), normal(&r)};
        for (int j = 0; j < PD; j++) {
            double v = mu[j] + noise * normal(&r);
            for (int a = 0; a < 3; a++) v += sd[a] * c[a] * u[a][j];
            x[i * PD + j] = (float)v;
        }
    }

    double mean[PD], comp[PD * PD], var[PD];
    nb_status st = pca_fit(x, PN, PD, PD, mean, comp, var);
    ok(st == NB_OK, "pca_fit n=%d d=%d k=%d (%s)", PN, PD, PD, st ? nb_last_error() : "ok");

    int good = 1;
    for (int a = 0; a < 3; a++) {
        const double want = sd[a] * sd[a] + noise * noise;
        good &= fabs(var[a] - want) < 0.04 * want;
        tap_diag("variance %d: %.4f (planted %.4f)", a, var[a], want);
    }
    ok(good, "top 3 variances within 4%% of 9, 4, 1");
    good = 1;
    for (int a = 3; a < PD; a++) good &= var[a] < 2 * noise * noise;
    for (int a = 1; a < PD; a++) good &= var[a] <= var[a - 1];
    ok(good, "the rest is noise, and variances decrease");
    good = 1;
    for (int a = 0; a < 3; a++) good &= fabs(dot(comp + a * PD, u[a], PD)) > 0.99;
    ok(good, "components match the planted directions up to sign (|dot| > 0.99)");
    double worst = 0;
    for (int a = 0; a < PD; a++)
        for (int b = 0; b < PD; b++) worst = fmax(worst, fabs(dot(comp + a * PD, comp + b * PD, PD) - (a == b)));
    ok(worst < 1e-10, "components are orthonormal (worst %.1e)", worst);
    worst = 0;
    for (int j = 0; j < PD; j++) worst = fmax(worst, fabs(mean[j] - mu[j]));
    ok(worst < 4 * sqrt(14.0 / PN), "mean within 4 standard errors (worst %.3f)", worst); /* var <= 9+4+1 */

    /* Against a plain-loop covariance: each pair satisfies C·v = λ·v to rounding. */
    double *cov = malloc(sizeof(double) * PD * PD);
    ref_cov(x, NULL, PN, PD, cov);
    worst = 0;
    for (int a = 0; a < PD; a++)
        for (int i = 0; i < PD; i++)
            worst = fmax(worst, fabs(dot(cov + i * PD, comp + a * PD, PD) - var[a] * comp[a * PD + i]));
    ok(worst < 1e-9 * var[0], "C·v = λ·v for a reference covariance (worst %.1e)", worst);
    free(cov);

    /* Asking for fewer components gives the leading rows of the full fit, same signs. */
    double mean3[PD], comp3[3 * PD], var3[3];
    st = pca_fit(x, PN, PD, 3, mean3, comp3, var3);
    worst = 0;
    for (int i = 0; i < 3 * PD; i++) worst = fmax(worst, fabs(comp3[i] - comp[i]));
    for (int a = 0; a < 3; a++) worst = fmax(worst, fabs(var3[a] - var[a]));
    ok(st == NB_OK && worst < 1e-8, "k=3 equals the first 3 of k=10 (worst %.1e)", worst);

    /* With k = d every point is in the span: the double-precision round trip lands far within
     * half a float ulp, so the float comes back exactly. */
    float back[PD];
    double z[PD];
    worst = 0;
    for (int i = 0; i < 100; i++) {
        pca_encode(mean, comp, PD, PD, x + i * PD, z);
        pca_decode(mean, comp, PD, PD, z, back);
        for (int j = 0; j < PD; j++) worst = fmax(worst, fabs((double)back[j] - x[i * PD + j]));
    }
    ok(worst < 1e-9, "encode/decode with k=d returns the rows exactly (worst %.1e)", worst);
    /* With k = 3 a point in the span is only stored as float, so codes come back to float
     * rounding of a value of size ~5: 1e-6. */
    const double z0[3] = {1.5, -2.0, 0.75};
    double z1[3];
    float xs[PD];
    pca_decode(mean, comp, PD, 3, z0, xs);
    pca_encode(mean, comp, PD, 3, xs, z1);
    worst = 0;
    for (int a = 0; a < 3; a++) worst = fmax(worst, fabs(z1[a] - z0[a]));
    ok(worst < 1e-6, "encode(decode(z)) = z for k=3, to float rounding (worst %.1e)", worst);

    /* Reconstruction error falls with k and equals the variance left in the dropped
     * components ((n-1)/n of it: the fit divides by n-1). */
    double err[PD + 1];
    for (int k = 0; k <= PD; k++) {
        err[k] = 0;
        for (int i = 0; i < PN; i++) {
            pca_encode(mean, comp, PD, k, x + i * PD, z);
            pca_decode(mean, comp, PD, k, z, back);
            for (int j = 0; j < PD; j++) err[k] += pow((double)back[j] - x[i * PD + j], 2) / PN;
        }
    }
    good = 1;
    for (int k = 1; k <= PD; k++) good &= err[k] < err[k - 1];
    ok(good, "reconstruction error decreases with k (%.3f, %.3f, %.3f, %.4f ... %.1e)", err[0],
       err[1], err[2], err[3], err[PD]);
    good = 1;
    for (int k = 0; k < PD; k++) {
        double left = 0;
        for (int a = k; a < PD; a++) left += var[a] * (PN - 1) / PN;
        good &= fabs(err[k] - left) < 1e-4 * left;
    }
    ok(good, "error with k components = variance of the dropped ones");
    free(x);
}

/* ---- Gaussian ------------------------------------------------------------------------------- */

static void test_gauss(void)
{
    const double A[GD][GD] = {{2, 0, 0}, {0.6, 1, 0}, {-0.4, 0.3, 0.5}}, mu[GD] = {1, -2, 3};
    double S[GD * GD]; /* the planted covariance A·Aᵀ */
    for (int i = 0; i < GD; i++)
        for (int j = 0; j < GD; j++) S[i * GD + j] = dot(A[i], A[j], GD);
    nb_rng r = nb_rng_seed(5);
    double *x = malloc(sizeof(double) * GN * GD);
    for (int n = 0; n < GN; n++) {
        const double e[GD] = {normal(&r), normal(&r), normal(&r)};
        for (int i = 0; i < GD; i++) x[n * GD + i] = mu[i] + dot(A[i], e, GD);
    }

    double mean[GD], L[GD * GD], LLt[GD * GD], C[GD * GD];
    nb_status st = gauss_fit(x, GN, GD, mean, L);
    ok(st == NB_OK, "gauss_fit n=%d d=%d (%s)", GN, GD, st ? nb_last_error() : "ok");
    int good = 1;
    for (int i = 0; i < GD; i++) {
        good &= L[i * GD + i] > 0;
        for (int j = i + 1; j < GD; j++) good &= L[i * GD + j] == 0;
    }
    ok(good, "L is lower triangular with a positive diagonal");
    for (int i = 0; i < GD; i++)
        for (int j = 0; j < GD; j++) LLt[i * GD + j] = dot(L + i * GD, L + j * GD, GD);

    /* Exactly the sample covariance (plus the ridge), and the planted one within 4 standard
     * errors: var(Ĉij) = (Sii·Sjj + Sij²)/n for Gaussian data. */
    ref_cov(NULL, x, GN, GD, C);
    double worst = 0, tr = 0;
    for (int i = 0; i < GD; i++) tr += C[i * GD + i];
    for (int i = 0; i < GD * GD; i++)
        worst = fmax(worst, fabs(LLt[i] - C[i] - (i % (GD + 1) == 0) * (1e-6 * tr / GD + 1e-12)));
    ok(worst < 1e-10, "L·Lᵀ = sample covariance + ridge (worst %.1e)", worst);
    good = 1;
    for (int i = 0; i < GD; i++)
        for (int j = 0; j < GD; j++) {
            const double se = sqrt((S[i * GD + i] * S[j * GD + j] + S[i * GD + j] * S[i * GD + j]) / GN);
            good &= fabs(LLt[i * GD + j] - S[i * GD + j]) < 4 * se;
        }
    for (int i = 0; i < GD; i++) good &= fabs(mean[i] - mu[i]) < 4 * sqrt(S[i * GD + i] / GN);
    ok(good, "mean and L·Lᵀ recover the planted Gaussian within sampling error");

    double out[GD];
    gauss_sample(mean, L, GD, (const double[GD]){0}, out);
    ok(!memcmp(out, mean, sizeof out), "gauss_sample with eps = 0 returns the mean");

    /* Samples from standard-normal eps have covariance L·Lᵀ: within 5% of sqrt(Cii·Cjj). */
    double *s = malloc(sizeof(double) * GN * GD);
    for (int n = 0; n < GN; n++) {
        const double e[GD] = {normal(&r), normal(&r), normal(&r)};
        gauss_sample(mean, L, GD, e, s + n * GD);
    }
    ref_cov(NULL, s, GN, GD, C);
    worst = 0;
    for (int i = 0; i < GD; i++)
        for (int j = 0; j < GD; j++)
            worst = fmax(worst, fabs(C[i * GD + j] - LLt[i * GD + j]) /
                                    sqrt(LLt[i * GD + i] * LLt[j * GD + j]));
    ok(worst < 0.05, "%d samples have covariance L·Lᵀ (worst %.3f of the scale)", GN, worst);

    /* Rank-deficient codes (the third coordinate is the sum of the first two, the fourth
     * constant): the ridge still lets dpotrf through. */
    enum { DD = 4, DN = 500 };
    double *y = malloc(sizeof(double) * DN * DD), ym[DD], yl[DD * DD];
    for (int n = 0; n < DN; n++) {
        y[n * DD + 0] = normal(&r), y[n * DD + 1] = normal(&r);
        y[n * DD + 2] = y[n * DD + 0] + y[n * DD + 1], y[n * DD + 3] = 7;
    }
    st = gauss_fit(y, DN, DD, ym, yl);
    good = st == NB_OK;
    for (int i = 0; i < DD * DD && good; i++) good &= isfinite(yl[i]);
    ok(good && yl[3 * DD + 3] > 0, "rank-deficient data fits thanks to the ridge (%s)",
       st ? nb_last_error() : "ok");
    for (int i = 0; i < DN * DD; i++) y[i] = 1.25;
    st = gauss_fit(y, DN, DD, ym, yl);
    ok(st == NB_OK && yl[0] > 0 && ym[2] == 1.25, "constant data fits (L = sqrt(1e-12)·I)");
    free(y);
    free(s);
    free(x);
}

/* ---- errors --------------------------------------------------------------------------------- */

static int fails(nb_status st, nb_status want, const char *part)
{
    return st == want && strstr(nb_last_error(), part) != NULL;
}

static void test_errors(void)
{
    float x[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 1, 0, 0};
    double xd[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 1, 0, 0}, mean[3], comp[9], var[3], L[9];
    ok(fails(pca_fit(x, 4, 3, 4, mean, comp, var), NB_ERR_ARG, "k = 4"), "pca_fit k > d: %s", nb_last_error());
    ok(fails(pca_fit(x, 4, 3, 0, mean, comp, var), NB_ERR_ARG, "1 <= k <= d"), "pca_fit k = 0: %s", nb_last_error());
    ok(fails(pca_fit(x, 1, 3, 2, mean, comp, var), NB_ERR_ARG, "2 rows"), "pca_fit n < 2: %s", nb_last_error());
    ok(fails(pca_fit(NULL, 4, 3, 2, mean, comp, var), NB_ERR_ARG, "NULL"), "pca_fit NULL data: %s", nb_last_error());
    ok(pca_fit(x, 4, 3, 3, mean, comp, var) == NB_OK, "pca_fit n = 4, k = d = 3 is fine");
    ok(fails(gauss_fit(xd, 1, 3, mean, L), NB_ERR_ARG, "2 rows"), "gauss_fit n < 2: %s", nb_last_error());
    ok(fails(gauss_fit(xd, 4, 0, mean, L), NB_ERR_ARG, "d >= 1"), "gauss_fit d = 0: %s", nb_last_error());
    ok(fails(gauss_fit(xd, 4, 3, NULL, L), NB_ERR_ARG, "NULL"), "gauss_fit NULL mean: %s", nb_last_error());
    xd[4] = NAN;
    ok(fails(gauss_fit(xd, 4, 3, mean, L), NB_ERR_NAN, "not finite"), "gauss_fit NaN data: %s", nb_last_error());
}

/* Principal angles of planted subspaces: a plane against itself rotated by θ out of it, against
 * a different basis of itself, and a dependent basis refused. */
static void test_subspace(void)
{
    enum { N = 6 };
    const double th = 0.3;
    /* A spans e1, e2; B spans e1 and cos θ e2 + sin θ e3, with mixed columns */
    double A[N * 2] = {0}, B[N * 2] = {0}, C[N * 2] = {0}, cs[2] = {0};
    A[0 * 2 + 0] = 1, A[1 * 2 + 1] = 1;
    B[0 * 2 + 0] = 2, B[0 * 2 + 1] = 1, B[1 * 2 + 1] = cos(th), B[2 * 2 + 1] = sin(th);
    const nb_status st = subspace_cosines(A, B, N, 2, 2, cs);
    ok(!st && fabs(cs[0] - 1) < 1e-12 && fabs(cs[1] - cos(th)) < 1e-12,
       "subspace_cosines: planes sharing a line, tilted by 0.3: cosines %.6f %.6f", cs[0], cs[1]);
    C[0 * 2 + 0] = 1, C[1 * 2 + 0] = 1, C[0 * 2 + 1] = 3, C[1 * 2 + 1] = -2; /* the same plane as A */
    ok(!subspace_cosines(A, C, N, 2, 2, cs) && fabs(cs[0] - 1) < 1e-12 && fabs(cs[1] - 1) < 1e-12,
       "another basis of the same plane: both angles 0");
    C[0 * 2 + 1] = 2, C[1 * 2 + 1] = 2; /* parallel columns */
    ok(subspace_cosines(A, C, N, 2, 2, cs) == NB_ERR_ARG && strstr(nb_last_error(), "dependent"),
       "dependent columns are refused: %s", nb_last_error());
    ok(subspace_cosines(A, B, N, 7, 2, cs) == NB_ERR_ARG, "more columns than rows are refused");
}

int main(void)
{
    test_subspace();
    test_pca();
    test_gauss();
    test_errors();
    return tap_done();
}
