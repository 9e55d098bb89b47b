/* nn/dnnl_mm.c — see dnnl_mm.h. */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include <omp.h>

#include "nn/dnnl_mm.h"

/* ---- the engine ---------------------------------------------------------------------------- */

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t engine_status = dnnl_runtime_error;
static once_flag engine_once = ONCE_FLAG_INIT;

static void engine_destroy(void)
{
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
}

static void engine_create(void)
{
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (engine_status == dnnl_success) {
        engine_status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
        if (engine_status == dnnl_success) atexit(engine_destroy);
    }
}

dnnl_status_t nb__dnnl(dnnl_engine_t *e, dnnl_stream_t *s)
{
    call_once(&engine_once, engine_create);
    *e = engine, *s = stream;
    return engine_status;
}

/* ---- bf16 ---------------------------------------------------------------------------------- */

/* round to nearest even; a NaN keeps a set mantissa bit. Branch-free: as a select, GCC made the
 * vector loops test for NaN lanes and branch, at a third of the speed. */
static inline uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t nan = 0u - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    const uint32_t r = (nan & (u | 0x00400000u)) | (~nan & (u + 0x7fffu + ((u >> 16) & 1)));
    return (uint16_t)(r >> 16);
}

/* The loops run over spans with restrict pointers: without, each gets an aliasing check. */
enum { SPAN = 1 << 14 };

__attribute__((target_clones("avx512f", "avx2", "default")))
static void to_bf16_span(const float *restrict src, uint16_t *restrict dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_round(src[i]);
}

/* the span's AVX-512 clone converts 16 at a time: 2.5x the SSE2 baseline on a cached block */
void nb__to_bf16(const float *src, uint16_t *dst, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; i += SPAN) to_bf16_span(src + i, dst + i, n - i < SPAN ? n - i : SPAN);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void relu_bf16_span(float *restrict y, uint16_t *restrict dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float v = y[i] < 0 ? 0 : y[i]; /* as NB_EW_RELU: a NaN stays */
        y[i] = v;
        dst[i] = bf16_round(v);
    }
}

void nb__relu_to_bf16(float *y, uint16_t *dst, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; i += SPAN) relu_bf16_span(y + i, dst + i, n - i < SPAN ? n - i : SPAN);
}

/* Columns [c0, c1) of every row, rows in order, so that gb's sums do not depend on the split. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void grad_cols(int64_t M, int64_t O, int64_t c0, int64_t c1, const float *restrict gy,
                      const float *restrict y, uint16_t *restrict dst, float *restrict gb)
{
    for (int64_t m = 0; m < M; m++) {
        const float *g = gy + m * O, *yr = y ? y + m * O : NULL;
        uint16_t *d = dst + m * O;
        if (y)
            for (int64_t o = c0; o < c1; o++) {
                const float gv = g[o], v = yr[o] > 0 ? gv : 0; /* as NB_EW_RELU_MASK */
                d[o] = bf16_round(v);
                if (gb) gb[o] += v;
            }
        else
            for (int64_t o = c0; o < c1; o++) {
                d[o] = bf16_round(g[o]);
                if (gb) gb[o] += g[o];
            }
    }
}

void nb__grad_to_bf16(int64_t M, int64_t O, const float *gy, const float *y, uint16_t *dst, float *gb)
{
    /* one band of whole columns per thread, each swept row by row: its stretch of gb stays in L1
     * and every row's stretch is read in one stream (bands of 256 columns stepped 8 KB apart
     * through 512 rows, and ran 3x slower) */
    const int nt = M * O > (1 << 18) ? omp_get_max_threads() : 1;
    const int64_t band = ((O + nt - 1) / nt + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int t = 0; t < nt; t++) {
        const int64_t c0 = t * band, c1 = c0 + band < O ? c0 + band : O;
        if (c0 < c1) grad_cols(M, O, c0, c1, gy, y, dst, gb);
    }
}

