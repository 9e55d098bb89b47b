/** @file
 * nabla/tensor.h — the n-d tensor: dtype, shape, strides, data.
 *
 * A tensor is a plain struct with public, read-only fields. Strides are in elements; a stride of
 * 0 marks a broadcast (expanded) dimension. Tensors never own their data: an op result lives in
 * its tape's arena, a parameter in its nb_params block (see nabla/autograd.h).
 *
 * Calls outside a tape report failure by a non-zero nb_status (or NULL) and a message in
 * nb_last_error(); none of the functions here allocates.
 */
#ifndef NB_TENSOR_H
#define NB_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/** @def NB_API
 * Marks a public function: exported from libnabla.so (which hides every other symbol). */
#if defined(__GNUC__)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Limits of a tensor. */
enum {
    NB_MAX_DIMS = 4 /**< the most dims a tensor has; a 0-d tensor is a scalar */
};

/** The element type: every tensor of one op, and every parameter of a store, has the same. */
typedef enum nb_dtype {
    NB_F32, /**< float */
    NB_F64  /**< double: what gradient checks run in */
} nb_dtype;

/** What a call returns: NB_OK, or why it failed (the message is in nb_last_error() or, for ops,
 * nb_tape_error()). */
typedef enum nb_status {
    NB_OK = 0,      /**< success */
    NB_ERR_ARG,     /**< an argument is out of range or NULL */
    NB_ERR_SHAPE,   /**< shapes do not fit the op */
    NB_ERR_DTYPE,   /**< mixed or unsupported dtypes */
    NB_ERR_NOMEM,   /**< an allocation failed */
    NB_ERR_IO,      /**< a file could not be read or written */
    NB_ERR_FORMAT,  /**< a file is corrupt or not of the expected format */
    NB_ERR_NAN,     /**< a non-finite value where a finite one is required */
    NB_ERR_BACKEND, /**< oneDNN refused a primitive */
    NB_ERR_STATE,   /**< a call out of order (e.g.\ backward twice) */
} nb_status;

/** Bits of nb_tensor::flags. */
enum {
    NB_REQUIRES_GRAD = 1u << 0, /**< backward computes a gradient for it */
    NB_PARAM = 1u << 1,         /**< owned by an nb_params store; grad is persistent */
    /** a parameter whose gradient counts as zero, its memory not yet written
     * (nb_params_clear_grad) */
    NB_GRAD_CLEARED = 1u << 2,
};

/** An n-d tensor: a plain struct with public, read-only fields, which never owns its data. */
typedef struct nb_tensor {
    nb_dtype dtype;              /**< the element type */
    int ndim;                    /**< the number of dims, 0 to NB_MAX_DIMS */
    int64_t shape[NB_MAX_DIMS];  /**< the size of each dim */
    int64_t stride[NB_MAX_DIMS]; /**< in elements; 0 marks a broadcast dim */
    void *data;                  /**< first element (views point into another tensor's data) */
    struct nb_tensor *grad;      /**< same shape, contiguous; NULL until backward reaches it */
    uint32_t flags;              /**< NB_REQUIRES_GRAD | NB_PARAM | NB_GRAD_CLEARED */
    const char *name;            /**< parameters only: the name it was registered under */
    uint64_t gen;                /**< the tape step an arena tensor belongs to; 0 outside a tape */
} nb_tensor;

/** Shapes as literal arguments: nb_zeros(tp, NB_F32, NB_SHAPE(3, 5)). Expands to the two
 * arguments `ndim, shape` (a compound literal, alive in the enclosing block). */
#define NB_SHAPE(...)                                                                        \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}
/** Axis lists the same way: nb_sum(tp, x, NB_AXES(1, 2), 0). Negative axes count from the end. */
#define NB_AXES(...) (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]){__VA_ARGS__}

/** Bytes per element of dt: 4 or 8. */
static inline size_t nb_dtype_size(nb_dtype dt) { return dt == NB_F64 ? 8 : 4; }

/** The size of dim i; negative i counts from the end (-1 is the last). Not range-checked. */
static inline int64_t nb_dim(const nb_tensor *t, int i) { return t->shape[i < 0 ? t->ndim + i : i]; }

