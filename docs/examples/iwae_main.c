/* docs/examples/iwae_main.c — the IWAE example as a program: its gradient check and a short run.
 *
 *     iwae --check                  the f64 gradient check of the IWAE-3 loss
 *     iwae --train [--data DIR] [--k K] [--images N] [--epochs E]
 *
 * Built against an installed nabla with nothing but pkg-config:
 *     cc -std=c17 iwae.c iwae_main.c example.c $(pkg-config --cflags --libs nabla) -o iwae
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"
#include "iwae.h"

typedef struct iwae_ctx {
    nb_model m;
    int k;
} iwae_ctx;

/* the gradient check's computation: the noise is an input, a constant */
static nb_tensor *build(nb_tape *tp, nb_tensor **in, void *ctx)
{
    const iwae_ctx *c = ctx;
    return iwae_loss(tp, &c->m, in[0], c->k, in[1], NULL);
}

static nb_tensor *train_loss(nb_tape *tp, nb_tensor *x, nb_rng *rng, void *ctx)
{
    const iwae_ctx *c = ctx;
    return iwae_loss(tp, &c->m, x, c->k, NULL, rng);
}

static int check(void)
{
    iwae_ctx c = {.k = 3};
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(2);
    nb_model_cfg cfg = example_vae(2, 3, 4, 3);
    if (nb_model_init(&c.m, &cfg, ps, &r)) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    nb_gradcheck_case g = {.label = "IWAE-3 loss", .build = build, .ctx = &c, .nin = 2,
                           .in = {NB_GC_IN(NB_GC_UNIT, 2, 6), NB_GC_IN(NB_GC_CONST, 3, 2, 3)},
                           .params = ps, .seed = 77};
    const int rc = example_gradcheck(&g);
    nb_params_free(ps);
    return rc;
}

static int train(const char *dir, int k, int64_t n, int epochs)
{
    iwae_ctx c = {.k = k};
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model_cfg cfg = example_vae(28, 28, 64, 8);
    if (nb_model_init(&c.m, &cfg, ps, &r)) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    printf("IWAE-%d, MLP 784-64-8, %lld images, %d epochs\n", k, (long long)n, epochs);
    const int rc = example_train(dir, n, epochs, 64, 1e-3, &c.m, train_loss, &c);
    nb_params_free(ps);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int mode = 0, k = 5, epochs = 3;
    int64_t n = 512;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "--check")) mode |= 1;
        else if (!strcmp(argv[i], "--train")) mode |= 2;
        else if (!strcmp(argv[i], "--data") && more) dir = argv[++i];
        else if (!strcmp(argv[i], "--k") && more) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && more) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && more) epochs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s --check | --train [--data DIR] [--k K] [--images N] [--epochs E]\n", argv[0]);
            return 2;
        }
    }
    if (!mode || k < 1 || n < 1 || epochs < 2) {
        fprintf(stderr, "%s: give --check or --train, with k, images >= 1 and epochs >= 2\n", argv[0]);
        return 2;
    }
    int rc = 0;
    if (mode & 1) rc |= check();
    if (mode & 2) rc |= train(dir, k, n, epochs);
    return rc;
}
