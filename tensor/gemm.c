/* tensor/gemm.c — row-major GEMM: oneDNN's sgemm for f32, a plain loop for f64. */
#include <oneapi/dnnl/dnnl.h>

#include "tensor/kernels.h"

/* f64 exists for the gradient checks: obviously right matters more than fast. */
static void dgemm_ref(int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                      const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                      double *C, int64_t ldc)
{
#pragma omp parallel for schedule(static) if (M * N * K > (1 << 18))
    for (int64_t i = 0; i < M; i++) {
        double *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta == 0 ? 0 : beta * c[j];
        for (int64_t p = 0; p < K; p++) {
            double a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
            if (tb)
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + p];
            else
                for (int64_t j = 0; j < N; j++) c[j] += a * B[p * ldb + j];
        }
    }
}

nb_status nb_gemm(nb_dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                  const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
                  int64_t ldc)
{
    if (M == 0 || N == 0) return NB_OK;
    if (dt == NB_F64) {
        dgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return NB_OK;
    }
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, (float)alpha, A, lda,
                                  B, ldb, (float)beta, C, ldc);
    return st == dnnl_success ? NB_OK : NB_ERR_BACKEND;
}
