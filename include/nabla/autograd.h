/** @file
 * nabla/autograd.h — the tape, the ops that record on it, and parameters.
 *
 * Ops are eager: nb_add(tp, a, b) computes a + b at once and, when an input requires a gradient
 * and recording is on, appends one record to the tape. The tape is therefore already in
 * topological order and nb_backward is a reverse loop over it.
 *
 * Memory has two lifetimes. Every op result (and every gradient of one) lives in the tape's
 * arena, which nb_tape_reset rewinds in one go; after the first step the arena stops growing.
 * Parameters, their gradients and optimizer state live in an nb_params store, one flat block per
 * kind, until the store is freed.
 *
 * An arena tensor belongs to its step: after nb_tape_reset (or nb_tape_free) its memory is
 * reused, and an op or nb_backward given it refuses it ("input 2 is from a step that has
 * ended") instead of reading someone else's data. Every tensor carries its step's generation;
 * the check is exact for tensors of the previous step and of freed tapes, and holds for older
 * ones until their header is handed out again. Tensors of another live tape may be mixed in.
 *
 * Errors are sticky. The first op that fails (bad shape, mixed dtypes, no memory) records a
 * message naming the op and its operands, and returns NULL; every later op given a NULL input
 * returns NULL too. Check once, at nb_backward or with nb_tape_status. Every error, on a tape or
 * not, is also the thread's nb_last_error(). The library never prints and never exits.
 */
#ifndef NB_AUTOGRAD_H
#define NB_AUTOGRAD_H

#include <stdio.h>

#include "rng.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A tape: the arena of one step's tensors, the records of its ops and its sticky error.
 * Opaque; made by nb_tape_new, released by nb_tape_free. One thread uses a tape at a time. */
typedef struct nb_tape nb_tape;
/** A store of named parameters and their gradients in flat blocks. Opaque; made by
 * nb_params_new, released by nb_params_free, which frees every tensor it handed out. */
typedef struct nb_params nb_params;

/* ---- tape ---------------------------------------------------------------------------------- */

/** A tape with recording on. Returns NULL only when out of memory (nb_last_error says so).
 * @note The caller owns the tape: release it with nb_tape_free. */
NB_API nb_tape *nb_tape_new(void);
/** Frees the tape, its arena (every tensor of it) and its cache; NULL is ignored. */
NB_API void nb_tape_free(nb_tape *tp);
/** Drops every record, intermediate tensor and error; keeps the arena's memory for reuse. Every
 * tensor of the step that ends is invalid afterwards (ops refuse it). NULL is ignored. */
NB_API void nb_tape_reset(nb_tape *tp);
/** Recording on (1) or off (0, inference: same calls, nothing recorded). Returns the old value
 * (0 for a NULL tape). */
NB_API int nb_tape_set_grad(nb_tape *tp, int on);
/** The precision of the matrix products of Linear layers and convolutions on a tape. Tensors,
 * parameters, optimizer state and losses stay f32 (or f64) whatever it is. */
typedef enum nb_precision {
    NB_PREC_F32,  /**< f32 throughout */
    NB_PREC_BF16, /**< f32 inputs rounded to bf16 for the products, accumulated in f32 */
} nb_precision;
/** Sets the precision of the tape's Linear and convolution products (f32 tensors only; f64
 * ones, the gradient checks', always run in f64).
 * @return NB_OK; NB_ERR_BACKEND when NB_PREC_BF16 is asked of a CPU without bf16 arithmetic
 *         (nb_cpu_bf16), NB_ERR_ARG for a NULL tape or an unknown precision; the message is in
 *         nb_last_error() and the precision is unchanged. */
NB_API nb_status nb_tape_set_precision(nb_tape *tp, nb_precision p);
/** The tape's precision (NB_PREC_F32 for a NULL tape). */
NB_API nb_precision nb_tape_precision(const nb_tape *tp);
/** The tape's sticky status: NB_OK, or that of the first error since the last reset
 * (NB_ERR_ARG for a NULL tape). */
NB_API nb_status nb_tape_status(const nb_tape *tp);
/** The first error since the last reset, e.g.\ "nb_add: shapes (3,5) and (4,5) do not broadcast";
 * "" when there is none.
 * @return a string owned by the tape, valid until its next nb_tape_reset or nb_tape_free. */
NB_API const char *nb_tape_error(const nb_tape *tp);
/** Records an error from code built on the tape (a model checking its inputs); the first error
 * since reset wins. Returns st. With a NULL tape the message goes to nb_last_error() only. */
