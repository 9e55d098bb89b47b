/* bench/bench_dist.c — data-parallel steps on MPI (nabla/dist.h): steps per second of a global
 * batch shared over the ranks, and the time of the gradient all-reduce within them. Rank 0
 * prints one JSON object; run it alone or under mpirun (bench/dist.py runs both).
 *
 *   mpirun -np 2 build/bench/bench_dist --arch mlp|conv --batch 128 --steps 200 --threads 1
 *   mpirun -np 2 build/bench/bench_dist --sweep     the all-reduce alone, 8 B to 16 MB
 *
 * A step is what nb_trainer_run does: each rank's shard (nb_dist_shard), forward, backward,
 * nb_dist_allreduce_grads, nb_optim_step; the first steps are a warm-up.
 */
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

/* The all-reduce of n doubles, for sizes from 8 bytes to 16 MB: median-free, the best of reps. */
static int sweep(nb_dist *d)
{
    double *v = calloc(1 << 21, sizeof *v);
    if (!v) return 1;
    for (int64_t n = 1; n <= (1 << 21); n *= 8) {
        const int reps = n < 4096 ? 200 : n < (1 << 18) ? 40 : 10;
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            nb_dist_agree(d, NB_OK); /* start together */
            const double t0 = now();
            nb_dist_sum(d, v, n);
            const double dt = now() - t0;
            best = dt < best ? dt : best;
        }
        if (nb_dist_rank(d) == 0)
            printf("{\"sweep\": true, \"ranks\": %d, \"bytes\": %lld, \"us\": %.2f}\n", nb_dist_size(d),
                   (long long)(8 * n), 1e6 * best);
    }
    free(v);
    return 0;
}

int main(int argc, char **argv)
{
    nb_train_cfg cfg = nb_train_defaults();
    const char *arch = "mlp";
    int steps = 200, warmup = 10, do_sweep = 0;
    cfg.threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) cfg.batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) cfg.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) snprintf(cfg.data, sizeof cfg.data, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--sweep")) do_sweep = 1;
        else {
            fprintf(stderr, "bench_dist: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    nb_dist *d;
    if (nb_dist_init_env(&d)) {
        fprintf(stderr, "bench_dist: %s\n", nb_last_error());
        return 1;
    }
    if (do_sweep) {
        const int rc = sweep(d);
        nb_dist_free(d);
        return rc;
    }
    nb_set_threads(cfg.threads);
    if (nb_train_set(&cfg, "arch", arch)) {
        fprintf(stderr, "bench_dist: %s\n", nb_last_error());
        return 2;
    }
    nb_dataset train;
    if (nb_dataset_load(&train, cfg.data, "train")) {
        fprintf(stderr, "bench_dist: %s\n", nb_last_error());
        return 1;
    }
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng init = nb_rng_seed(1);
    nb_model m;
    nb_optim *opt = NULL;
    nb_tape *tp = nb_tape_new();
    if (!ps || nb_model_init(&m, &cfg.model, ps, &init) || !(opt = nb_optim_new(ps, cfg.optim)) || !tp) {
        fprintf(stderr, "bench_dist: %s\n", nb_last_error());
        return 1;
    }
    nb_batcher bt;
    nb_batcher_init(&bt, &train, cfg.batch, 1, 1);
    double t0 = 0, reduce0 = 0;
    nb_status st = NB_OK;
    for (int s = 0; s < warmup + steps && !st; s++) {
        if (s == warmup) {
            nb_dist_agree(d, NB_OK);
            t0 = now(), reduce0 = nb_dist_allreduce_seconds(d, NULL);
        }
        const int64_t *idx;
        int64_t b = nb_batcher_next(&bt, &idx), first, n;
        if (b < cfg.batch) nb_batcher_epoch(&bt, s), b = nb_batcher_next(&bt, &idx);
        nb_dist_shard(d, b, &first, &n);
        nb_tape_reset(tp);
        nb_rng rng = nb_rng_seed((uint64_t)s);
        nb_rng_shard(&rng, first, b);
        nb_tensor *x, *y;
        nb_loss_terms t;
        st = nb_model_batch(tp, &m, &train, idx + first, n, NB_BIN_NONE, &rng, &x, &y);
        nb_batch batch = {x, x, y};
        nb_loss_opts o = {.beta = 1, .rng = &rng};
        if (!st && (nb_model_loss(tp, &m, &batch, &o, &t) || nb_backward(tp, t.loss))) st = nb_tape_status(tp);
        if (!st) st = nb_dist_allreduce_grads(d, ps, (double)n / (double)b);
        if (!st) st = nb_optim_step(opt);
        st = nb_dist_agree(d, st);
    }
    const double dt = now() - t0, reduce = nb_dist_allreduce_seconds(d, NULL) - reduce0;
    int64_t sent; /* the flat gradient block, padding included */
    nb_params_flat(ps, NULL, NULL, &sent);
    if (st) fprintf(stderr, "bench_dist: %s\n", nb_tape_status(tp) ? nb_tape_error(tp) : nb_last_error());
    else if (nb_dist_rank(d) == 0)
        printf("{\"arch\": \"%s\", \"ranks\": %d, \"threads\": %d, \"batch\": %lld, \"steps\": %d, "
               "\"steps_per_s\": %.3f, \"step_ms\": %.4f, \"allreduce_ms\": %.4f, \"grad_bytes\": %lld}\n",
               arch, nb_dist_size(d), nb_get_threads(), (long long)cfg.batch, steps, steps / dt, 1e3 * dt / steps,
               1e3 * reduce / steps, (long long)(sent * 4));
    nb_batcher_free(&bt);
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_params_free(ps);
    nb_dataset_free(&train);
    nb_dist_free(d);
    return st != NB_OK;
}
