/* bench/bench_vae.c — nabla's side of the benchmark against PyTorch (bench/torch_vae.py): the
 * same VAE, data, recipe and batch, timed per epoch and per step (forward, backward, optimizer).
 * Prints one JSON object per epoch, then a summary with the peak resident memory.
 *
 *   build/bench/bench_vae --arch mlp --epochs 10 --threads 2 [--steps N] [--no-eval] [--gemm-floor]
 *
 * --gemm-floor times the MLP step's GEMMs alone, called directly on dnnl_sgemm with the same
 * shapes: the floor a framework could reach for this model.
 */
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nabla/nabla.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The GEMMs of one MLP VAE step (784-400-20, batch B): forward y = x·Wᵀ, backward dX = dY·W and
 * dW = dYᵀ·X for each of the five Linear layers. */
static double gemm_floor(int B, int reps)
{
    const int dims[5][2] = {{784, 400}, {400, 20}, {400, 20}, {20, 400}, {400, 784}}; /* in, out */
    float *a = calloc((size_t)B * 800, sizeof *a), *w = calloc(784 * 400, sizeof *w), *c = calloc((size_t)B * 800, sizeof *c);
    float *g = calloc(784 * 400, sizeof *g);
    for (int i = 0; i < B * 800; i++) a[i] = (float)((i % 13) - 6) * 0.01f;
    for (int i = 0; i < 784 * 400; i++) w[i] = (float)((i % 7) - 3) * 0.01f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int l = 0; l < 5; l++) {
            const int in = dims[l][0], out = dims[l][1];
            dnnl_sgemm('N', 'T', B, out, in, 1, a, in, w, in, 0, c, out);          /* forward */
            if (l != 0) dnnl_sgemm('N', 'N', B, in, out, 1, c, out, w, in, 0, a, in); /* dX (not for the input) */
            dnnl_sgemm('T', 'N', out, in, B, 1, c, out, a, in, 1, g, in);          /* dW */
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(a), free(w), free(c), free(g);
    return best;
}