/** The number of elements: the product of the shape (1 for a scalar). */
static inline int64_t nb_numel(const nb_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/** A status in words, such as "shape mismatch".
 * @return a static string; "unknown status" for a value outside nb_status. */
NB_API const char *nb_status_str(nb_status st);
/** What the last failing call outside a tape (loading, saving, optimizer steps) said, in this
 * thread, e.g.\ "data/train-images-idx3-ubyte.gz: truncated: 47040016 bytes declared, 1000 read".
 * Ops on a tape report through nb_tape_error instead.
 * @return a thread-local buffer owned by nabla, overwritten by this thread's next failure
 *         (successful calls leave it alone); "" before any failure. */
NB_API const char *nb_last_error(void);
/** "f32" or "f64".
 * @return a static string. */
NB_API const char *nb_dtype_name(nb_dtype dt);

/** Sets up t as a contiguous (row-major) tensor over data; no allocation. t borrows data, which
 * must outlive it; t gets no gradient, flags or name. */
NB_API void nb_tensor_wrap(nb_tensor *t, nb_dtype dt, int ndim, const int64_t *shape, void *data);
/** 1 when t's strides are row-major for its shape (size-1 dims excepted), else 0. */
NB_API int nb_is_contiguous(const nb_tensor *t);
/** 1 when a and b have the same ndim and shape, else 0. */
NB_API int nb_same_shape(const nb_tensor *a, const nb_tensor *b);
/** "(3,5,7)" into buf, truncated to size bytes.
 * @return buf (the caller's memory). */
NB_API char *nb_shape_str(const nb_tensor *t, char *buf, size_t size);

/** Element i in row-major order of the logical shape (strides respected), as double. i must be
 * in [0, nb_numel(t)); it is not checked. */
NB_API double nb_get(const nb_tensor *t, int64_t i);
/** Sets element i, as nb_get counts them, to v (rounded to f32 for f32 tensors); not checked. */
NB_API void nb_set(nb_tensor *t, int64_t i, double v);
/** Copies the logical contents, in row-major order, to dst (of t's dtype), which holds n
 * elements; the caller owns it.
 * @return NB_OK; NB_ERR_ARG (nothing copied, nb_last_error says why) when n < nb_numel(t) or
 *         an argument is NULL. */
NB_API nb_status nb_copy_out(const nb_tensor *t, void *dst, int64_t n);

/** NumPy broadcasting of two shapes. Returns the result's ndim, or -1 if they do not broadcast
 * (or the result would have more than NB_MAX_DIMS dims). */
NB_API int nb_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
                              int64_t out[NB_MAX_DIMS]);

/** Φ⁻¹(p), the inverse of the standard normal CDF (Wichura's AS 241); ±inf at 0 and 1. */
NB_API double nb_ndtri(double p);

/** Threads used by nabla's kernels and by oneDNN (OpenMP); n <= 0 keeps the default. */
NB_API void nb_set_threads(int n);
/** The threads the kernels use (OpenMP's maximum). */
NB_API int nb_get_threads(void);
/** Subnormal floats flushed to zero, as results and as operands (x86: MXCSR's FTZ and DAZ), on
 * the calling thread and on each of the threads above, until the matching
 * nb_flush_denormal_end restores every thread's own mode (the pairs nest; call both with the
 * same thread count). An Intel core takes a slow microcode assist for each subnormal operand:
 * the gradients behind tiny importance or mixture weights (IWAE-50) made its training step
 * several times slower. The trainer runs each step inside such a pair, as after
 * torch.set_flush_denormal(True); a training loop of one's own can do the same. */
NB_API void nb_flush_denormal_begin(void);
/** Ends the innermost nb_flush_denormal_begin; the outermost end restores each thread's mode. */
NB_API void nb_flush_denormal_end(void);
/** 1 when this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX-BF16, as oneDNN sees
 * it: ONEDNN_MAX_CPU_ISA can cap it), else 0. NB_PREC_BF16 needs it. */
NB_API int nb_cpu_bf16(void);

#ifdef __cplusplus
}
#endif
#endif
