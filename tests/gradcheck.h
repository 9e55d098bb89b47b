/* tests/gradcheck.h — the gradient-check harness shared by every op and layer test.
 *
 * A case builds a computation from f64 inputs on a tape. The harness draws inputs in the case's
 * domain (away from kinks), a random cotangent u of the output's shape, and compares the tape's
 * gradient of Σ u·y with fourth-order central differences of the same sum, input by input and
 * element by element. Inputs stay 0.1 away from kinks; the stencil reaches 2e-3. A random cotangent, not a plain sum, so that an error in any direction shows.
 */
#ifndef NB_GRADCHECK_H
#define NB_GRADCHECK_H

#include "autograd/tape.h"

typedef enum gc_domain {
    GC_ANY,   /* uniform in [-2, 2] */
    GC_POS,   /* uniform in [0.2, 2] */
    GC_AWAY,  /* [-2, -0.2] ∪ [0.2, 2]: away from a kink or pole at 0 */
    GC_UNIT,  /* uniform in [0.05, 0.95]: probabilities */
    GC_MASK,  /* 0 or 1, a constant: no gradient is checked */
    GC_CONST, /* uniform in [-2, 2], a constant: no gradient is checked */
} gc_domain;

typedef struct gc_input {
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    gc_domain dom;
} gc_input;

typedef struct gc_case {
    int op;             /* the nb_op_id this case covers; it must appear on the tape */
    const char *label;
    nb_tensor *(*build)(nb_tape *tp, nb_tensor **in, void *ctx);
    void *ctx;
    int nin;
    gc_input in[4];
    double kink[2]; /* values inputs keep 0.1 away from (besides the domain), e.g. clamp bounds */
    int nkink;
    nb_params *params; /* optional (f64): its parameters are checked like inputs */
} gc_case;

#define GC_IN(dom_, ...)                                                                     \
    {.ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                      \
     .shape = {__VA_ARGS__}, .dom = (dom_)}
#define GC_SCALAR(dom_) {.ndim = 0, .dom = (dom_)}

enum { GC_MAX_OPS = 256 };

/* Runs one case: prints one TAP line per differentiable input; returns the worst relative error.
 * Marks covered[op] when the case's op was recorded on the tape. */
double gc_run(const gc_case *c, unsigned seed, int covered[GC_MAX_OPS]);

/* The relative error bound every check must meet in f64. */
#define GC_TOL 1e-6

#endif
