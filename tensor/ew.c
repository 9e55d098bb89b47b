/* tensor/ew.c — kernel dispatch and the drivers that run row kernels over strided tensors.
 *
 * A driver coalesces the operands' dims (drops size-1 dims, merges dims that are contiguous in
 * every operand), then calls the row kernel on the innermost dim. Operands whose innermost
 * stride is not 1 (transposed views, broadcast stride-0 dims) are gathered into a small buffer
 * first, so kernels only ever see contiguous spans.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "tensor/kernels.h"

const char *const nb_ew_names[NB_EW_COUNT] = {
#define NB_EW(id, nin, ulp, doc) #id,
#include "tensor/ew.def"
#undef NB_EW
};

const int nb_ew_arity[NB_EW_COUNT] = {
#define NB_EW(id, nin, ulp, doc) nin,
#include "tensor/ew.def"
#undef NB_EW
};

const int nb_ew_ulp[NB_EW_COUNT] = {
#define NB_EW(id, nin, ulp, doc) ulp,
#include "tensor/ew.def"
#undef NB_EW
};

/* ---- dispatch ---------------------------------------------------------------------------- */

static nb_kernel_table tables[2][NB_ISA_COUNT];
static int isa_ok[NB_ISA_COUNT];
static nb_isa isa_active;
static once_flag init_once = ONCE_FLAG_INIT;

static void kernels_init(void)
{
    nb_kernels_fill_ref_f32(&tables[NB_F32][NB_ISA_REF]);
    nb_kernels_fill_ref_f64(&tables[NB_F64][NB_ISA_REF]);
    isa_ok[NB_ISA_REF] = 1;
#if NB_HAVE_SIMD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        nb_kernels_fill_avx2_f32(&tables[NB_F32][NB_ISA_AVX2]);
        nb_kernels_fill_avx2_f64(&tables[NB_F64][NB_ISA_AVX2]);
        isa_ok[NB_ISA_AVX2] = 1;
    }
    if (__builtin_cpu_supports("avx512f")) {
        nb_kernels_fill_avx512_f32(&tables[NB_F32][NB_ISA_AVX512]);
        nb_kernels_fill_avx512_f64(&tables[NB_F64][NB_ISA_AVX512]);
        isa_ok[NB_ISA_AVX512] = 1;
    }
#endif
    nb_isa cap = NB_ISA_AVX512;
    const char *env = getenv("NB_ISA");
    if (env && !strcmp(env, "ref")) cap = NB_ISA_REF;
    if (env && !strcmp(env, "avx2")) cap = NB_ISA_AVX2;
    isa_active = NB_ISA_REF;
    for (int i = 0; i <= (int)cap; i++)
        if (isa_ok[i]) isa_active = (nb_isa)i;
}

const nb_kernel_table *nb_kernels(nb_dtype dt)
{
    call_once(&init_once, kernels_init);
    return &tables[dt][isa_active];
}

const nb_kernel_table *nb_kernels_isa(nb_dtype dt, nb_isa isa)
{
    call_once(&init_once, kernels_init);
    return isa_ok[isa] ? &tables[dt][isa] : NULL;
}

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
enum { MXCSR_FTZ = 1 << 15, MXCSR_DAZ = 1 << 6 };
unsigned nb_flush_begin(void)
{
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | MXCSR_FTZ | MXCSR_DAZ);
    return saved;
}
void nb_flush_end(unsigned saved) { _mm_setcsr(saved); }
#else
unsigned nb_flush_begin(void) { return 0; }
void nb_flush_end(unsigned saved) { (void)saved; }
#endif

/* OpenMP's threads keep their mode from one parallel region to the next, so setting it once on
 * each covers our kernels and oneDNN's GEMMs alike (both run on that pool). Each thread keeps
 * its own saved mode and depth, so the pair nests. */
static _Thread_local unsigned pool_saved;
static _Thread_local int pool_depth;

void nb_flush_denormal_begin(void)
{
#pragma omp parallel
    if (pool_depth++ == 0) pool_saved = nb_flush_begin();
}

void nb_flush_denormal_end(void)
{
#pragma omp parallel
    if (pool_depth > 0 && --pool_depth == 0) nb_flush_end(pool_saved);
}

/* ---- layout ------------------------------------------------------------------------------ */

enum { MAX_OPS = 4, CHUNK = 256, PAR_MIN = 1 << 15, TASK_MIN = 1 << 13 };

typedef struct layout {
    int nd, nop;
    int64_t shape[NB_MAX_DIMS];
    int64_t st[MAX_OPS][NB_MAX_DIMS];
    char *base[MAX_OPS];
} layout;