int main(int argc, char **argv)
{
    nb_train_cfg cfg = nb_train_defaults();
    int epochs = 10, steps_cap = 0, eval = 1, floor_only = 0, precision = 0;
    const char *arch = "mlp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) cfg.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps_cap = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) snprintf(cfg.data, sizeof cfg.data, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--train-size") && i + 1 < argc) cfg.train_size = atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-eval")) eval = 0;
        else if (!strcmp(argv[i], "--gemm-floor")) floor_only = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precision = nb_train_set(&cfg, "precision", argv[++i]) ? -1 : 0;
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) precision |= nb_train_set(&cfg, "hidden", argv[++i]) ? -1 : 0;
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) precision |= nb_train_set(&cfg, "batch", argv[++i]) ? -1 : 0;
        else {
            fprintf(stderr, "bench_vae: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (precision < 0) {
        fprintf(stderr, "bench_vae: %s\n", nb_last_error());
        return 2;
    }
    if (cfg.threads > 0) nb_set_threads(cfg.threads);
    if (floor_only) {
        printf("{\"gemm_floor_ms\": %.4f, \"threads\": %d}\n", 1e3 * gemm_floor((int)cfg.batch, 200), nb_get_threads());
        return 0;
    }
    if (!strcmp(arch, "conv")) nb_train_preset(&cfg, "conv");
    nb_dataset train, test;
    if (nb_dataset_load(&train, cfg.data, "train") || nb_dataset_load(&test, cfg.data, "t10k")) {
        fprintf(stderr, "bench_vae: %s\n", nb_last_error());
        return 1;
    }
    if (cfg.train_size && cfg.train_size < train.n) train.n = cfg.train_size;
    cfg.model.channels = 1, cfg.model.height = train.rows, cfg.model.width = train.cols;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng init = nb_rng_seed(cfg.seed);
    nb_model m;
    if (nb_model_init(&m, &cfg.model, ps, &init)) {
        fprintf(stderr, "bench_vae: %s\n", nb_last_error());
        return 1;
    }
    cfg.optim.clear_grad = 1; /* as nb_trainer does */
    nb_optim *opt = nb_optim_new(ps, cfg.optim);
    nb_tape *tp = nb_tape_new();
    if (nb_tape_set_precision(tp, cfg.precision)) {
        fprintf(stderr, "bench_vae: %s\n", nb_last_error());
        return 1;
    }
    nb_batcher bt;
    nb_batcher_init(&bt, &train, cfg.batch, 1, cfg.seed);
    int64_t step = 0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_batcher_epoch(&bt, epoch);
        /* the profile, like the timings, leaves out the first epoch: it holds each GEMM shape's
         * first call, when dnnl_sgemm generates its kernel (41 ms for the conv VAE's heads) */
        if (epoch == 1) nb_profile_reset();
        double t_fwd = 0, t_bwd = 0, t_opt = 0, total = 0;
        int64_t steps = 0, seen = 0, b;
        const int64_t *idx;
        const double t0 = now();
        while ((b = nb_batcher_next(&bt, &idx)) > 0 && (!steps_cap || steps < steps_cap)) {
            const double a = now();
            nb_tape_reset(tp);
            nb_rng rng = nb_rng_seed(cfg.seed ^ (uint64_t)step * 0x9E3779B97F4A7C15ull);
            int64_t shape[4];
            const int nd = nb_model_input_shape(&m, b, shape);
            nb_tensor *x = nb_empty(tp, NB_F32, nd, shape);
            if (!x || nb_dataset_images(&train, idx, b, x, NB_BIN_NONE, NULL)) {
                fprintf(stderr, "bench_vae: %s\n", nb_last_error());
                return 1;
            }
            nb_batch batch = {x, x, NULL};
            nb_loss_opts o = {.beta = 1, .rng = &rng};
            nb_loss_terms t;
            nb_model_loss(tp, &m, &batch, &o, &t);
            const double bb = now();
            if (nb_backward(tp, t.loss)) {
                fprintf(stderr, "bench_vae: %s\n", nb_tape_error(tp));
                return 1;
            }
            const double c = now();
            if (nb_optim_step(opt)) {
                fprintf(stderr, "bench_vae: %s\n", nb_last_error());
                return 1;
            }
            const double d = now();
            t_fwd += bb - a, t_bwd += c - bb, t_opt += d - c;
            total += nb_get(t.loss, 0) * (double)b;
            seen += b, steps++, step++;
        }
        const double seconds = now() - t0;
        printf("{\"epoch\": %d, \"seconds\": %.4f, \"steps\": %lld, \"train_loss\": %.4f, \"ms_forward\": %.4f, "
               "\"ms_backward\": %.4f, \"ms_optimizer\": %.4f",
               epoch + 1, seconds, (long long)steps, total / (double)seen, 1e3 * t_fwd / (double)steps,
               1e3 * t_bwd / (double)steps, 1e3 * t_opt / (double)steps);
        if (eval) {
            nb_eval e;
            nb_model_evaluate(&m, &test, 500, NB_BIN_NONE, NULL, 1, &e);
            printf(", \"test_loss\": %.4f", e.elbo_loss);
        }
        printf("}\n");
        fflush(stdout);
    }
    if (nb_profile_enabled()) nb_profile_print(stderr);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"summary\": true, \"arch\": \"%s\", \"threads\": %d, \"isa\": \"%s\", \"peak_rss_mb\": %.1f, "
           "\"arena_mb\": %.1f, \"data_mb\": %.1f}\n", arch, nb_get_threads(), "see bench_core",
           (double)ru.ru_maxrss / 1024.0, (double)nb_tape_arena_bytes(tp) / 1048576.0,
           (double)(train.n + test.n) * train.rows * train.cols / 1048576.0);
    nb_batcher_free(&bt);
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_params_free(ps);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
    return 0;
}
