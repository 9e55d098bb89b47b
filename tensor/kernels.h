/* tensor/kernels.h — internal: the kernel table and the drivers that apply it to tensors.
 *
 * Row kernels work on contiguous 1-D spans. kern_tmpl.c is compiled once per (dtype, ISA): the
 * plain C reference always, AVX2 and AVX-512 (SLEEF for the transcendentals) when the build has
 * SIMD. nb_kernels() returns the table for the best ISA this CPU supports, chosen once at run
 * time; NB_ISA=ref|avx2|avx512 in the environment caps the choice (for tests and valgrind).
 */
#ifndef NB_KERNELS_H
#define NB_KERNELS_H

#include "nabla/tensor.h"

typedef enum nb_ew_id {
#define NB_EW(id, nin, ulp, doc) NB_EW_##id,
#include "tensor/ew.def"
#undef NB_EW
    NB_EW_COUNT
} nb_ew_id;

/* y[0..n) (op)= f(a[i], b[i], c[i]; s[0], s[1]); unused inputs may be NULL. */
typedef void (*nb_ew_fn)(int64_t n, void *y, const void *a, const void *b, const void *c,
                         const double *s);
/* *acc = *acc + sum(a[0..n)), or max(*acc, max(a[0..n))), or the min; NaN wins max and min */
typedef void (*nb_red_fn)(int64_t n, const void *a, void *acc);

typedef enum nb_isa { NB_ISA_REF, NB_ISA_AVX2, NB_ISA_AVX512, NB_ISA_COUNT } nb_isa;

/* Per-step constants of the optimizer updates (nn/optim.c), as PyTorch defines them. */
typedef struct nb_optim_args {
    double lr, weight_decay, momentum, dampening, beta1, beta2, eps;
    double step_size, bc2_sqrt; /* Adam: lr / (1 - beta1^t), sqrt(1 - beta2^t) */
    int nesterov, first, decoupled;
    int keep_grad; /* 1: g is left as it is; 0: zeroed as it is read */
} nb_optim_args;

typedef struct nb_kernel_table {
    const char *isa;
    nb_ew_fn ew[NB_EW_COUNT];
    nb_red_fn sum, max, min;
    /* the first index of a[0..n)'s minimum or maximum, n >= 1; of its first NaN if it has one */
    int64_t (*argmin)(int64_t n, const void *a);
    int64_t (*argmax)(int64_t n, const void *a);
    /* acc += Σ a², in double so that no finite gradient overflows */
    void (*sumsq)(int64_t n, const void *a, double *acc);
    /* one pass of an optimizer over n flat values: parameters p, gradients g (zeroed as they are
     * read, ready for the next step, unless keep_grad), state s1, s2 */
    void (*sgd)(int64_t n, void *p, void *g, void *buf, const nb_optim_args *a);
    void (*adam)(int64_t n, void *p, void *g, void *m, void *v, const nb_optim_args *a);
    void (*adagrad)(int64_t n, void *p, void *g, void *sum, const nb_optim_args *a);
    /* BCE with logits a, targets b: y = its terms (as NB_EW_BCE), d = sigmoid(a) - b, one exp */
    void (*bce2)(int64_t n, void *y, void *d, const void *a, const void *b);
    /* Normals from n pairs of uniforms (r, t), in place, in double whatever the table's dtype
     * (the f64 table's entry; NULL in the f32 one): see tensor/rng.c */
    void (*box_muller)(int64_t n, double *r, double *t, double p0, double p1);
} nb_kernel_table;

extern const char *const nb_ew_names[NB_EW_COUNT];
extern const int nb_ew_arity[NB_EW_COUNT];
extern const int nb_ew_ulp[NB_EW_COUNT]; /* 0: bit-identical across ISAs; else the ulp bound */

/* The table in use for dt. */
const nb_kernel_table *nb_kernels(nb_dtype dt);
/* The table for one ISA, or NULL if it is not built or this CPU lacks it (tests). */
const nb_kernel_table *nb_kernels_isa(nb_dtype dt, nb_isa isa);

/* Filled by each compiled instance of kern_tmpl.c. */
void nb_kernels_fill_ref_f32(nb_kernel_table *k);
void nb_kernels_fill_ref_f64(nb_kernel_table *k);
void nb_kernels_fill_avx2_f32(nb_kernel_table *k);
void nb_kernels_fill_avx2_f64(nb_kernel_table *k);
void nb_kernels_fill_avx512_f32(nb_kernel_table *k);
void nb_kernels_fill_avx512_f64(nb_kernel_table *k);

/* Applies kernel id over y's shape. a, b, c (NULL when unused) have y's shape; any operand may
 * be strided, including y (a slice or a permuted view). Splits the work across threads when it
 * is large; the result does not depend on the thread count. */
void nb_ew(nb_ew_id id, nb_tensor *y, const nb_tensor *a, const nb_tensor *b,
           const nb_tensor *c, double s0, double s1);

typedef enum nb_red_kind { NB_RED_SUM, NB_RED_MAX, NB_RED_MIN } nb_red_kind;
/* y = reduce(x) over the dims where y has size 1 and x does not. y has x's ndim (keepdim form).
 * With accumulate, y is combined with the reduction instead of overwritten. */
void nb_ew_reduce(nb_red_kind kind, nb_tensor *y, const nb_tensor *x, int accumulate);

/* y[r] = Σ_j f(a[r, j], b[r, j]) over the rows r of a and b (same shape, each row dense; b NULL for
 * a one-input kernel), y holding one contiguous value per row. The terms never reach memory: a
 * row's go through a small buffer and are summed by the reduction nb_ew_reduce uses, so the
 * result equals nb_ew then nb_ew_reduce on any thread count. Rows run on parallel threads.
 * Returns 0, having done nothing, when the layout does not qualify (rows over 32 KB, say). */
int nb_ew_rowsum(nb_ew_id id, nb_tensor *y, const nb_tensor *a, const nb_tensor *b);
/* 1 when nb_ew_rowsum would take these (and nb_ew_rowsum_bce, for NB_EW_BCE). */
int nb_ew_rowsum_ok(nb_ew_id id, const nb_tensor *y, const nb_tensor *a, const nb_tensor *b);
/* nb_ew_rowsum(NB_EW_BCE, y, a, b), the same bits, and beside it d = sigmoid(a) - b (the logits'
 * derivative) from the same exp, contiguous in a's shape: the table's bce2. 0 as nb_ew_rowsum. */
int nb_ew_rowsum_bce(nb_tensor *y, void *d, const nb_tensor *a, const nb_tensor *b);

/* y = v for every element (y contiguous). */
void nb_fill(nb_tensor *y, double v);

/* Subnormal values flushed to zero, as inputs and as results, on the calling thread from
 * nb_flush_begin until nb_flush_end(its return value) restores the thread's previous mode (x86's
 * MXCSR FTZ and DAZ; elsewhere nothing changes). */
unsigned nb_flush_begin(void);
void nb_flush_end(unsigned saved);

/* Row-major GEMM: C[M,N] = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ when tX. f32 runs on oneDNN's
 * dnnl_sgemm; f64 on a plain blocked loop (the gradient checks' path). */
nb_status nb_gemm(nb_dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                  const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
                  int64_t ldc);

#endif