/* All operands share t[0]'s shape. */
static void layout_init(layout *L, int nop, const nb_tensor *const *t)
{
    L->nd = 0;
    L->nop = nop;
    for (int k = 0; k < nop; k++) L->base[k] = t[k]->data;
    for (int d = 0; d < t[0]->ndim; d++) {
        int64_t n = t[0]->shape[d];
        if (n == 1) continue;
        int merge = L->nd > 0;
        for (int k = 0; k < nop && merge; k++)
            merge = L->st[k][L->nd - 1] == t[k]->stride[d] * n;
        if (merge) {
            L->shape[L->nd - 1] *= n;
            for (int k = 0; k < nop; k++) L->st[k][L->nd - 1] = t[k]->stride[d];
        } else {
            L->shape[L->nd] = n;
            for (int k = 0; k < nop; k++) L->st[k][L->nd] = t[k]->stride[d];
            L->nd++;
        }
    }
    if (L->nd == 0) {
        L->nd = 1;
        L->shape[0] = 1;
        for (int k = 0; k < nop; k++) L->st[k][0] = 1;
    }
}

static int64_t layout_rows(const layout *L)
{
    int64_t r = 1;
    for (int d = 0; d < L->nd - 1; d++) r *= L->shape[d];
    return r;
}

/* The outer rows in order: row_first sets the index and element offsets of row r (a division
 * per dim), row_next steps to the next row like an odometer, with none (with rows of 20
 * elements, as a (B, B, d) pairwise density has, the divisions cost more than the row's
 * arithmetic). */
typedef struct row_iter {
    int64_t idx[NB_MAX_DIMS];
    int64_t off[MAX_OPS];
} row_iter;

static void row_first(const layout *L, int64_t r, row_iter *it)
{
    for (int k = 0; k < L->nop; k++) it->off[k] = 0;
    for (int d = L->nd - 2; d >= 0; d--) {
        it->idx[d] = r % L->shape[d], r /= L->shape[d];
        for (int k = 0; k < L->nop; k++) it->off[k] += it->idx[d] * L->st[k][d];
    }
}

static void row_next(const layout *L, row_iter *it)
{
    for (int d = L->nd - 2; d >= 0; d--) {
        for (int k = 0; k < L->nop; k++) it->off[k] += L->st[k][d];
        if (++it->idx[d] < L->shape[d]) return;
        for (int k = 0; k < L->nop; k++) it->off[k] -= L->shape[d] * L->st[k][d];
        it->idx[d] = 0;
    }
}

/* A row gathered from strided memory, as whichever dtype the tensors have. */
typedef union row_buf {
    float f[CHUNK];
    double d[CHUNK];
} row_buf;

static void gather(size_t es, row_buf *dst, const char *src, int64_t st, int64_t n)
{
    if (st == 0) { /* a broadcast operand: one value, filled as a loop that vectorises */
        if (es == 8)
            for (int64_t i = 0; i < n; i++) dst->d[i] = *(const double *)src;
        else
            for (int64_t i = 0; i < n; i++) dst->f[i] = *(const float *)src;
        return;
    }
    if (es == 8)
        for (int64_t i = 0; i < n; i++) dst->d[i] = ((const double *)src)[i * st];
    else
        for (int64_t i = 0; i < n; i++) dst->f[i] = ((const float *)src)[i * st];
}

static void scatter(size_t es, char *dst, const row_buf *src, int64_t st, int64_t n)
{
    if (es == 8)
        for (int64_t i = 0; i < n; i++) ((double *)dst)[i * st] = src->d[i];
    else
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i * st] = src->f[i];
}

/* Runs f over elements [j0, j1) of outer row r. Operand 0 is the output. */
static void run_span(nb_ew_fn f, const layout *L, size_t es, const int64_t off[MAX_OPS], int64_t j0, int64_t j1,
                     const double *s)
{
    const int in = L->nd - 1;
    char *p[MAX_OPS] = {0};
    int unit = 1;
    for (int k = 0; k < L->nop; k++) {
        p[k] = L->base[k] + (off[k] + j0 * L->st[k][in]) * (int64_t)es;
        unit &= L->st[k][in] == 1;
    }
    if (unit) {
        f(j1 - j0, p[0], p[1], p[2], p[3], s);
        return;
    }
    row_buf buf[MAX_OPS];
    for (int64_t j = j0; j < j1; j += CHUNK) {
        int64_t n = j1 - j < CHUNK ? j1 - j : CHUNK;
        void *q[MAX_OPS] = {0};
        for (int k = 0; k < L->nop; k++) {
            const char *src = p[k] + (j - j0) * L->st[k][in] * (int64_t)es;
            if (L->st[k][in] == 1) {
                q[k] = (void *)src;
            } else {
                gather(es, &buf[k], src, L->st[k][in], n);
                q[k] = &buf[k];
            }
        }
        f(n, q[0], q[1], q[2], q[3], s);
        if (L->st[0][in] != 1) scatter(es, p[0] + (j - j0) * L->st[0][in] * (int64_t)es, &buf[0],
                                       L->st[0][in], n);
    }
}

