/* nabla/autograd.h — the tape, the ops that record on it, and parameters.
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

typedef struct nb_tape nb_tape;
typedef struct nb_params nb_params;

/* ---- tape ---------------------------------------------------------------------------------- */

/* A tape with recording on. Returns NULL only when out of memory. */
NB_API nb_tape *nb_tape_new(void);
NB_API void nb_tape_free(nb_tape *tp);
/* Drops every record, intermediate tensor and error; keeps the arena's memory for reuse. */
NB_API void nb_tape_reset(nb_tape *tp);
/* Recording on (1) or off (0, inference: same calls, nothing recorded). Returns the old value. */
NB_API int nb_tape_set_grad(nb_tape *tp, int on);
NB_API nb_status nb_tape_status(const nb_tape *tp);
/* The first error since the last reset, e.g. "nb_add: shapes (3,5) and (4,5) do not broadcast";
 * "" when there is none. */
NB_API const char *nb_tape_error(const nb_tape *tp);
/* Records an error from code built on the tape (a model checking its inputs); the first error
 * since reset wins. Returns st. */
NB_API nb_status nb_tape_fail(nb_tape *tp, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
NB_API int nb_tape_size(const nb_tape *tp);             /* records since reset */
/* The first recorded op whose output holds a NaN or an infinity, as "op #k (name) output (B,D)",
 * written into msg; returns its record index, or -1 when every output is finite. For the
 * non-finite guard of a training loop: it names where a NaN was born. */
NB_API int nb_tape_find_nonfinite(const nb_tape *tp, char *msg, size_t size);
NB_API size_t nb_tape_arena_bytes(const nb_tape *tp);   /* memory the arena holds */

/* Reverse pass from a scalar (one-element) loss, seeded with 1. Gradients are added (+=) into
 * t->grad of every tensor that requires one: parameters' persistent gradients, and arena
 * gradients for the rest. Returns the tape's sticky error if an op failed earlier. */
NB_API nb_status nb_backward(nb_tape *tp, nb_tensor *loss);
/* The same from any output y, seeded with the cotangent seed (y's shape). */
NB_API nb_status nb_backward_from(nb_tape *tp, nb_tensor *y, const nb_tensor *seed);

/* ---- profile ------------------------------------------------------------------------------- */

/* A per-op profile of where steps spend their time: forward and backward wall time and calls per
 * op, summed over every tape. On when the environment has NB_PROFILE=1 (read at the first op) or
 * after nb_profile_enable(1). nb_profile_print writes the table, largest total first. */
NB_API void nb_profile_enable(int on);
NB_API int nb_profile_enabled(void);
NB_API void nb_profile_reset(void);
NB_API void nb_profile_print(FILE *f);

/* ---- tensors in the arena ------------------------------------------------------------------ */

NB_API nb_tensor *nb_empty(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_zeros(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_full(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, double v);
NB_API nb_tensor *nb_scalar(nb_tape *tp, nb_dtype dt, double v);
/* Copies numel values of dtype dt from src. */
NB_API nb_tensor *nb_tensor_from(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape,
                                 const void *src);
/* Random tensors are constants (no gradient). The draw depends on rng and numel only. */
NB_API nb_tensor *nb_uniform(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim,
                             const int64_t *shape, double lo, double hi);
NB_API nb_tensor *nb_randn(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_bernoulli(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim,
                               const int64_t *shape, double p);
/* Marks a leaf (e.g. from nb_tensor_from) as needing a gradient; returns it. NULL passes. */
NB_API nb_tensor *nb_requires_grad(nb_tensor *t);
/* A view of t that backward does not go through. */
NB_API nb_tensor *nb_detach(nb_tape *tp, nb_tensor *t);

/* ---- ops ----------------------------------------------------------------------------------- */
/* Every op takes the tape first, accepts NULL inputs (returns NULL) and, for binary ops,
 * broadcasts its operands the NumPy way. Results are new arena tensors (views for the view ops). */

NB_API nb_tensor *nb_add(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_sub(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_mul(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_div(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_neg(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_scale(nb_tape *tp, nb_tensor *a, double s);      /* s·a */
NB_API nb_tensor *nb_add_scalar(nb_tape *tp, nb_tensor *a, double s); /* a + s */
NB_API nb_tensor *nb_exp(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_log(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_log1p(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_sqrt(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_square(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_tanh(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_sigmoid(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_relu(nb_tape *tp, nb_tensor *a);
NB_API nb_tensor *nb_leaky_relu(nb_tape *tp, nb_tensor *a, double slope);
NB_API nb_tensor *nb_elu(nb_tape *tp, nb_tensor *a, double alpha);     /* alpha > 0 */
NB_API nb_tensor *nb_gelu(nb_tape *tp, nb_tensor *a);                  /* exact: a·Φ(a) */
NB_API nb_tensor *nb_softplus(nb_tape *tp, nb_tensor *a);    /* log(1 + e^a), stable */
NB_API nb_tensor *nb_log_sigmoid(nb_tape *tp, nb_tensor *a); /* -softplus(-a), stable */
NB_API nb_tensor *nb_clamp(nb_tape *tp, nb_tensor *a, double lo, double hi);
NB_API nb_tensor *nb_abs(nb_tape *tp, nb_tensor *a);      /* the gradient at 0 is 0 */
/* a^p for a finite exponent p; a < 0 with a p that is not a whole number gives NaN. */
NB_API nb_tensor *nb_pow(nb_tape *tp, nb_tensor *a, double p);
/* Elementwise max(a, b) and min(a, b), broadcasting; NaN wins; ties split the gradient. */
NB_API nb_tensor *nb_maximum(nb_tape *tp, nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_minimum(nb_tape *tp, nb_tensor *a, nb_tensor *b);
/* mask != 0 ? a : b; the mask gets no gradient. */
NB_API nb_tensor *nb_where(nb_tape *tp, nb_tensor *mask, nb_tensor *a, nb_tensor *b);
/* a > b ? 1 : 0, a constant mask. */
NB_API nb_tensor *nb_greater(nb_tape *tp, nb_tensor *a, nb_tensor *b);

/* Reductions over the listed axes (negative counts from the end; naxes = 0 means all). keepdim
 * keeps the reduced axes with size 1. */
NB_API nb_tensor *nb_sum(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
NB_API nb_tensor *nb_mean(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
/* log Σ exp(a), shifted by the max so it neither overflows nor underflows. */
NB_API nb_tensor *nb_logsumexp(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
NB_API nb_tensor *nb_sum_all(nb_tape *tp, nb_tensor *a);  /* shape () */
NB_API nb_tensor *nb_mean_all(nb_tape *tp, nb_tensor *a); /* shape () */
/* The largest and smallest values over the axes (not empty); NaN wins. Elements that tie for the
 * extreme share its gradient equally (PyTorch's amax and amin). */
NB_API nb_tensor *nb_max(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
NB_API nb_tensor *nb_min(nb_tape *tp, nb_tensor *a, int naxes, const int *axes, int keepdim);
/* The position of the extreme along one axis, the first one on ties (NaN counts as the
 * largest), as whole numbers in a's dtype: a constant, which nb_index_select and nb_gather take. */
NB_API nb_tensor *nb_argmax(nb_tape *tp, nb_tensor *a, int axis, int keepdim);
NB_API nb_tensor *nb_argmin(nb_tape *tp, nb_tensor *a, int axis, int keepdim);
/* exp(a) / Σ exp(a) and its log along one axis, shifted by the max so that neither overflows. */
NB_API nb_tensor *nb_softmax(nb_tape *tp, nb_tensor *a, int axis);
NB_API nb_tensor *nb_log_softmax(nb_tape *tp, nb_tensor *a, int axis);

/* a·b. a is (M,K) or (B,M,K); b is (K,N) or (B,K,N); a (K,N) b is shared across the batch.
 * Transposed views are passed to the GEMM as flags, not copied. */
NB_API nb_tensor *nb_matmul(nb_tape *tp, nb_tensor *a, nb_tensor *b);
/* Joins a and b along axis; all other dims must match. */
NB_API nb_tensor *nb_concat(nb_tape *tp, int axis, nb_tensor *a, nb_tensor *b);

/* Views: no copy, unless reshape meets a non-contiguous input. */
NB_API nb_tensor *nb_reshape(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape);
/* Dim d of the result is dim perm[d] of a; nperm must be a's ndim. */
NB_API nb_tensor *nb_permute(nb_tape *tp, nb_tensor *a, int nperm, const int *perm);
NB_API nb_tensor *nb_transpose(nb_tape *tp, nb_tensor *a, int d0, int d1);
/* Elements start, start+step, ... < end along axis. Negative start and end count from the end;
 * end = NB_END means "to the end". */
#define NB_END INT64_MAX
NB_API nb_tensor *nb_slice(nb_tape *tp, nb_tensor *a, int axis, int64_t start, int64_t end,
                           int64_t step);
/* Indexing. Indices are tensors of a's dtype holding whole numbers in [0, size of the axis)
 * (argmax gives them); they are constants, checked before anything runs. Repeated indices add
 * their gradients. */
/* a with the positions index[0..k) along axis, in that order: the axis gets size k. index 1-D. */
NB_API nb_tensor *nb_index_select(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index);
/* PyTorch's gather: y has index's shape and y[p] = a[p with its axis coordinate replaced by
 * index[p]]. index has a's ndim and is no larger than a along the other axes. */
NB_API nb_tensor *nb_gather(nb_tape *tp, nb_tensor *a, int axis, nb_tensor *index);
/* Broadcast to shape (size-1 dims repeat with stride 0; new leading dims may be added). */
NB_API nb_tensor *nb_expand(nb_tape *tp, nb_tensor *a, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_contiguous(nb_tape *tp, nb_tensor *a);

/* ---- parameters ---------------------------------------------------------------------------- */

/* A store of named parameters of one dtype, with their gradients, in flat blocks. */
NB_API nb_params *nb_params_new(nb_dtype dt);
NB_API void nb_params_free(nb_params *ps);
/* Registers a zero-filled parameter. Returns NULL if the name is taken or memory runs out; see
 * nb_last_error. The tensor stays valid until the store is freed. Registering moves the flat
 * blocks, so re-read t->data after adding parameters, never cache it before. */
NB_API nb_tensor *nb_param(nb_params *ps, const char *name, int ndim, const int64_t *shape);
NB_API nb_dtype nb_params_dtype(const nb_params *ps);
NB_API int nb_params_count(const nb_params *ps);
NB_API nb_tensor *nb_params_at(nb_params *ps, int i);
NB_API nb_tensor *nb_params_find(nb_params *ps, const char *name);
NB_API int64_t nb_params_numel(const nb_params *ps); /* total values, without padding */
NB_API void nb_params_zero_grad(nb_params *ps);
/* The flat blocks: n values each (parameters padded to 64-byte boundaries, padding is zero). */
NB_API void nb_params_flat(nb_params *ps, void **data, void **grad, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif
