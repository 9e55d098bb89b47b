/* tests/gc_tap.h — the library's gradient check (nabla/gradcheck.h) as TAP lines.
 *
 * The tests use the public checker only, as any user would: gc_tap runs one case and prints one
 * TAP line per input and parameter; ops recorded by passing cases count as covered. */
#ifndef NB_GC_TAP_H
#define NB_GC_TAP_H

#include "nabla/gradcheck.h"

/* Runs c, prints its lines, returns the worst relative error (inf when it could not run). */
double gc_tap(const nb_gradcheck_case *c);
/* 1 when a passing case recorded op. */
int gc_covered(const nb_op_def *op);
/* A built-in op (autograd's or nn's) by name, or NULL. */
const nb_op_def *gc_op(const char *name);
/* One TAP line per built-in op with a backward: fails for an op no passing case recorded. */
void gc_coverage(void);

#endif
