/* apps/linalg.c — see linalg.h. Moments are accumulated in double; the O(n·d²) covariance goes
 * through BLAS dsyrk (OpenBLAS here), the eigen and Cholesky factorisations through LAPACKE. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/linalg.h"
#include "tensor/error.h"

/* Rows per dsyrk call: a 256 × 784 double block is 1.6 MB, so a float data set of 60000 rows
 * never needs a centred double copy of its own (376 MB). */
enum { BLOCK_ROWS = 256 };

/* Mean (d) and the lower triangle of the unbiased covariance (d × d, row-major) of n rows given
 * either as float (f) or as double (g). Two passes, so the centring loses no precision. */
static nb_status moments(const char *who, const float *f, const double *g, int64_t n, int d,
                         double *mean, double *cov)
{
    double *blk = malloc((size_t)BLOCK_ROWS * (size_t)d * sizeof *blk);
    if (!blk) return nb_error(NB_ERR_NOMEM, "%s: out of memory (%d × %d block)", who, BLOCK_ROWS, d);
    for (int j = 0; j < d; j++) mean[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += f ? f[i * d + j] : g[i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)n;

    for (size_t i = 0; i < (size_t)d * (size_t)d; i++) cov[i] = 0;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK_ROWS) {
        const int b = n - i0 < BLOCK_ROWS ? (int)(n - i0) : BLOCK_ROWS;
        for (int r = 0; r < b; r++)
            for (int j = 0; j < d; j++) {
                const int64_t at = (i0 + r) * d + j;
                blk[r * d + j] = (f ? f[at] : g[at]) - mean[j];
            }
        /* cov += blkᵀ·blk, lower triangle only: dsyevr and dpotrf read no more. */
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, b, 1.0, blk, d, 1.0, cov, d);
    }
    free(blk);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) cov[i * d + j] /= (double)(n - 1);
    return NB_OK;
}

nb_status pca_fit(const float *data, int64_t n, int d, int k, double *mean, double *comp,
                  double *var)
{
    if (!data || !mean || !comp || !var) return nb_error(NB_ERR_ARG, "pca_fit: NULL argument");
    if (d < 1 || k < 1 || k > d)
        return nb_error(NB_ERR_ARG, "pca_fit: need 1 <= k <= d, got k = %d, d = %d", k, d);
    if (n < 2) return nb_error(NB_ERR_ARG, "pca_fit: need at least 2 rows, got %lld", (long long)n);

    double *cov = malloc((size_t)d * (size_t)d * sizeof *cov), *w = malloc((size_t)d * sizeof *w);
    double *z = malloc((size_t)d * (size_t)k * sizeof *z);
    lapack_int *supp = malloc(2 * (size_t)k * sizeof *supp);
    nb_status st = cov && w && z && supp ? NB_OK
                                         : nb_error(NB_ERR_NOMEM, "pca_fit: out of memory (d = %d)", d);
    if (!st) st = moments("pca_fit", data, NULL, n, d, mean, cov);
    if (!st) {
        /* Only the top k eigenpairs (indices d-k+1..d, ascending): far cheaper than all d. */
        lapack_int m = 0;
        const lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'L', d, cov, d, 0, 0,
                                               d - k + 1, d, 0.0, &m, w, z, k, supp);
        if (info || m != k)
            st = nb_error(NB_ERR_BACKEND, "pca_fit: LAPACKE_dsyevr failed (info %d, %d of %d eigenpairs)",
                          (int)info, (int)m, k);
    }
    for (int c = 0; !st && c < k; c++) {
        const int col = k - 1 - c; /* z's columns ascend; comp's rows descend */
        /* Eigenvectors have no sign of their own: make the largest entry positive so that fits are
         * reproducible across LAPACK builds and thread counts. */
        int big = 0;
        for (int j = 1; j < d; j++)
            if (fabs(z[j * k + col]) > fabs(z[big * k + col])) big = j;
        const double s = z[big * k + col] < 0 ? -1.0 : 1.0;
        for (int j = 0; j < d; j++) comp[c * d + j] = s * z[j * k + col];
        var[c] = w[col] > 0 ? w[col] : 0; /* rounding leaves tiny negatives on rank-deficient data */
    }
    free(cov);
    free(w);
    free(z);
    free(supp);
    return st;
}

void pca_encode(const double *mean, const double *comp, int d, int k, const float *x, double *z)
{
    for (int c = 0; c < k; c++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += comp[c * d + j] * (x[j] - mean[j]);
        z[c] = s;
    }
}

void pca_decode(const double *mean, const double *comp, int d, int k, const double *z, float *x)
{
    for (int j = 0; j < d; j++) {
        double s = mean[j];
        for (int c = 0; c < k; c++) s += comp[c * d + j] * z[c];
        x[j] = (float)s;
    }
}