static int has_zero_stride(const layout *L, int k)
{
    for (int d = 0; d < L->nd; d++)
        if (L->st[k][d] == 0) return 1;
    return 0;
}

/* ---- elementwise driver ------------------------------------------------------------------ */

/* One task: elements [j0, j1) of part `part` of the inner dim, for the rows of one block (a
 * reduction has one block of all rows). */
typedef struct plan {
    nb_ew_fn f;
    const layout *L;
    size_t es;
    const double *s;
    int64_t rows, inner, nsplit, span, blocks;
    int reduce;
} plan;

static void run_task(const plan *p, int64_t t)
{
    const int64_t part = t % p->nsplit, blk = t / p->nsplit;
    const int64_t j0 = part * p->span, j1 = j0 + p->span < p->inner ? j0 + p->span : p->inner;
    const int64_t r0 = p->rows * blk / p->blocks, r1 = p->rows * (blk + 1) / p->blocks;
    if (j0 >= j1 || r0 >= r1) return;
    row_iter it;
    row_first(p->L, r0, &it);
    for (int64_t r = r0; r < r1; r++, row_next(p->L, &it)) run_span(p->f, p->L, p->es, it.off, j0, j1, p->s);
}

static void run_layout(nb_ew_fn f, const layout *L, size_t es, const double *s)
{
    plan p = {.f = f, .L = L, .es = es, .s = s, .rows = layout_rows(L),
              .inner = L->shape[L->nd - 1], .nsplit = 1};
    const int threads = p.rows * p.inner >= PAR_MIN ? omp_get_max_threads() : 1;
    /* An output with stride-0 dims is a reduction target: rows write the same elements, so
     * only the inner dim is split, and each task walks the rows in order (deterministic). */
    p.reduce = has_zero_stride(L, 0);
    if (threads > 1 && (p.reduce || p.rows < 2 * threads)) {
        p.nsplit = p.inner / TASK_MIN;
        if (p.nsplit > 4 * threads) p.nsplit = 4 * threads;
        if (p.nsplit < 1) p.nsplit = 1;
    }
    p.span = (p.inner + p.nsplit - 1) / p.nsplit;
    /* rows in one contiguous block per thread; a split inner dim, a task per row */
    p.blocks = p.reduce ? 1 : p.nsplit > 1 ? p.rows : threads < p.rows ? threads : p.rows;
    const int64_t ntask = p.blocks * p.nsplit;
    /* Small work stays out of OpenMP entirely: even an if(0) parallel region costs a team
     * allocation and a futex round trip, more than the whole op at tiny sizes. */
    if (threads > 1 && ntask > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < ntask; t++) run_task(&p, t);
    } else {
        for (int64_t t = 0; t < ntask; t++) run_task(&p, t);
    }
}

void nb_ew(nb_ew_id id, nb_tensor *y, const nb_tensor *a, const nb_tensor *b,
           const nb_tensor *c, double s0, double s1)
{
    const nb_tensor *ops[MAX_OPS] = {y, a, b, c};
    int nop = 1 + nb_ew_arity[id];
    layout L;
    layout_init(&L, nop, ops);
    const double s[2] = {s0, s1};
    run_layout(nb_kernels(y->dtype)->ew[id], &L, nb_dtype_size(y->dtype), s);
}

/* The dims after the first are dense: each row of t is one contiguous span of its numel / rows. */
static int rows_dense(const nb_tensor *t)
{
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 1; d--) {
        if (t->shape[d] != 1 && t->stride[d] != want) return 0;
        want *= t->shape[d];
    }
    return 1;
}

enum { ROW_BUF_BYTES = 1 << 15 }; /* a row's terms, in L1 */

int nb_ew_rowsum_ok(nb_ew_id id, const nb_tensor *y, const nb_tensor *a, const nb_tensor *b)
{
    const size_t es = nb_dtype_size(a->dtype);
    const int64_t rows = a->ndim ? a->shape[0] : 1, inner = rows ? nb_numel(a) / rows : 0;
    return a->ndim >= 1 && nb_ew_arity[id] == 1 + (b != NULL) && nb_numel(y) == rows && nb_is_contiguous(y) &&
           rows_dense(a) && (!b || (nb_same_shape(a, b) && rows_dense(b))) && (size_t)inner * es <= ROW_BUF_BYTES;
}

