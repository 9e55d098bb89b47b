/** @file
 * nabla/gradcheck.h — checking a gradient against finite differences, in f64.
 *
 * A case is a function that builds a computation on a tape from f64 inputs (and, optionally, the
 * parameters of an f64 nb_params store). nb_gradcheck draws the inputs in their domains, a random
 * cotangent u of the output's shape, and compares the tape's gradient of Σ u·y with fourth-order
 * central differences of the same sum, element by element, for every input and parameter:
 *
 *     (f(v - 2h) - 8 f(v - h) + 8 f(v + h) - f(v + 2h)) / 12h,   h = 1e-3 · max(1, |v|)
 *
 * Its truncation error is O(h⁴), so rounding stays near 1e-12 and a tolerance of 1e-6 is tight.
 * A random cotangent, not a plain sum, so that an error in any direction shows: for softmax,
 * d(Σ y)/dx is zero whatever the backward does.
 *
 *     static nb_tensor *build(nb_tape *tp, nb_tensor **x, void *ctx)
 *     {
 *         (void)ctx;
 *         return nb_mul(tp, nb_tanh(tp, x[0]), x[1]);
 *     }
 *     nb_gradcheck_case c = {.label = "tanh(a)·b", .build = build, .nin = 2,
 *                            .in = {NB_GC_IN(NB_GC_ANY, 3, 5), NB_GC_IN(NB_GC_ANY, 5)}};
 *     nb_gradcheck_result r;
 *     if (nb_gradcheck(&c, &r)) ...            // could not run: r.error says why
 *     for (int i = 0; i < r.n; i++) ...        // r.report[i].ok, .what, .max_rel_err, .reason
 *     if (!r.ok) ...                           // some gradient is wrong
 *
 * The build function is called many times (twice per element and input, four points each), on a
 * tape that is reset between calls: it must compute the same function every time (fix any noise:
 * pass it as an NB_GC_CONST input, or draw it from a generator reseeded inside build).
 */
#ifndef NB_GRADCHECK_H
#define NB_GRADCHECK_H

#include "autograd.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where an input's values are drawn, and whether its gradient is checked. */
typedef enum nb_gc_domain {
    NB_GC_ANY,   /**< uniform in [-2, 2] */
    NB_GC_POS,   /**< uniform in [0.2, 2] */
    NB_GC_AWAY,  /**< [-2, -0.2] ∪ [0.2, 2]: away from a kink or pole at 0 */
    NB_GC_UNIT,  /**< uniform in [0.05, 0.95]: probabilities, pixels */
    NB_GC_MASK,  /**< 0 or 1, a constant: no gradient is checked */
    NB_GC_CONST, /**< uniform in [-2, 2], a constant: no gradient is checked */
    NB_GC_INDEX, /**< integers in [0, index_max), a constant: indices for gather */
    /** distinct values, at least 0.02 apart across every NB_GC_DISTINCT input of the case,
     * spread over [-2, 2] (wider when there are many): for max, min, maximum, where a tie inside
     * the difference stencil would make the numeric gradient meaningless */
    NB_GC_DISTINCT,
} nb_gc_domain;

/** Limits of a case and its result. */
enum {
    NB_GC_MAX_IN = 6,       /**< inputs per case */
    NB_GC_MAX_KINKS = 4,    /**< kinks per case */
    NB_GC_MAX_REPORTS = 64, /**< reports per result */
    NB_GC_MAX_OPS = 64      /**< distinct ops a result lists */
};

/** One input of a case: its shape and domain (see NB_GC_IN). */
typedef struct nb_gc_input {
    int ndim;                   /**< 0 to NB_MAX_DIMS */
    int64_t shape[NB_MAX_DIMS]; /**< its shape */
    nb_gc_domain dom;           /**< where its values are drawn */
    int64_t index_max; /**< NB_GC_INDEX: values are drawn in [0, index_max) */
    int zero;          /**< its gradient is meant to be zero: checked to be zero, not judged relative */
} nb_gc_input;

