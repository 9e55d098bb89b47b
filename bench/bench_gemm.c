/* bench/bench_gemm.c — the GEMMs of a Linear layer three ways: dnnl_sgemm, oneDNN's matmul
 * primitive in f32 (bias fused), and the primitive on bf16 inputs. Best of reps, GFLOP/s.
 *
 *   build/bench/bench_gemm [--threads T] [--rows M] [--in K] [--out N] [--reps R]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nabla/nabla.h"
#include "nn/dnnl_mm.h"
#include "tensor/kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 50;
    int64_t M = 128, K = 784, N = 400;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows")) M = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--in")) K = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) N = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    nb_set_threads(threads);
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)(N * K));
    float *y = malloc(sizeof(float) * (size_t)(M * N)), *b = calloc((size_t)N, sizeof(float));
    float *gx = calloc((size_t)(M * K), sizeof(float)), *gw = calloc((size_t)(N * K), sizeof(float));
    uint16_t *xh = malloc(2 * (size_t)(M * K)), *wh = malloc(2 * (size_t)(N * K)), *yh = malloc(2 * (size_t)(M * N));
    for (int64_t i = 0; i < M * K; i++) x[i] = (float)((i % 13) - 6) * 0.01f;
    for (int64_t i = 0; i < N * K; i++) w[i] = (float)((i % 7) - 3) * 0.01f;
    for (int64_t i = 0; i < M * N; i++) y[i] = (float)((i % 5) - 2) * 0.01f;
    nb__to_bf16(x, xh, M * K), nb__to_bf16(w, wh, N * K), nb__to_bf16(y, yh, M * N);
    nb_tape *tp = nb_tape_new();
    const double flop = 2.0 * (double)M * (double)N * (double)K;
    const char *names[3] = {"sgemm", "matmul f32", "matmul bf16"};
    double best[3][3];
    for (int v = 0; v < 3; v++)
        for (int g = 0; g < 3; g++) {
            best[v][g] = INFINITY;
            if (v == 2 && !nb__cpu_has_bf16()) continue;
            for (int r = 0; r < reps; r++) {
                const double t0 = now();
                nb_status st = NB_OK;
                if (v == 0) {
                    if (g == 0) st = nb_gemm(NB_F32, 0, 1, M, N, K, 1, x, K, w, K, 0, y, N);
                    if (g == 1) st = nb_gemm(NB_F32, 0, 0, M, K, N, 1, y, N, w, K, 1, gx, K);
                    if (g == 2) st = nb_gemm(NB_F32, 1, 0, N, K, M, 1, y, N, x, K, 1, gw, K);
                } else {
                    const nb_mm_type t = v == 1 ? NB_MM_F32 : NB_MM_BF16;
                    const void *X = v == 1 ? (const void *)x : xh, *W = v == 1 ? (const void *)w : wh;
                    const void *Y = v == 1 ? (const void *)y : yh;
                    if (g == 0) st = nb__mm(tp, "bench", t, 0, 1, M, N, K, X, K, W, K, b, 0, 0, y);
                    if (g == 1) st = nb__mm(tp, "bench", t, 0, 0, M, K, N, Y, N, W, K, NULL, 1, 0, gx);
                    if (g == 2) st = nb__mm(tp, "bench", t, 1, 0, N, K, M, Y, N, X, K, NULL, 1, 0, gw);
                }
                if (st) return fprintf(stderr, "%s\n", nb_last_error()), 1;
                const double t = now() - t0;
                if (r && t < best[v][g]) best[v][g] = t; /* the first builds the primitive */
            }
        }
    const char *what[3] = {"y = x·Wᵀ + b", "dX += dY·W", "dW += dYᵀ·X"};
    for (int g = 0; g < 3; g++)
        printf("{\"gemm\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, \"threads\": %d, \"%s\": %.1f, \"%s\": %.1f, \"%s\": %.1f}\n",
               what[g], (long long)M, (long long)N, (long long)K, threads, names[0], flop / best[0][g] * 1e-9,
               names[1], flop / best[1][g] * 1e-9, names[2], flop / best[2][g] * 1e-9);
    nb_tape_free(tp);
    return 0;
}
