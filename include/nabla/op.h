/** @file
 * nabla/op.h — defining an op: the one mechanism behind every built-in op, open to any code.
 *
 * An op is a descriptor, nb_op_def: a name, a shape rule, a forward and a backward, and optional
 * constant data. Its constructor (the function users call, like nb_exp) fills an nb_node with
 * the inputs and arguments and hands it to nb_op_apply, which
 *   1. refuses NULL, stale or mixed-dtype inputs with a message naming the op and the input;
 *   2. broadcasts the inputs to one shape (NB_OP_BROADCAST) or makes them contiguous
 *      (NB_OP_CONTIGUOUS) when the descriptor asks, recording those steps too;
 *   3. asks the shape rule for the output shape, allocates the output in the tape's arena
 *      (contiguous, the inputs' dtype; a header only for NB_OP_VIEW);
 *   4. runs forward, and records the node when an input requires a gradient.
 *
 * nb_backward later calls backward on each recorded node, newest first, with n->out->grad set;
 * backward adds (+=) into nb_op_grad(tp, n, i) for every input that wants a gradient.
 *
 * A complete op, y = x³ (the forward and backward of an op live side by side):
 *
 *     static nb_status cube_fwd(nb_tape *tp, nb_node *n)
 *     {
 *         (void)tp;
 *         const double *x = n->in[0]->data;   // contiguous: the descriptor asks for it
 *         double *y = n->out->data;
 *         for (int64_t i = 0; i < nb_numel(n->out); i++) y[i] = x[i] * x[i] * x[i];
 *         return NB_OK;
 *     }
 *     static nb_status cube_bwd(nb_tape *tp, nb_node *n)
 *     {
 *         nb_tensor *gx = nb_op_grad(tp, n, 0);   // NULL when x needs no gradient
 *         if (!gx) return NB_OK;
 *         const double *x = n->in[0]->data, *gy = n->out->grad->data;
 *         double *g = gx->data;
 *         for (int64_t i = 0; i < nb_numel(gx); i++) g[i] += 3 * x[i] * x[i] * gy[i];
 *         return NB_OK;
 *     }
 *     static const nb_op_def cube_op = {.name = "cube", .flags = NB_OP_CONTIGUOUS,
 *                                       .forward = cube_fwd, .backward = cube_bwd};
 *     nb_tensor *cube(nb_tape *tp, nb_tensor *x)
 *     {
 *         return nb_op_apply(tp, &cube_op, &(nb_node){.nin = 1, .in = {x}});
 *     }
 *
 * (A real op checks the dtype and handles f32 too.) Check it with nb_gradcheck (nabla/gradcheck.h).
 */
#ifndef NB_OP_H
#define NB_OP_H

#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Limits of a node. */
enum {
    NB_OP_MAX_IN = 4, /**< inputs per node */
    NB_OP_MAX_S = 4,  /**< scalar arguments per node (nb_node::s) */
    NB_OP_MAX_I = 8   /**< integer arguments per node (nb_node::i) */
};

/** An op's descriptor (defined below). */
typedef struct nb_op_def nb_op_def;

/** One application of an op. The constructor fills nin, in, s, i and, if it wants, ctx and
 * saved; nb_op_apply sets op and out. The tape keeps a copy of the node for backward. */
typedef struct nb_node {
    const nb_op_def *op;         /**< set by nb_op_apply */
    int nin;                     /**< inputs used, 1 to NB_OP_MAX_IN */
    nb_tensor *in[NB_OP_MAX_IN]; /**< the inputs (as broadcast or made contiguous for the op) */
    nb_tensor *out;              /**< the output, an arena tensor; set by nb_op_apply */
    double s[NB_OP_MAX_S];  /**< scalar arguments */
    int64_t i[NB_OP_MAX_I]; /**< integer arguments: axes, sizes, bounds */
    void *ctx;              /**< the caller's pointer, passed through untouched */
    void *saved;            /**< what backward needs from forward, in tape memory (nb_op_alloc) */
} nb_node;

/** Bits of nb_op_def::flags: what nb_op_apply does before the shape rule and forward run. */
enum nb_op_flags {
    /** The output is a view: nb_op_apply allocates a header with contiguous strides and no data;
     * forward sets out->data (and out->stride) to point into input 0. */
    NB_OP_VIEW = 1u << 0,
    /** Inputs are made contiguous (a recorded copy) before the shape rule and forward run. */
    NB_OP_CONTIGUOUS = 1u << 1,
    /** Inputs are broadcast to one shape the NumPy way (recorded expand views) first; the shape
     * rule may then be NULL. Combine with NB_OP_CONTIGUOUS to receive dense copies. */
    NB_OP_BROADCAST = 1u << 2,
};

/** An op: a name, a shape rule, a forward and a backward, and optional constant data (see the
 * top of this file). Descriptors are usually static const; the tape only points to them. */
