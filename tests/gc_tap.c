/* tests/gc_tap.c — see gc_tap.h. */
#include <math.h>
#include <string.h>

#include "nabla/nn.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

enum { MAX_COVERED = 512 };
static const nb_op_def *covered[MAX_COVERED];
static int ncovered;

double gc_tap(const nb_gradcheck_case *c)
{
    nb_gradcheck_result r;
    if (nb_gradcheck(c, &r)) {
        ok(0, "%s: %s", c->label, r.error);
        return INFINITY;
    }
    for (int i = 0; i < r.n; i++) {
        const nb_gc_report *p = &r.report[i];
        ok(p->ok, "%s: d/d %s: max rel err %.2e over %lld (|grad| up to %.3g)%s%s", c->label,
           p->what, p->max_rel_err, (long long)p->checked, p->max_abs, p->ok ? "" : ": ",
           p->reason);
    }
    if (c->op) ok(nb_gradcheck_saw(&r, c->op), "%s: op %s is on the tape", c->label, c->op->name);
    if (r.ok)
        for (int k = 0; k < r.nops; k++)
            if (!gc_covered(r.ops[k]) && ncovered < MAX_COVERED) covered[ncovered++] = r.ops[k];
    return r.ok ? r.worst : INFINITY;
}

int gc_covered(const nb_op_def *op)
{
    for (int k = 0; k < ncovered; k++)
        if (covered[k] == op) return 1;
    return 0;
}

const nb_op_def *gc_op(const char *name)
{
    int n;
    const nb_op_def *const *l = nb_autograd_ops(&n);
    for (int k = 0; k < n; k++)
        if (!strcmp(l[k]->name, name)) return l[k];
    l = nb_nn_ops(&n);
    for (int k = 0; k < n; k++)
        if (!strcmp(l[k]->name, name)) return l[k];
    return NULL;
}

void gc_coverage(void)
{
    int n;
    const nb_op_def *const *lists[2] = {nb_autograd_ops(NULL), nb_nn_ops(NULL)};
    for (int l = 0; l < 2; l++) {
        l == 0 ? nb_autograd_ops(&n) : nb_nn_ops(&n);
        for (int k = 0; k < n; k++)
            if (lists[l][k]->backward)
                ok(gc_covered(lists[l][k]), "coverage: op %s has a gradient check", lists[l][k]->name);
    }
}
