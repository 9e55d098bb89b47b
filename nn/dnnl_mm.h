/* nn/dnnl_mm.h — internal to nn/: the oneDNN engine nn's ops share, and GEMMs on oneDNN's matmul
 * primitive (bias and ReLU fused, accumulation as a sum post-op, bf16 inputs). */
#ifndef NB_DNNL_MM_H
#define NB_DNNL_MM_H

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

#include "nabla/op.h"

/* The CPU engine and its stream, created once; dnnl_success or why not. */
dnnl_status_t nb__dnnl(dnnl_engine_t *engine, dnnl_stream_t *stream);

typedef enum nb_mm_type { NB_MM_F32, NB_MM_BF16 } nb_mm_type;

/* C[M,N] = op(A)·op(B) (+ bias[N]) (+ C when accumulate), then max(·, 0) when relu.
 * A is (M,K) and B (K,N) after op, op(X) = Xᵀ when tX; lda, ldb are the row strides of A and B
 * as stored; C is f32, row-major, ldc = N. A and B are f32, or bf16 (uint16_t) with NB_MM_BF16;
 * bias is f32 or NULL. The primitive for each shape is built once and kept in the tape's cache.
 * Errors are recorded on the tape (naming `op`) and returned. */
nb_status nb__mm(nb_tape *tp, const char *op, nb_mm_type type, int ta, int tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb, const float *bias,
                 int accumulate, int relu, float *C);

/* Rounds n floats to bf16 (round to nearest even; NaN stays NaN). */
void nb__to_bf16(const float *src, uint16_t *dst, int64_t n);
/* y = max(y, 0) in place (NaN stays NaN) and dst = its bf16 rounding, in one pass. */
void nb__relu_to_bf16(float *y, uint16_t *dst, int64_t n);
/* A Linear's output gradient gy (M, O), masked where y <= 0 when y is given (a fused ReLU),
 * rounded to bf16 into dst, and its column sums added into gb (f32, the bias gradient) unless
 * NULL: one pass over gy; each column summed in row order whatever the threads. */
void nb__grad_to_bf16(int64_t M, int64_t O, const float *gy, const float *y, uint16_t *dst, float *gb);
/* 1 when this CPU computes bf16 GEMMs natively (AVX512-BF16 or AMX-BF16). */
int nb__cpu_has_bf16(void);

#endif
