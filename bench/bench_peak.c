/* bench/bench_peak.c — the f32 FMA peak of one core, measured: twelve independent chains of
 * fused multiply-adds on full vectors (AVX-512 where the CPU has it, else AVX2), the best of
 * three runs. What "% of the FMA peak" in bench/RESULTS.md is measured against. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHAINS(T, FMA, SET)                                                                  \
    T b = SET(1.0000001f), c = SET(1e-9f), a0 = SET(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0,  \
      a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;                       \
    for (long k = 0; k < n; k++) {                                                           \
        a0 = FMA(a0, b, c), a1 = FMA(a1, b, c), a2 = FMA(a2, b, c), a3 = FMA(a3, b, c);      \
        a4 = FMA(a4, b, c), a5 = FMA(a5, b, c), a6 = FMA(a6, b, c), a7 = FMA(a7, b, c);      \
        a8 = FMA(a8, b, c), a9 = FMA(a9, b, c), a10 = FMA(a10, b, c), a11 = FMA(a11, b, c);  \
        /* keeps the chains in registers and the loop from being folded away */              \
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),    \
                         "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));      \
    }

__attribute__((target("avx512f"))) static void run512(long n) { CHAINS(__m512, _mm512_fmadd_ps, _mm512_set1_ps) }
__attribute__((target("avx2,fma"))) static void run256(long n) { CHAINS(__m256, _mm256_fmadd_ps, _mm256_set1_ps) }

int main(void)
{
    __builtin_cpu_init();
    const int wide = __builtin_cpu_supports("avx512f");
    const long n = 50000000;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        const double t0 = now();
        if (wide) run512(n);
        else run256(n);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    const double flop = (double)n * 12 * 2 * (wide ? 16 : 8);
    printf("{\"fma_peak_gflops\": %.1f, \"isa\": \"%s\", \"threads\": 1}\n", flop / best * 1e-9, wide ? "avx512" : "avx2");
    return 0;
}