/** An input's shape and domain as a literal: NB_GC_IN(NB_GC_ANY, 3, 5). */
#define NB_GC_IN(dom_, ...)                                                                  \
    {.ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                      \
     .shape = {__VA_ARGS__}, .dom = (dom_)}
/** A scalar (0-d) input: NB_GC_SCALAR(NB_GC_POS). */
#define NB_GC_SCALAR(dom_) {.ndim = 0, .dom = (dom_)}

/** A gradient check: the computation, its inputs and how strictly to judge (see the top of this
 * file). Zero-initialise it and set what you need. */
typedef struct nb_gradcheck_case {
    const char *label; /**< names the case in reports */
    /** The computation: in[i] are f64 tape tensors of the inputs' shapes (differentiable ones
     * require a gradient). Returns the output, of any shape; NULL fails the check. */
    nb_tensor *(*build)(nb_tape *tp, nb_tensor **in, void *ctx);
    void *ctx;                    /**< passed to build */
    int nin;                      /**< inputs used, 0 to NB_GC_MAX_IN */
    nb_gc_input in[NB_GC_MAX_IN]; /**< the inputs' shapes and domains */
    nb_params *params; /**< optional, f64: every parameter is checked like an input */
    double kink[NB_GC_MAX_KINKS]; /**< values inputs keep 0.1 away from, e.g.\ clamp bounds */
    int nkink;                    /**< kinks used */
    unsigned seed;      /**< inputs and cotangent; 0 picks 1 */
    double tol;         /**< relative error bound; 0: 1e-6 */
    int64_t max_elems;  /**< > 0: check this many elements per tensor (spread evenly); 0: all */
    const nb_op_def *op; /**< optional: the check fails unless this op is recorded on the tape */
} nb_gradcheck_case;

/** The check of one input or parameter. */
typedef struct nb_gc_report {
    char what[72];      /**< "input 2" or a parameter's name */
    int64_t checked;    /**< elements compared */
    double max_rel_err; /**< worst |analytic - numeric| / max(|a|, |n|, 1e-3 · max |gradient|) */
    double max_abs;     /**< largest |gradient| seen, analytic or numeric */
    int64_t worst;      /**< element index of the worst error */
    /** @{ */
    double analytic, numeric; /**< the two at that element */
    /** @} */
    int ok;             /**< 1 when max_rel_err is within the tolerance */
    char reason[160];   /**< why it failed, "" when ok */
} nb_gc_report;

/** What nb_gradcheck found, filled in by value: it holds no pointer to free. */
typedef struct nb_gradcheck_result {
    int ok;         /**< every report ok (and c->op recorded, when given) */
    double worst;   /**< the worst max_rel_err over the reports (inf when one failed to run) */
    int n;          /**< reports filled, one per differentiable input then per parameter */
    nb_gc_report report[NB_GC_MAX_REPORTS]; /**< the first n are filled */
    int nops;       /**< distinct ops recorded on the tape by the analytic pass */
    const nb_op_def *ops[NB_GC_MAX_OPS];    /**< the first nops, the descriptors themselves */
    char error[256]; /**< why the check could not run, "" otherwise */
} nb_gradcheck_result;

/** Runs the check (see the top of this file) into *r. Returns NB_OK when it ran, whatever it
 * found (r->ok says whether the gradients are right); an error when it could not run (a NULL or
 * malformed case, a failing forward or backward, f32 parameters, no memory), with r->error and
 * nb_last_error saying why. Allocates and frees its own tape; never prints. */
NB_API nb_status nb_gradcheck(const nb_gradcheck_case *c, nb_gradcheck_result *r);
/** 1 when the check's analytic pass recorded op on the tape. */
NB_API int nb_gradcheck_saw(const nb_gradcheck_result *r, const nb_op_def *op);

#ifdef __cplusplus
}
#endif
#endif