struct nb_op_def {
    const char *name; /**< "exp": messages say "nb_exp: ..." */
    unsigned flags;   /**< nb_op_flags */
    /** The output's shape from the node's inputs and arguments. NULL: input 0's shape. A shape
     * the op cannot take is refused with nb_tape_fail, naming the op and the shapes. */
    nb_status (*shape)(nb_tape *tp, const nb_node *n, int *ndim, int64_t shape[NB_MAX_DIMS]);
    /** Computes n->out from n->in. A failure without its own nb_tape_fail message is reported
     * as `"nb_<name>: <status>"`. */
    nb_status (*forward)(nb_tape *tp, nb_node *n);
    /** Adds each input's share of n->out->grad into nb_op_grad(tp, n, i). NULL: the output is a
     * constant (nothing is recorded, e.g.\ argmax). */
    nb_status (*backward)(nb_tape *tp, nb_node *n);
    const void *data; /**< the descriptor's own constants: ops that share code tell themselves apart */
};

/** Runs the op on n (see the top of this file) and returns its output, an arena tensor, or NULL
 * with the tape's error set (and the thread's nb_last_error). A NULL input returns NULL: the
 * error that made it NULL is already on the tape.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error.
 * @note The tape copies n; the caller may pass a compound literal. */
NB_API nb_tensor *nb_op_apply(nb_tape *tp, const nb_op_def *op, nb_node *n);
/** 1 when an op named name can run on the n inputs: a tape without an earlier error, inputs not
 * NULL, of a step that has not ended (this tape's or another live one's), of one dtype. Otherwise 0 with the error recorded. For
 * constructors that look at their inputs (shapes, dtypes) before nb_op_apply. */
NB_API int nb_op_check(nb_tape *tp, const char *name, int n, nb_tensor *const *in);
/** In backward: the gradient of input i to add into (zero until something is added; the input's
 * shape, contiguous), or NULL when that input needs none.
 * @return a parameter's persistent gradient, or an arena tensor (until nb_tape_reset); NULL
 *         also when out of memory, with the tape's error. */
NB_API nb_tensor *nb_op_grad(nb_tape *tp, const nb_node *n, int i);
/** nb_op_grad for a backward that can write the gradient instead of adding into it (a GEMM with
 * beta = 0): *fresh is 1 when this is the gradient's first use (an arena gradient not yet
 * made, or a parameter's marked by nb_params_clear_grad), and the caller must then write every
 * element, as nothing zeroed it; 0 when it must add, as with nb_op_grad.
 * @return as nb_op_grad; *fresh is 0 whenever the result is NULL. */
NB_API nb_tensor *nb_op_grad_fresh(nb_tape *tp, const nb_node *n, int i, int *fresh);
/** In forward: 1 when input i's gradient will be asked of this node's backward (the tape records
 * gradients, the input requires one and the op has a backward), so that a forward can skip what
 * only that gradient needs (evaluation runs with gradients off); 0 otherwise. */
NB_API int nb_op_needs_grad(const nb_tape *tp, const nb_node *n, int i);
/** Tape memory for a step (64-byte aligned, uninitialised), freed by nb_tape_reset: what forward
 * saves for backward, scratch buffers. NULL with the tape's error set when out of memory.
 * @note The tape owns the memory: never free it; it is gone at nb_tape_reset or nb_tape_free. */
NB_API void *nb_op_alloc(nb_tape *tp, size_t bytes);
/** Memory for the current forward or backward call only (64-byte aligned, uninitialised): it is
 * reused by the next op's call, so a step's peak memory holds one op's temporaries, not all of
 * them. For buffers nothing reads after the call returns (reorders, workspaces).
 * @return NULL with the tape's error set when out of memory. */
NB_API void *nb_op_scratch(nb_tape *tp, size_t bytes);

/** Records node i (0 = oldest) of the tape since the last reset, or NULL when i is out of range.
 * For tests and tools that look at what a computation recorded.
 * @return the tape's copy of the node, valid until nb_tape_reset or nb_tape_free. */
NB_API const nb_node *nb_tape_node(const nb_tape *tp, int i);

/** @{ */
/** Objects that outlive a step, kept by the tape until nb_tape_free (e.g.\ oneDNN primitives per
 * shape): found by the bytes of a key (fully initialised, no stray padding). add takes
 * ownership of obj: destroy(obj) runs at nb_tape_free, or at once when add fails for lack of
 * memory (NB_ERR_NOMEM, error set on the tape).
 * @return find: the object, still owned by the tape, or NULL when the key is not cached;
 *         add: NB_OK, or NB_ERR_ARG / NB_ERR_NOMEM with the error on the tape. */
NB_API void *nb_tape_cache_find(nb_tape *tp, const void *key, size_t len);
NB_API nb_status nb_tape_cache_add(nb_tape *tp, const void *key, size_t len, void *obj,
                                   void (*destroy)(void *));
/** @} */

/** The built-in ops of autograd (arithmetic, maths, reductions, views, matmul), *n of them:
 * what a coverage test walks (nn's layers and losses: nb_nn_ops in nabla/nn.h).
 * @return a static array (n may be NULL); never free it. */
NB_API const nb_op_def *const *nb_autograd_ops(int *n);

#ifdef __cplusplus
}
#endif
#endif
