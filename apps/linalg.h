/* apps/linalg.h — the small linear algebra the lessons need, on LAPACK (LAPACKE). */
#ifndef NB_APPS_LINALG_H
#define NB_APPS_LINALG_H

#include "nabla/nabla.h"

/* Principal components of n rows of dimension d (row-major data): mean (d) and the top k
 * components as rows of comp (k × d), unit length, by decreasing variance (var, k values).
 * The covariance is formed in double and diagonalised with LAPACKE_dsyevr. */
nb_status pca_fit(const float *data, int64_t n, int d, int k, double *mean, double *comp,
                  double *var);
/* Codes (k) of a row, and a row (d) back from codes. */
void pca_encode(const double *mean, const double *comp, int d, int k, const float *x, double *z);
void pca_decode(const double *mean, const double *comp, int d, int k, const double *z, float *x);

/* A full-covariance Gaussian fitted to n rows of dimension d: mean and the lower Cholesky factor
 * L of the covariance (d × d, row-major, LAPACKE_dpotrf; a small ridge keeps it positive). */
nb_status gauss_fit(const double *rows, int64_t n, int d, double *mean, double *chol);
/* A sample mean + L·ε for a given standard normal ε (d). */
void gauss_sample(const double *mean, const double *chol, int d, const double *eps, double *out);

/* The principal angles between the column spaces of A (n × da, row-major) and B (n × db), the
 * first spanning a subspace of n-space and the second another: cos θ_i (min(da, db) values,
 * largest first, i.e. the smallest angle first) as the singular values of Q_Aᵀ Q_B, with Q_A,
 * Q_B orthonormal bases (LAPACKE_dgeqrf, dorgqr, dgesvd). A rank-deficient A or B fails. */
nb_status subspace_cosines(const double *A, const double *B, int n, int da, int db, double *cos_out);

#endif