/* The rows' sums of kernel id, or with d (BCE only) its bce2: the terms and, row r at
 * d + r·inner, σ(a) - b */
static void rowsum_run(nb_ew_id id, nb_tensor *y, void *d, const nb_tensor *a, const nb_tensor *b)
{
    const size_t es = nb_dtype_size(a->dtype);
    const int64_t rows = a->shape[0], inner = rows ? nb_numel(a) / rows : 0;
    const nb_kernel_table *k = nb_kernels(a->dtype);
    const nb_ew_fn f = k->ew[id];
    const int64_t sa = a->stride[0] * (int64_t)es, sb = b ? b->stride[0] * (int64_t)es : 0;
    nb_fill(y, 0.0);
#pragma omp parallel for schedule(static) if (rows * inner >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        _Alignas(64) char buf[ROW_BUF_BYTES];
        const char *ar = (const char *)a->data + r * sa, *br = b ? (const char *)b->data + r * sb : NULL;
        if (d)
            k->bce2(inner, buf, (char *)d + (size_t)(r * inner) * es, ar, br);
        else
            f(inner, buf, ar, br, NULL, NULL);
        k->sum(inner, buf, (char *)y->data + r * (int64_t)es);
    }
}

int nb_ew_rowsum(nb_ew_id id, nb_tensor *y, const nb_tensor *a, const nb_tensor *b)
{
    if (!nb_ew_rowsum_ok(id, y, a, b)) return 0;
    rowsum_run(id, y, NULL, a, b);
    return 1;
}

int nb_ew_rowsum_bce(nb_tensor *y, void *d, const nb_tensor *a, const nb_tensor *b)
{
    if (!nb_ew_rowsum_ok(NB_EW_BCE, y, a, b)) return 0;
    rowsum_run(NB_EW_BCE, y, d, a, b);
    return 1;
}

/* ---- reductions -------------------------------------------------------------------------- */

void nb_fill(nb_tensor *y, double v)
{
    int64_t n = nb_numel(y);
    if (v == 0 && !signbit(v)) {
        memset(y->data, 0, (size_t)n * nb_dtype_size(y->dtype));
    } else if (y->dtype == NB_F64) {
        for (int64_t i = 0; i < n; i++) ((double *)y->data)[i] = v;
    } else {
        for (int64_t i = 0; i < n; i++) ((float *)y->data)[i] = (float)v;
    }
}

void nb_ew_reduce(nb_red_kind kind, nb_tensor *y, const nb_tensor *x, int accumulate)
{
    if (!accumulate) nb_fill(y, kind == NB_RED_SUM ? 0.0 : kind == NB_RED_MAX ? -INFINITY : INFINITY);
    /* y seen with x's shape: stride 0 along the reduced dims */
    nb_tensor yb = *y;
    for (int d = 0; d < x->ndim; d++) {
        yb.shape[d] = x->shape[d];
        if (y->shape[d] == 1) yb.stride[d] = 0;
    }
    const nb_tensor *ops[2] = {&yb, x};
    layout L;
    layout_init(&L, 2, ops);
    const nb_kernel_table *k = nb_kernels(x->dtype);
    const size_t es = nb_dtype_size(x->dtype);
    const int in = L.nd - 1;
    if (L.st[0][in] != 0) { /* inner dim kept: accumulate whole rows */
        run_layout(k->ew[kind == NB_RED_SUM ? NB_EW_ACC : kind == NB_RED_MAX ? NB_EW_MAXACC : NB_EW_MINACC],
                   &L, es, NULL);
        return;
    }
    /* inner dim reduced: one row reduction per outer row */
    nb_red_fn red = kind == NB_RED_SUM ? k->sum : kind == NB_RED_MAX ? k->max : k->min;
    const int64_t rows = layout_rows(&L), inner = L.shape[in];
    row_buf buf;
    row_iter it;
    row_first(&L, 0, &it);
    for (int64_t r = 0; r < rows; r++, row_next(&L, &it)) {
        const int64_t *off = it.off;
        char *yp = L.base[0] + off[0] * (int64_t)es;
        const char *xp = L.base[1] + off[1] * (int64_t)es;
        if (L.st[1][in] == 1) {
            red(inner, xp, yp);
            continue;
        }
        for (int64_t j = 0; j < inner; j += CHUNK) {
            int64_t n = inner - j < CHUNK ? inner - j : CHUNK;
            gather(es, &buf, xp + j * L.st[1][in] * (int64_t)es, L.st[1][in], n);
            red(n, &buf, yp);
        }
    }
}
