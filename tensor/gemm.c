/* tensor/gemm.c — row-major GEMM: oneDNN's sgemm for f32, a plain loop for f64. */
#include <oneapi/dnnl/dnnl.h>

#include "tensor/kernels.h"

/* f64 exists for the gradient checks: obviously right matters more than fast. */
typedef struct dgemm_args {
    int ta, tb;
    int64_t N, K, lda, ldb, ldc;
    double alpha, beta;
    const double *A, *B;
    double *C;
} dgemm_args;

static void dgemm_row(const dgemm_args *g, int64_t i)
{
    double *c = g->C + i * g->ldc;
    for (int64_t j = 0; j < g->N; j++) c[j] = g->beta == 0 ? 0 : g->beta * c[j];
    for (int64_t p = 0; p < g->K; p++) {
        double a = g->alpha * (g->ta ? g->A[p * g->lda + i] : g->A[i * g->lda + p]);
        if (g->tb)
            for (int64_t j = 0; j < g->N; j++) c[j] += a * g->B[j * g->ldb + p];
        else
            for (int64_t j = 0; j < g->N; j++) c[j] += a * g->B[p * g->ldb + j];
    }
}

nb_status nb_gemm(nb_dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                  const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
                  int64_t ldc)
{
    if (M == 0 || N == 0) return NB_OK;
    if (dt == NB_F64) {
        const dgemm_args g = {ta, tb, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
        if (M * N * K > (1 << 18)) {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < M; i++) dgemm_row(&g, i);
        } else {
            for (int64_t i = 0; i < M; i++) dgemm_row(&g, i);
        }
        return NB_OK;
    }
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, (float)alpha, A, lda,
                                  B, ldb, (float)beta, C, ldc);
    return st == dnnl_success ? NB_OK : NB_ERR_BACKEND;
}

int nb_cpu_bf16(void)
{
    /* oneDNN's own view of the CPU, so that its ISA cap (ONEDNN_MAX_CPU_ISA) is honoured too */
    return dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core_bf16;
}