NB_API nb_status nb_tape_fail(nb_tape *tp, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** The number of records since the last reset (0 for a NULL tape). */
NB_API int nb_tape_size(const nb_tape *tp);
/** The first recorded op whose output holds a NaN or an infinity, as "op #k (name) output (B,D)",
 * written into msg; returns its record index, or -1 when every output is finite. For the
 * non-finite guard of a training loop: it names where a NaN was born. */
NB_API int nb_tape_find_nonfinite(const nb_tape *tp, char *msg, size_t size);
/** Memory the arena holds, in bytes (0 for a NULL tape). */
NB_API size_t nb_tape_arena_bytes(const nb_tape *tp);

/** Reverse pass from a scalar (one-element) loss, seeded with 1. Gradients are added (+=) into
 * t->grad of every tensor that requires one: parameters' persistent gradients, and arena
 * gradients for the rest. Returns the tape's sticky error if an op failed earlier.
 * @return NB_OK, or the error, also recorded on the tape: NB_ERR_ARG (NULL loss, or nothing
 *         requires a gradient), NB_ERR_SHAPE (not a scalar), NB_ERR_STATE (twice in a step). */
NB_API nb_status nb_backward(nb_tape *tp, nb_tensor *loss);
/** The same from any output y, seeded with the cotangent seed (y's shape).
 * @return as nb_backward; NB_ERR_SHAPE when seed's shape or dtype differs from y's. */
NB_API nb_status nb_backward_from(nb_tape *tp, nb_tensor *y, const nb_tensor *seed);

/* ---- profile ------------------------------------------------------------------------------- */

/** @file
 * @par Profile
 * A per-op profile of where steps spend their time: forward and backward wall time and calls per
 * op, summed over every tape. On when the environment has NB_PROFILE=1 (read at the first op) or
 * after nb_profile_enable(1). nb_profile_print writes the table, largest total first. */

/** Turns the per-op profile on (1) or off (0), for every tape of the process. */
NB_API void nb_profile_enable(int on);
/** 1 when the profile is on (NB_PROFILE=1 or nb_profile_enable(1)), else 0. */
NB_API int nb_profile_enabled(void);
/** Clears the profile's counts and times; on or off stays as it was. */
NB_API void nb_profile_reset(void);
/** Writes the profile's table to f, largest total first; a NULL f is ignored. */
NB_API void nb_profile_print(FILE *f);

/* ---- tensors in the arena ------------------------------------------------------------------ */

/** A new tensor of shape (ndim, shape), uninitialised.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (a bad shape, no memory, an earlier error). */
NB_API nb_tensor *nb_empty(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape);
/** A new tensor filled with zeros.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_zeros(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape);
/** A new tensor filled with v.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_full(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, double v);
/** A 0-d tensor holding v.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_scalar(nb_tape *tp, nb_dtype dt, double v);
/** Copies the n values of dtype dt at src (the caller keeps src); n must be the shape's
 * element count.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_ARG for a NULL src or an n that does not match the shape). */
NB_API nb_tensor *nb_tensor_from(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape,
                                 const void *src, int64_t n);
/** Random tensors are constants (no gradient). The draw depends on rng and numel only. Uniform
 * in [lo, hi), which must be finite and ordered.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_uniform(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim,
                             const int64_t *shape, double lo, double hi);
/** A constant of N(0, 1) draws (see nb_uniform).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_randn(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape);
/** A constant of Bernoulli(p) draws, 1 or 0, p in [0, 1] (see nb_uniform).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_bernoulli(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim,
                               const int64_t *shape, double p);
/** Marks a leaf (e.g.\ from nb_tensor_from) as needing a gradient; returns it. NULL passes. */
NB_API nb_tensor *nb_requires_grad(nb_tensor *t);
/** A view of t that backward does not go through.
 * @return a view sharing t's data, its header in the arena (until nb_tape_reset), or NULL with
 *         the tape's error. */
NB_API nb_tensor *nb_detach(nb_tape *tp, nb_tensor *t);

/* ---- ops ----------------------------------------------------------------------------------- */
/** @file
 * @par Ops
 * Every op takes the tape first, accepts NULL inputs (returns NULL) and, for binary ops,
 * broadcasts its operands the NumPy way. Results are new arena tensors (views for the view ops),
 * valid until the tape's next nb_tape_reset or nb_tape_free. A failing op returns NULL and
 * records the tape's sticky error (nb_tape_error), which is also the thread's nb_last_error(). */

/** @{ */
/** a + b, a - b, a·b and a / b, elementwise, broadcasting.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (shapes that do not broadcast, mixed dtypes, a NULL input). */
NB_API nb_tensor *nb_add(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_sub(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_mul(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_div(nb_tape *tp, nb_tensor *a, nb_tensor *b);
/** @} */
/** -a.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_neg(nb_tape *tp, nb_tensor *a);
/** s·a.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_scale(nb_tape *tp, nb_tensor *a, double s);
/** a + s.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_add_scalar(nb_tape *tp, nb_tensor *a, double s);
/** @{ */
/** e^a, log a, log(1 + a), √a, a², tanh a, σ(a) = 1 / (1 + e^-a) and max(a, 0), elementwise.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_exp(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_log(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_log1p(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_sqrt(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_square(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_tanh(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_sigmoid(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_relu(nb_tape *tp, nb_tensor *a);
/** @} */
/** a for a > 0, slope·a otherwise.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_leaky_relu(nb_tape *tp, nb_tensor *a, double slope);
/** a for a > 0, alpha·(e^a - 1) otherwise; alpha > 0.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_elu(nb_tape *tp, nb_tensor *a, double alpha);
/** GELU, exact: a·Φ(a).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_gelu(nb_tape *tp, nb_tensor *a);
/** log(1 + e^a), stable.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_softplus(nb_tape *tp, nb_tensor *a);
/** log σ(a) = -softplus(-a), stable.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_log_sigmoid(nb_tape *tp, nb_tensor *a);
/** a limited to [lo, hi]; the gradient is 0 outside.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_clamp(nb_tape *tp, nb_tensor *a, double lo, double hi);
/** |a|; the gradient at 0 is 0.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_abs(nb_tape *tp, nb_tensor *a);
/** a^p for a finite exponent p; a < 0 with a p that is not a whole number gives NaN.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_pow(nb_tape *tp, nb_tensor *a, double p);
/** @{ */
/** Elementwise max(a, b) and min(a, b), broadcasting; NaN wins; ties split the gradient.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_maximum(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_minimum(nb_tape *tp, nb_tensor *a, nb_tensor *b);
/** @} */
/** mask != 0 ? a : b; the mask gets no gradient.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_where(nb_tape *tp, nb_tensor *mask, nb_tensor *a, nb_tensor *b);
/** a > b ? 1 : 0, a constant mask.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_greater(nb_tape *tp, nb_tensor *a, nb_tensor *b);

/** @{ */
/** Reductions over the listed axes (negative counts from the end; naxes = 0 means all). keepdim
 * keeps the reduced axes with size 1. nb_sum sums, nb_mean averages.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_ARG for an axis out of range). */
NB_API nb_tensor *nb_sum(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
NB_API nb_tensor *nb_mean(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
/** @} */
/** log Σ exp(a), shifted by the max so it neither overflows nor underflows (axes as nb_sum).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_logsumexp(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
/** @{ */
/** The sum and the mean of every element, of shape ().
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_sum_all(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_mean_all(nb_tape *tp, nb_tensor *a);
/** @} */
/** @{ */
/** The largest and smallest values over the axes (not empty); NaN wins. Elements that tie for the
 * extreme share its gradient equally (PyTorch's amax and amin).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_max(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
NB_API nb_tensor *nb_min(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
/** @} */
/** @{ */
/** The position of the extreme along one axis, the first one on ties (NaN counts as the
 * largest), as whole numbers in a's dtype: a constant, which nb_index_select and nb_gather take.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_argmax(nb_tape *tp, nb_tensor *a, int axis, int keepdim);
NB_API nb_tensor *nb_argmin(nb_tape *tp, nb_tensor *a, int axis, int keepdim);
/** @} */
/** @{ */
/** exp(a) / Σ exp(a) and its log along one axis, shifted by the max so that neither overflows.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_softmax(nb_tape *tp, nb_tensor *a, int axis);
NB_API nb_tensor *nb_log_softmax(nb_tape *tp, nb_tensor *a, int axis);
/** @} */

/** a·b. a is (M,K) or (B,M,K); b is (K,N) or (B,K,N); a (K,N) b is shared across the batch.
 * Transposed views are passed to the GEMM as flags, not copied.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_SHAPE for inner sizes that differ, NB_ERR_BACKEND when oneDNN refuses). */
NB_API nb_tensor *nb_matmul(nb_tape *tp, nb_tensor *a, nb_tensor *b);
/** Joins a and b along axis; all other dims must match.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_concat(nb_tape *tp, int axis, nb_tensor *a, nb_tensor *b);

/** Views: no copy, unless reshape meets a non-contiguous input. a with a new shape of as many
 * elements; one size may be -1, inferred.
 * @return a view of a's data (or a contiguous copy), its header in the arena (until
 *         nb_tape_reset), or NULL with the tape's error (NB_ERR_SHAPE when the sizes differ). */
NB_API nb_tensor *nb_reshape(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape);
/** Dim d of the result is dim perm[d] of a; nperm must be a's ndim.
 * @return a view of a's data, its header in the arena (until nb_tape_reset), or NULL with the
 *         tape's error. */
NB_API nb_tensor *nb_permute(nb_tape *tp, nb_tensor *a, int nperm, const int *perm);
/** a with dims d0 and d1 swapped (negative counts from the end).
 * @return a view of a's data, its header in the arena (until nb_tape_reset), or NULL with the
 *         tape's error. */
NB_API nb_tensor *nb_transpose(nb_tape *tp, nb_tensor *a, int d0, int d1);
/** The end of nb_slice that means "to the end". */
#define NB_END INT64_MAX
/** Elements start, start+step, ... < end along axis. Negative start and end count from the end;
 * end = NB_END means "to the end". step >= 1.
 * @return a view of a's data, its header in the arena (until nb_tape_reset), or NULL with the
 *         tape's error (NB_ERR_ARG for a bad axis or step). */
NB_API nb_tensor *nb_slice(nb_tape *tp, nb_tensor *a, int axis, int64_t start, int64_t end,
                           int64_t step);
/** @file
 * @par Indexing
 * Indices are tensors of a's dtype holding whole numbers in [0, size of the axis)
 * (argmax gives them); they are constants, checked before anything runs. Repeated indices add
 * their gradients. */
/** a with the positions index[0..k) along axis, in that order: the axis gets size k. index 1-D.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (an index that is not a whole number in range). */
NB_API nb_tensor *nb_index_select(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index);
/** PyTorch's gather: y has index's shape and y[p] = a[p with its axis coordinate replaced by
 * index[p]]. index has a's ndim and is no larger than a along the other axes.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_gather(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index);
/** Broadcast to shape (size-1 dims repeat with stride 0; new leading dims may be added).
 * @return a view of a's data, its header in the arena (until nb_tape_reset), or NULL with the
 *         tape's error (NB_ERR_SHAPE when a does not broadcast to shape). */
NB_API nb_tensor *nb_expand(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape);
/** a's values in a contiguous (row-major) tensor.
 * @return a itself when it is already contiguous, else an arena copy (until nb_tape_reset or
 *         nb_tape_free); NULL with the tape's error. */
NB_API nb_tensor *nb_contiguous(nb_tape *tp, nb_tensor *a);

/* ---- parameters ---------------------------------------------------------------------------- */

/** A store of named parameters of one dtype, with their gradients, in flat blocks.
 * @return a new store, owned by the caller (nb_params_free), or NULL with nb_last_error() set
 *         (NB_ERR_DTYPE for an unknown dtype, NB_ERR_NOMEM). */
NB_API nb_params *nb_params_new(nb_dtype dt);
/** Frees the store and every parameter and gradient it handed out; NULL is ignored. */
NB_API void nb_params_free(nb_params *ps);
/** Registers a zero-filled parameter. Returns NULL if the name is taken or memory runs out; see
 * nb_last_error. The tensor stays valid until the store is freed. Registering moves the flat
 * blocks, so re-read t->data after adding parameters, never cache it before.
 * @note The store owns the tensor, its gradient and its copy of name (nb_params_free). */
NB_API nb_tensor *nb_param(nb_params *ps, const char *name, int ndim, const int64_t *shape);
/** The store's dtype (NB_F32 for a NULL store). */
NB_API nb_dtype nb_params_dtype(const nb_params *ps);
/** The number of parameters registered (0 for a NULL store). */
NB_API int nb_params_count(const nb_params *ps);
/** Parameter i, in the order of registration.
 * @return the store's tensor (valid until nb_params_free), or NULL when i is out of range. */
NB_API nb_tensor *nb_params_at(nb_params *ps, int i);
/** The parameter registered as name.
 * @return the store's tensor (valid until nb_params_free), or NULL when there is none. */
NB_API nb_tensor *nb_params_find(nb_params *ps, const char *name);
/** The total number of values, without padding. */
NB_API int64_t nb_params_numel(const nb_params *ps);
/** Sets every gradient of the store to zero. */
NB_API void nb_params_zero_grad(nb_params *ps);
/** Marks every gradient of the store as zero without writing it, as PyTorch's
 * zero_grad(set_to_none=True) does: the next backward writes each gradient it reaches instead of
 * adding into it (no pass of zeros before, none to add into), and nb_params_flat (so the
 * optimizer) and nb_params_zero_grad zero the ones it did not reach. Until then a marked
 * gradient's memory holds its old values: read p->grad only after nb_backward, or through
 * nb_params_flat. */
NB_API void nb_params_clear_grad(nb_params *ps);
/** The flat blocks: n values each (parameters padded to 64-byte boundaries, padding is zero).
 * Any of data, grad, n may be NULL; asking for grad first zeroes the gradients that
 * nb_params_clear_grad marked and no backward has written since. The blocks belong to the store
 * and move when a parameter is registered: valid until the next nb_param or nb_params_free. */
NB_API void nb_params_flat(nb_params *ps, void **data, void **grad, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif
