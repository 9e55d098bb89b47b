/* bench/bench_layers.c — single layers, forward and backward, at the VAE's shapes (batch 128):
 * nabla's side of the layer rows in bench/RESULTS.md (bench/torch_layers.py is PyTorch's).
 * Prints one JSON object per layer: median milliseconds over the repetitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nabla/nabla.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct layer_case {
    const char *name;
    int kind; /* 0 linear, 1 conv, 2 transposed conv */
    int in, out, hw, input_grad;
} layer_case;

int main(int argc, char **argv)
{
    int threads = 0, reps = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (threads > 0) nb_set_threads(threads);
    const layer_case cs[] = {
        {"Linear(784,400)", 0, 784, 400, 0, 0},
        {"Linear(400,784)", 0, 400, 784, 0, 1},
        {"Conv2d(1,32,k4,s2,p1) 28x28", 1, 1, 32, 28, 0},
        {"Conv2d(32,64,k4,s2,p1) 14x14", 1, 32, 64, 14, 1},
        {"ConvTranspose2d(64,32,k4,s2,p1) 7x7", 2, 64, 32, 7, 1},
        {"ConvTranspose2d(32,1,k4,s2,p1) 14x14", 2, 32, 1, 14, 1},
    };
    const int B = 128;
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        const layer_case *c = &cs[k];
        nb_params *ps = nb_params_new(NB_F32);
        nb_rng r = nb_rng_seed(1);
        nb_linear_layer lin;
        nb_conv_layer conv;
        if (c->kind == 0) nb_linear_init(&lin, ps, "l", c->in, c->out, 1, &r);
        if (c->kind == 1) nb_conv2d_init(&conv, ps, "c", c->in, c->out, 4, nb_conv(2, 1), 1, &r);
        if (c->kind == 2) nb_conv_transpose2d_init(&conv, ps, "c", c->in, c->out, 4, nb_conv(2, 1), 1, &r);
        nb_tape *tp = nb_tape_new();
        double *tf = malloc((size_t)(reps + 5) * sizeof *tf), *tb = malloc((size_t)(reps + 5) * sizeof *tb);
        for (int rep = 0; rep < reps + 5; rep++) { /* 5 warm-up repetitions build the primitives */
            nb_tape_reset(tp);
            nb_tensor *x = c->kind == 0 ? nb_uniform(tp, &r, NB_F32, NB_SHAPE(B, c->in), 0, 1)
                                        : nb_uniform(tp, &r, NB_F32, NB_SHAPE(B, c->in, c->hw, c->hw), 0, 1);
            if (c->input_grad) nb_requires_grad(x);
            const double t0 = now();
            nb_tensor *y = c->kind == 0 ? nb_linear_fwd(tp, &lin, x) : nb_conv_fwd(tp, &conv, x);
            const double t1 = now();
            nb_tensor *g = y ? nb_full(tp, NB_F32, y->ndim, y->shape, 1.0) : NULL;
            const double t2 = now();
            if (!g || nb_backward_from(tp, y, g)) {
                fprintf(stderr, "bench_layers: %s: %s\n", c->name, nb_tape_error(tp));
                return 1;
            }
            const double t3 = now();
            tf[rep] = t1 - t0, tb[rep] = t3 - t2;
            nb_params_zero_grad(ps);
        }
        qsort(tf + 5, (size_t)reps, sizeof *tf, cmp);
        qsort(tb + 5, (size_t)reps, sizeof *tb, cmp);
        printf("{\"layer\": \"%s\", \"ms_forward\": %.4f, \"ms_backward\": %.4f, \"threads\": %d}\n", c->name,
               1e3 * tf[5 + reps / 2], 1e3 * tb[5 + reps / 2], nb_get_threads());
        free(tf), free(tb);
        nb_tape_free(tp);
        nb_params_free(ps);
    }
    return 0;
}
