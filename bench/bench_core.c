/* bench/bench_core.c — micro-benchmarks of the core, each against its baseline in the same run.
 *
 *   1. exp, sigmoid, tanh over 1M floats: nabla's kernel (the ISA picked at run time) against a
 *      plain libm loop, both on one thread, plus nabla's op on all threads;
 *   2. matmul 128x784 · 784x400 through nb_matmul against a direct dnnl_sgemm call;
 *   3. framework overhead: record + backward of a 20-op chain on tiny tensors, per op.
 *
 * Variants are interleaved and each row reports the median of its repetitions.
 * Run: meson test -C build --benchmark -v   (or build/bench/bench_core directly)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "autograd/tape.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enum { REPS = 31, N1M = 1 << 20 };

static float sigmoidf_ref(float x) { return 1.0f / (1.0f + expf(-x)); }

static void row(const char *what, double nabla, const char *base_name, double base)
{
    printf("| %-34s | %10.3f | %-22s | %10.3f | %6.2fx |\n", what, nabla * 1e3, base_name,
           base * 1e3, base / nabla);
}

static void bench_transcendentals(void)
{
    float *x = aligned_alloc(64, N1M * sizeof(float)), *y = aligned_alloc(64, N1M * sizeof(float));
    nb_rng r = nb_rng_seed(1);
    nb_tensor tx, ty;
    nb_tensor_wrap(&tx, NB_F32, 1, (const int64_t[]){N1M}, x);
    nb_tensor_wrap(&ty, NB_F32, 1, (const int64_t[]){N1M}, y);
    nb_rng_uniform(&r, &tx, -10, 10);
    const nb_kernel_table *k = nb_kernels(NB_F32);
    struct { const char *name; nb_ew_id id; float (*libm)(float); } fs[] = {
        {"exp", NB_EW_EXP, expf}, {"sigmoid", NB_EW_SIGMOID, sigmoidf_ref}, {"tanh", NB_EW_TANH, tanhf}};
    const int threads = omp_get_max_threads();
    for (size_t f = 0; f < sizeof fs / sizeof fs[0]; f++) {
        double tk[REPS], tl[REPS], to[REPS];
        for (int rep = 0; rep < REPS; rep++) {
            double t0 = now();
            k->ew[fs[f].id](N1M, y, x, NULL, NULL, NULL);
            double t1 = now();
            for (int i = 0; i < N1M; i++) y[i] = fs[f].libm(x[i]);
            double t2 = now();
            nb_ew(fs[f].id, &ty, &tx, NULL, NULL, 0, 0);
            double t3 = now();
            tk[rep] = t1 - t0, tl[rep] = t2 - t1, to[rep] = t3 - t2;
        }
        char what[64];
        double mk = median(tk, REPS), ml = median(tl, REPS), mo = median(to, REPS);
        snprintf(what, sizeof what, "%s 1M f32, %s, 1 thread", fs[f].name, k->isa);
        row(what, mk, "libm loop, 1 thread", ml);
        snprintf(what, sizeof what, "%s 1M f32, nb_ew, %d threads", fs[f].name, threads);
        row(what, mo, "libm loop, 1 thread", ml);
    }
    free(x);
    free(y);
}

static void bench_matmul(void)
{
    enum { M = 128, K = 784, N = 400 };
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    nb_rng r = nb_rng_seed(2);
    nb_tensor *a = nb_uniform(tp, &r, NB_F32, NB_SHAPE(M, K), -1, 1);
    nb_tensor *b = nb_uniform(tp, &r, NB_F32, NB_SHAPE(K, N), -1, 1);
    float *c = aligned_alloc(64, (size_t)M * N * sizeof(float));
    nb_tape *tp2 = nb_tape_new();
    nb_tape_set_grad(tp2, 0);
    enum { R = 201 };
    double tn[R], td[R];
    for (int rep = 0; rep < R; rep++) {
        double t0 = now();
        nb_tape_reset(tp2);
        nb_tensor *y = nb_matmul(tp2, a, b);
        double t1 = now();
        dnnl_sgemm('N', 'N', M, N, K, 1.0f, a->data, K, b->data, N, 0.0f, c, N);
        double t2 = now();
        if (!y) {
            fprintf(stderr, "bench: %s\n", nb_tape_error(tp2));
            exit(1);
        }
        tn[rep] = t1 - t0, td[rep] = t2 - t1;
    }
    double mn = median(tn, R), md = median(td, R);
    char what[64];
    snprintf(what, sizeof what, "matmul 128x784x400 f32, %d thr", omp_get_max_threads());
    row(what, mn, "dnnl_sgemm direct", md);
    printf("|   (%.1f GFLOP/s through nb_matmul)  |            |                        |            |        |\n",
           2.0 * M * N * K / mn * 1e-9);
    free(c);
    nb_tape_free(tp);
    nb_tape_free(tp2);
}

static void bench_overhead(void)
{
    enum { CHAIN = 20, R = 2001 };
    nb_tape *tp = nb_tape_new();
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(1, 8));
    nb_rng r = nb_rng_seed(3);
    nb_rng_uniform(&r, w, -0.5, 0.5);
    double t[R];
    for (int rep = 0; rep < R; rep++) {
        double t0 = now();
        nb_tape_reset(tp);
        nb_tensor *x = w;
        for (int i = 0; i < CHAIN / 4; i++) {
            x = nb_tanh(tp, x);
            x = nb_mul(tp, x, w);
            x = nb_add(tp, x, w);
            x = nb_sigmoid(tp, x);
        }
        nb_tensor *loss = nb_sum_all(tp, x);
        if (nb_backward(tp, loss)) {
            fprintf(stderr, "bench: %s\n", nb_tape_error(tp));
            exit(1);
        }
        t[rep] = now() - t0;
        nb_params_zero_grad(ps);
    }
    const double per_op = median(t, R) / (CHAIN + 1);
    printf("| %-34s | %8.3f us | %-22s | %10s | %6s |\n", "tape record+backward, per op (1x8)",
           per_op * 1e6, "target: < 1 us", "", per_op < 1e-6 ? "met" : "missed");
    nb_params_free(ps);
    nb_tape_free(tp);
}

int main(void)
{
    printf("nabla core benchmarks: kernels %s, %d OpenMP threads, oneDNN %d.%d.%d\n\n",
           nb_kernels(NB_F32)->isa, omp_get_max_threads(), DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR,
           DNNL_VERSION_PATCH);
    printf("| %-34s | %10s | %-22s | %10s | %7s |\n", "benchmark", "nabla (ms)", "baseline",
           "base (ms)", "speedup");
    printf("|------------------------------------|------------|------------------------|------------|---------|\n");
    bench_transcendentals();
    bench_matmul();
    bench_overhead();
    return 0;
}
