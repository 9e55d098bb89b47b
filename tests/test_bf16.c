/* tests/test_bf16.c — bf16 precision: Linear, Conv2d and ConvTranspose2d products on bf16 inputs
 * with f32 accumulation agree with f32 to bf16's rounding, values and gradients; a CPU without
 * bf16 arithmetic (oneDNN capped to AVX-512 core) refuses it with a clear error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

/* max |a - b| / max |b| */
static double rel(const nb_tensor *a, const nb_tensor *b)
{
    double d = 0, m = 0;
    for (int64_t i = 0; a && b && i < nb_numel(b); i++) {
        d = fmax(d, fabs(nb_get(a, i) - nb_get(b, i)));
        m = fmax(m, fabs(nb_get(b, i)));
    }
    return a && b && m > 0 ? d / m : INFINITY;
}

typedef nb_tensor *(*layer_fn)(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b);
static nb_tensor *lin(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_linear(tp, x, w, b); }
static nb_tensor *conv(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_conv2d(tp, x, w, b, nb_conv(2, 1)); }
static nb_tensor *deconv(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    return nb_conv_transpose2d(tp, x, w, b, nb_conv(2, 1));
}

/* The layer in one precision: output, and the gradients of Σ u·y for x, w and b (copied out). */
static void run(nb_precision p, layer_fn f, const int64_t *xs, int xn, const int64_t *ws, int wn, int64_t bn,
                double *out[4], int64_t n[4])
{
    nb_tape *tp = nb_tape_new();
    nb_tape_set_precision(tp, p);
    nb_rng r = nb_rng_seed(3);
    nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, xn, xs, -1, 1));
    nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, NB_F32, wn, ws, -0.3, 0.3));
    nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, NB_F32, 1, &bn, -0.3, 0.3));
    nb_tensor *y = f(tp, x, w, b);
    nb_tensor *u = y ? nb_uniform(tp, &r, NB_F32, y->ndim, y->shape, -1, 1) : NULL;
    nb_backward(tp, nb_sum_all(tp, nb_mul(tp, y, u)));
    nb_tensor *t[4] = {y, x->grad, w->grad, b->grad};
    for (int i = 0; i < 4; i++) {
        n[i] = t[i] ? nb_numel(t[i]) : 0;
        out[i] = calloc((size_t)n[i] + 1, sizeof(double));
        for (int64_t j = 0; j < n[i]; j++) out[i][j] = nb_get(t[i], j);
    }
    nb_tape_free(tp);
}

static void compare(const char *label, layer_fn f, const int64_t *xs, int xn, const int64_t *ws, int wn, int64_t bn)
{
    double *a[4], *b[4];
    int64_t na[4], nbb[4];
    run(NB_PREC_F32, f, xs, xn, ws, wn, bn, a, na);
    run(NB_PREC_BF16, f, xs, xn, ws, wn, bn, b, nbb);
    const char *what[4] = {"output", "d/dx", "d/dw", "d/db"};
    for (int i = 0; i < 4; i++) {
        nb_tensor ta, tb;
        nb_tensor_wrap(&ta, NB_F64, 1, &na[i], a[i]);
        nb_tensor_wrap(&tb, NB_F64, 1, &nbb[i], b[i]);
        const double e = na[i] == nbb[i] && na[i] ? rel(&tb, &ta) : INFINITY;
        /* bf16 keeps 8 significant bits: a product of rounded inputs is off by ~2^-8, sums of
         * such terms partly cancel; 2% of the largest value bounds it with room */
        /* the output must differ: bf16 did run (a bias gradient is a plain f32 sum in Linear) */
        ok(e < 2e-2 && (i || e > 0), "%s in bf16: %s within %.1e of f32 (relative to its largest value)", label, what[i], e);
        free(a[i]), free(b[i]);
    }
}

/* Run as `test_bf16 capped` under ONEDNN_MAX_CPU_ISA=AVX512_CORE: oneDNN reads the cap once,
 * at its first call, so the check needs a fresh process. */
static int capped(void)
{
    nb_tape *tp = nb_tape_new();
    const nb_status st = nb_tape_set_precision(tp, NB_PREC_BF16);
    const int refused = st == NB_ERR_BACKEND && strstr(nb_last_error(), "no bf16") && nb_tape_precision(tp) == NB_PREC_F32;
    nb_tape_free(tp);
    return !refused;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "capped")) return capped();
    if (!nb_cpu_bf16()) {
        ok(1, "# SKIP this CPU has no bf16 arithmetic");
    } else {
        compare("Linear (64,300)->(64,200)", lin, (const int64_t[]){64, 300}, 2, (const int64_t[]){200, 300}, 2, 200);
        compare("Conv2d 3->8, 12x12, k4 s2 p1", conv, (const int64_t[]){4, 3, 12, 12}, 4,
                (const int64_t[]){8, 3, 4, 4}, 4, 8);
        compare("ConvTranspose2d 8->2, 6x6, k4 s2 p1", deconv, (const int64_t[]){4, 8, 6, 6}, 4,
                (const int64_t[]){8, 2, 4, 4}, 4, 2);
        nb_tape *tp = nb_tape_new();
        ok(nb_tape_set_precision(tp, NB_PREC_BF16) == NB_OK && nb_tape_precision(tp) == NB_PREC_BF16,
           "the tape takes bf16 on this CPU");
        nb_tape_free(tp);
    }
    /* a CPU without bf16, as oneDNN's ISA cap makes it: the request is refused, not ignored */
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", 1);
        execl("/proc/self/exe", argv[0], "capped", (char *)NULL);
        _exit(127);
    }
    int status = 1;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "without bf16 arithmetic, bf16 precision is refused with a message");
    return tap_done();
}