int nb__cpu_has_bf16(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ||
           (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
}

/* ---- matmul primitives, one per shape ------------------------------------------------------- */

typedef struct mm_key {
    int type, ta, tb, has_bias, accumulate, relu;
    int64_t M, N, K, lda, ldb;
} mm_key;

typedef struct mm_prim {
    dnnl_primitive_t p;
    dnnl_memory_t a, b, bias, c;
} mm_prim;

static void mm_free(void *obj)
{
    mm_prim *m = obj;
    if (m->p) dnnl_primitive_destroy(m->p);
    if (m->a) dnnl_memory_destroy(m->a);
    if (m->b) dnnl_memory_destroy(m->b);
    if (m->bias) dnnl_memory_destroy(m->bias);
    if (m->c) dnnl_memory_destroy(m->c);
    free(m);
}

#define TRY(call)                                                                             \
    do {                                                                                      \
        if ((st = (call)) != dnnl_success) goto fail;                                         \
    } while (0)

static mm_prim *mm_create(const mm_key *k, dnnl_status_t *status)
{
    mm_prim *m = calloc(1, sizeof *m);
    if (!m) return *status = dnnl_out_of_memory, NULL;
    dnnl_status_t st = dnnl_success;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_data_type_t in = k->type == NB_MM_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, bias_md, c_md;
    dnnl_dims_t a_dims = {k->M, k->K}, b_dims = {k->K, k->N}, c_dims = {k->M, k->N}, bias_dims = {1, k->N};
    dnnl_dims_t a_str = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1}, b_str = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    dnnl_dims_t c_str = {k->N, 1}, bias_str = {k->N, 1};
    TRY(dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, in, a_str));
    TRY(dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, in, b_str));
    TRY(dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str));
    TRY(dnnl_memory_desc_init_by_strides(&bias_md, 2, bias_dims, dnnl_f32, bias_str));
    dnnl_matmul_desc_t d;
    TRY(dnnl_matmul_desc_init(&d, &a_md, &b_md, k->has_bias ? &bias_md : NULL, &c_md));
    TRY(dnnl_primitive_attr_create(&attr));
    TRY(dnnl_post_ops_create(&po));
    if (k->accumulate) TRY(dnnl_post_ops_append_sum(po, 1.0f));
    if (k->relu) TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_engine_t e;
    dnnl_stream_t s;
    TRY(nb__dnnl(&e, &s));
    TRY(dnnl_primitive_desc_create(&pd, &d, attr, e, NULL));
    TRY(dnnl_primitive_create(&m->p, pd));
    TRY(dnnl_memory_create(&m->a, &a_md, e, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&m->b, &b_md, e, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&m->c, &c_md, e, DNNL_MEMORY_NONE));
    if (k->has_bias) TRY(dnnl_memory_create(&m->bias, &bias_md, e, DNNL_MEMORY_NONE));
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st) {
        mm_free(m);
        *status = st;
        return NULL;
    }
    return m;
}

nb_status nb__mm(nb_tape *tp, const char *op, nb_mm_type type, int ta, int tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb, const float *bias,
                 int accumulate, int relu, float *C)
{
    if (M == 0 || N == 0) return NB_OK;
    mm_key key;
    memset(&key, 0, sizeof key); /* the struct is the cache key: no stray padding bytes */
    key = (mm_key){type, ta != 0, tb != 0, bias != NULL, accumulate != 0, relu != 0, M, N, K, lda, ldb};
    mm_prim *m = nb_tape_cache_find(tp, &key, sizeof key);
    dnnl_status_t st = dnnl_success;
    if (!m) {
        if (!(m = mm_create(&key, &st)))
            return nb_tape_fail(tp, NB_ERR_BACKEND, "nb_%s: oneDNN matmul (%lldx%lldx%lld, %s) failed (status %d)",
                                op, (long long)M, (long long)N, (long long)K, type == NB_MM_BF16 ? "bf16" : "f32", (int)st);
        if (nb_tape_cache_add(tp, &key, sizeof key, m, mm_free)) return nb_tape_status(tp);
    }
    dnnl_engine_t e;
    dnnl_stream_t s;
    nb__dnnl(&e, &s);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, m->a}, {DNNL_ARG_WEIGHTS, m->b}, {DNNL_ARG_DST, m->c}, {DNNL_ARG_BIAS, m->bias}};
    if ((st = dnnl_memory_set_data_handle(m->a, (void *)A)) || (st = dnnl_memory_set_data_handle(m->b, (void *)B)) ||
        (st = dnnl_memory_set_data_handle(m->c, C)) || (bias && (st = dnnl_memory_set_data_handle(m->bias, (void *)bias))) ||
        (st = dnnl_primitive_execute(m->p, s, bias ? 4 : 3, args)) || (st = dnnl_stream_wait(s)))
        return nb_tape_fail(tp, NB_ERR_BACKEND, "nb_%s: oneDNN matmul failed (status %d)", op, (int)st);
    return NB_OK;
}
