/* autograd/tape.h — internal: tape records, the op table, and the helpers every op uses.
 *
 * How an op is written (see op_elementwise.c for the simplest ones):
 *   1. its public constructor checks inputs with nb__inputs, works out the output shape (failing
 *      with nb__fail and a message that names the op and the shapes), fills an nb_node on the
 *      stack and calls nb__apply;
 *   2. nb__apply allocates the output, runs nb_fwd_<impl>, and keeps the node on the tape when
 *      an input requires a gradient and recording is on;
 *   3. nb_bwd_<impl> reads n->out->grad and adds (+=) into nb__grad(tp, n->in[i]), which is NULL
 *      for inputs that need no gradient. Broadcasting never reaches an op's backward: binary
 *      ops expand their inputs with nb_expand first, and EXPAND's backward is the one place
 *      where gradients are summed back to an input's shape.
 */
#ifndef NB_TAPE_H
#define NB_TAPE_H

#include <stdint.h>

#include "autograd/arena.h"
#include "nabla/autograd.h"
#include "tensor/kernels.h"

typedef enum nb_op_id {
#define NB_OP(id, name, impl) NB_OP_##id,
#include "autograd/ops.def"
#undef NB_OP
    NB_OP_COUNT
} nb_op_id;

enum { NB_MAX_IN = 3 };

typedef struct nb_node {
    nb_op_id op;
    int nin;
    nb_tensor *in[NB_MAX_IN];
    nb_tensor *out;
    double s[2];                /* scalar arguments */
    int64_t i[NB_MAX_DIMS + 2]; /* integer arguments: axes, permutation, slice bounds */
    void *aux;                  /* op-owned data in the arena (saved tensors, primitives) */
} nb_node;

typedef struct nb_op {
    const char *name;
    nb_status (*forward)(nb_tape *tp, nb_node *n);
    void (*backward)(nb_tape *tp, nb_node *n);
} nb_op;

extern const nb_op nb_ops[NB_OP_COUNT];

#define NB_OP(id, name, impl)                                                                \
    nb_status nb_fwd_##impl(nb_tape *tp, nb_node *n);                                        \
    void nb_bwd_##impl(nb_tape *tp, nb_node *n);
#include "autograd/ops.def"
#undef NB_OP

typedef struct nb_cache_entry nb_cache_entry;

struct nb_tape {
    nb_arena arena;
    nb_cache_entry *cache; /* objects that outlive a step, e.g. oneDNN primitives per shape */
    nb_node *nodes;
    int n_nodes, cap_nodes;
    int grad_on;
    int backward_done;
    nb_status status;
    char msg[512];
};

/* Records the first error since reset (later ones are dropped); returns st. */
#define nb__fail nb_tape_fail
/* 1 when the op can run: no earlier error, no NULL input, one dtype. Otherwise 0, with an
 * error recorded for a NULL input that is not explained by an earlier error. */
int nb__inputs(nb_tape *tp, const char *op, int n, nb_tensor *const *in);
/* Output of n (shape given), allocated unless view; runs the forward and records the node. */
nb_tensor *nb__apply(nb_tape *tp, nb_node *n, int ndim, const int64_t *shape, int view);
/* A tensor struct in the arena, contiguous; data allocated when alloc. NULL on failure. */
nb_tensor *nb__tensor(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, int alloc);
void *nb__alloc(nb_tape *tp, size_t bytes);
/* The gradient of t to add into, zero-filled on first use; NULL when t needs none. */
nb_tensor *nb__grad(nb_tape *tp, nb_tensor *t);
/* The node's output gradient with the reduced axes put back as size-1, stride-0 dims, so it
 * broadcasts against the node's input (used by reductions' backward). */
nb_tensor nb__unreduce(const nb_tensor *g, const nb_tensor *in, uint32_t axes_mask);
/* Normalises an axis list into a bitmask over a's dims (0 axes: all). */
int nb__axes(nb_tape *tp, const char *op, const nb_tensor *a, int naxes, const int *axes,
             uint32_t *mask);
/* The tape's cache of objects that outlive a step (oneDNN primitives, one per op and shape):
 * found by key bytes, destroyed with destroy(obj) by nb_tape_free. Keys must be fully
 * initialised (memset padding). add returns 0 when out of memory (obj is then destroyed). */
void *nb__cache_find(nb_tape *tp, const void *key, size_t len);
int nb__cache_add(nb_tape *tp, const void *key, size_t len, void *obj, void (*destroy)(void *));
/* "(3,5,7)" for messages, in a static-free buffer of the caller. */
#define NB_SHP(t) nb_shape_str((t), (char[64]){0}, 64)

#endif