nb_status gauss_fit(const double *rows, int64_t n, int d, double *mean, double *chol)
{
    if (!rows || !mean || !chol) return nb_error(NB_ERR_ARG, "gauss_fit: NULL argument");
    if (d < 1) return nb_error(NB_ERR_ARG, "gauss_fit: need d >= 1, got %d", d);
    if (n < 2) return nb_error(NB_ERR_ARG, "gauss_fit: need at least 2 rows, got %lld", (long long)n);

    nb_status st = moments("gauss_fit", NULL, rows, n, d, mean, chol);
    if (st) return st;
    double tr = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++)
            if (!isfinite(chol[i * d + j]))
                return nb_error(NB_ERR_NAN, "gauss_fit: the covariance is not finite at (%d, %d)", i, j);
    for (int i = 0; i < d; i++) tr += chol[i * d + i];
    /* Codes often fill a subspace only (a collapsed latent dimension): the ridge makes the
     * covariance positive definite without moving it measurably; the absolute part covers
     * all-constant data. */
    const double ridge = 1e-6 * tr / d + 1e-12;
    for (int i = 0; i < d; i++) chol[i * d + i] += ridge;

    const lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, chol, d);
    if (info > 0)
        return nb_error(NB_ERR_BACKEND, "gauss_fit: covariance not positive definite (LAPACKE_dpotrf "
                        "info %d: leading minor %d)", (int)info, (int)info);
    if (info < 0) return nb_error(NB_ERR_BACKEND, "gauss_fit: LAPACKE_dpotrf failed (info %d)", (int)info);
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++) chol[i * d + j] = 0; /* dpotrf leaves the upper part as is */
    return NB_OK;
}

void gauss_sample(const double *mean, const double *chol, int d, const double *eps, double *out)
{
    for (int i = 0; i < d; i++) {
        double s = mean[i];
        for (int j = 0; j <= i; j++) s += chol[i * d + j] * eps[j];
        out[i] = s;
    }
}

/* An orthonormal basis of the columns of A (n × d, row-major), in place; fails when they are
 * dependent (a zero on R's diagonal). */
static nb_status orthonormal(double *A, int n, int d, const char *which)
{
    double *tau = malloc((size_t)d * sizeof *tau);
    if (!tau) return nb_error(NB_ERR_NOMEM, "subspace_cosines: out of memory");
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, d, A, d, tau);
    double rmax = 0, rmin = INFINITY;
    for (int i = 0; !info && i < d; i++) rmax = fmax(rmax, fabs(A[i * d + i])), rmin = fmin(rmin, fabs(A[i * d + i]));
    if (!info && !(rmin > 1e-12 * rmax))
        info = -100;
    else if (!info)
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, d, d, A, d, tau);
    free(tau);
    if (info == -100) return nb_error(NB_ERR_ARG, "subspace_cosines: the columns of %s are linearly dependent", which);
    if (info) return nb_error(NB_ERR_BACKEND, "subspace_cosines: LAPACK QR failed (info %d)", (int)info);
    return NB_OK;
}

nb_status subspace_cosines(const double *A, const double *B, int n, int da, int db, double *cos_out)
{
    if (!A || !B || !cos_out) return nb_error(NB_ERR_ARG, "subspace_cosines: NULL argument");
    if (da < 1 || db < 1 || da > n || db > n)
        return nb_error(NB_ERR_ARG, "subspace_cosines: need 1 <= da, db <= n, got %d, %d, n = %d", da, db, n);
    double *qa = malloc((size_t)n * da * sizeof *qa), *qb = malloc((size_t)n * db * sizeof *qb);
    double *m = malloc((size_t)da * db * sizeof *m), *sv = malloc((size_t)(da < db ? da : db) * sizeof *sv);
    double *work = malloc((size_t)(da < db ? da : db) * sizeof *work);
    nb_status st = qa && qb && m && sv && work ? NB_OK : nb_error(NB_ERR_NOMEM, "subspace_cosines: out of memory");
    if (!st) {
        memcpy(qa, A, (size_t)n * da * sizeof *qa);
        memcpy(qb, B, (size_t)n * db * sizeof *qb);
        st = orthonormal(qa, n, da, "A");
    }
    if (!st) st = orthonormal(qb, n, db, "B");
    if (!st) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, da, db, n, 1.0, qa, da, qb, db, 0.0, m, db);
        const lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', da, db, m, db, sv, NULL, 1, NULL, 1, work);
        if (info) st = nb_error(NB_ERR_BACKEND, "subspace_cosines: LAPACKE_dgesvd failed (info %d)", (int)info);
        for (int i = 0; !st && i < (da < db ? da : db); i++) cos_out[i] = fmin(1.0, sv[i]);
    }
    free(qa), free(qb), free(m), free(sv), free(work);
    return st;
}
