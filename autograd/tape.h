/* autograd/tape.h — internal: the tape's insides and the helpers the built-in ops share.
 *
 * The built-in ops are defined exactly as any op is (nabla/op.h): a descriptor, a shape rule,
 * a forward and a backward side by side in one op_*.c file, applied with nb_op_apply. This file
 * only adds what autograd's own ops share beyond that public interface: the list of them
 * (ops.def), axis lists as bitmasks, and reduced gradients seen with their input's rank.
 */
#ifndef NB_TAPE_H
#define NB_TAPE_H

#include <stdint.h>

#include "autograd/arena.h"
#include "nabla/op.h"
#include "tensor/kernels.h"

#define NB_OP(name) extern const nb_op_def nb__op_##name;
#include "autograd/ops.def"
#undef NB_OP

typedef struct nb_cache_entry nb_cache_entry;

/* Tensor headers of one step: blocks that are never moved, rewound by a reset. */
typedef struct nb_hdr_block nb_hdr_block;
typedef struct nb_hdr_pool {
    nb_hdr_block *head, *cur;
    int used; /* headers taken from cur */
} nb_hdr_pool;

struct nb_tape {
    nb_arena arena;   /* data and saved state of the current step */
    nb_arena scratch; /* memory of one forward or backward call (nb_op_scratch) */
    int depth;        /* forward or backward calls under way: scratch is rewound at 0 */
    /* Headers alternate between two pools, step by step, and carry the step's generation. A
     * header from the previous step is therefore never overwritten by one of this step, and
     * still says which step it belongs to: using it is refused, not read as fresh data. */
    nb_hdr_pool hdr[2];
    uint64_t gen;   /* this step's generation: unique across tapes and steps */
    uint64_t steps; /* resets so far; its parity picks the header pool */
    nb_tape *live_next;    /* the list of live tapes (tape.c) */
    nb_cache_entry *cache; /* objects that outlive a step, e.g. oneDNN primitives per shape */
    nb_node *nodes;
    int n_nodes, cap_nodes;
    int grad_on;
    nb_precision precision;
    int backward_done;
    nb_status status;
    char msg[512];
};

/* What a header is marked with when its pool is rewound: never a live generation. */
#define NB_GEN_STALE UINT64_MAX

/* Records the first error since reset (later ones are dropped); returns st. */
#define nb__fail nb_tape_fail
/* nb_op_check: 1 when an op can run on the n inputs: a tape, no earlier error, inputs not NULL,
 * of a step that has not ended, of one dtype. Otherwise 0, with the error recorded (on the
 * tape, or in nb_last_error for a NULL tape) unless an earlier error explains a NULL input. */
int nb__inputs(nb_tape *tp, const char *op, int n, nb_tensor *const *in);
/* 0 when t is an arena tensor of a step that has ended, on this tape or another (error recorded,
 * naming op and which input, 0 for "the tensor"); 1 otherwise. */
int nb__current(nb_tape *tp, const char *op, const nb_tensor *t, int which);
/* A tensor header for this step, contiguous strides; its data in the arena when alloc. NULL with
 * the error recorded on failure. */
nb_tensor *nb__tensor(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, int alloc);
#define nb__alloc nb_op_alloc
/* The gradient of t to add into, zero-filled on first use; NULL when t needs none. */
nb_tensor *nb__grad(nb_tape *tp, nb_tensor *t);
/* The same for a caller that writes every element when *fresh comes back 1 (a GEMM with beta =
 * 0), and adds into it when 0: on first use it is neither filled with zeros nor read. */
nb_tensor *nb__grad_fresh(nb_tape *tp, nb_tensor *t, int *fresh);
/* The node's output gradient with the reduced axes put back as size-1, stride-0 dims, so it
 * broadcasts against the node's input (used by reductions' backward). */
nb_tensor nb__unreduce(const nb_tensor *g, const nb_tensor *in, uint32_t axes_mask);
/* Normalises an axis list into a bitmask over a's dims (0 axes: all). */
int nb__axes(nb_tape *tp, const char *op, const nb_tensor *a, int naxes, const int *axes,
             uint32_t *mask);
/* "(3,5,7)" for messages, in a buffer of the caller's scope. */
#define NB_SHP(t) nb_shape_str((t), (char[64]){0}, 64)

#endif
