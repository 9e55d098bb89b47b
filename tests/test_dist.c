/* tests/test_dist.c — data-parallel training (nabla/dist.h).
 *
 *   test_dist          one rank: a NULL nb_dist, argument checks, nabla without MPI
 *   test_dist --mpi    under `mpirun -np 2`: the collectives, a communicator of the caller's, and
 *                      the trainer: 20 steps on 2 ranks against one process, unequal shards with
 *                      every kind of noise, resume, a failure on one rank, a failed save
 *
 * Under mpirun both ranks run every check; rank 0 prints the TAP lines, and a check that one
 * rank decides alone is first agreed between the ranks (all_ranks). Each rank trains its own
 * single-process reference at the same time as the other, so that no rank waits idle.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if NB_TEST_MPI
#include <mpi.h>
#endif

#include "nabla/nabla.h"
#include "tensor/error.h"
#include "tests/tap.h"

/* ---- one rank ------------------------------------------------------------------------------ */

static void test_single(void)
{
    int64_t first = -1, n = -1;
    ok(nb_dist_rank(NULL) == 0 && nb_dist_size(NULL) == 1 && nb_dist_local_size(NULL) == 1 &&
       !nb_dist_shard(NULL, 10, &first, &n) && first == 0 && n == 10 && nb_dist_threads(NULL) >= 1,
       "a NULL nb_dist is rank 0 of 1, holding the whole batch; %d threads", nb_dist_threads(NULL));
    ok(nb_dist_shard(NULL, -1, &first, &n) == NB_ERR_ARG && nb_dist_shard(NULL, 1, NULL, &n) == NB_ERR_ARG,
       "nb_dist_shard refuses a negative batch and NULL outputs: %s", nb_last_error());

    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(3));
    for (int i = 0; i < 3; i++) nb_set(w->grad, i, i + 1);
    int good = !nb_dist_allreduce_grads(NULL, ps, 1) && nb_get(w->grad, 2) == 3;
    good &= !nb_dist_allreduce_grads(NULL, ps, 0.5) && nb_get(w->grad, 0) == 0.5 && nb_get(w->grad, 2) == 1.5;
    ok(good, "one rank's all-reduce multiplies by its weight (1 leaves the block untouched)");
    ok(nb_dist_allreduce_grads(NULL, NULL, 1) == NB_ERR_ARG && nb_dist_allreduce_grads(NULL, ps, NAN) == NB_ERR_ARG,
       "the all-reduce refuses a NULL store and a non-finite weight: %s", nb_last_error());
    ok(!nb_dist_broadcast_params(NULL, ps, 0) && nb_dist_broadcast_params(NULL, ps, 1) == NB_ERR_ARG,
       "the broadcast refuses a root that is not a rank: %s", nb_last_error());
    nb_params_free(ps);

    double v[2] = {1, 2};
    ok(!nb_dist_sum(NULL, v, 2) && v[1] == 2 && nb_dist_sum(NULL, NULL, 2) == NB_ERR_ARG,
       "one rank's sum is the values; NULL values are refused");
    ok(nb_dist_agree(NULL, NB_ERR_IO) == NB_ERR_IO && nb_dist_agree(NULL, NB_OK) == NB_OK,
       "one rank agrees with itself");
    ok(!nb_dist_same(NULL, v, sizeof v, "v") && nb_dist_same(NULL, NULL, 4, "v") == NB_ERR_ARG,
       "one rank holds the same bytes as itself");
    int64_t calls = -1;
    ok(nb_dist_allreduce_seconds(NULL, &calls) == 0 && calls == 0, "no all-reduce time on one rank");

    nb_dist *d = (nb_dist *)&calls; /* must be overwritten */
    if (!nb_dist_has_mpi()) {
        ok(nb_dist_init(&d, NULL) == NB_ERR_STATE && !d && strstr(nb_last_error(), "without MPI"),
           "built without MPI, nb_dist_init says so: %s", nb_last_error());
        setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
        ok(nb_dist_init_env(&d) == NB_ERR_STATE && strstr(nb_last_error(), "-Dmpi=enabled"),
           "built without MPI, one of 2 processes of mpirun refuses to train alone: %s", nb_last_error());
        unsetenv("OMPI_COMM_WORLD_SIZE");
    } else {
        ok(nb_dist_init(&d, NULL) == NB_ERR_STATE && !d && strstr(nb_last_error(), "not initialised"),
           "nb_dist_init before MPI_Init says so: %s", nb_last_error());
    }
    ok(!nb_dist_init_env(&d) && !d, "started alone, nb_dist_init_env gives one rank without MPI");
    nb_dist_free(NULL);
}

/* A shard of a batch draws exactly its examples' noise: every corruption (the block's places
 * are drawn per example, the others per pixel), dynamic binarisation, ε. */
static void test_noise_shards(void)
{
    enum { N = 6, C = 1, H = 4, W = 5, D = C * H * W };
    nb_tape *tp = nb_tape_new();
    nb_rng base = nb_rng_seed(11);
    nb_tensor *x = nb_uniform(tp, &base, NB_F32, NB_SHAPE(N, D), 0, 1);
    const char *specs[] = {"gaussian:0.3", "dropout:0.5", "blur:1", "block:2", "saltpepper:0.2",
                           "gaussian:0.1,block:3,dropout:0.2"};
    const int64_t cut[] = {0, 4, 4, 5, 6}; /* shards of 4, 0, 1 and 1 examples */
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        nb_corruption c;
        nb_corruption_parse(&c, specs[k]);
        nb_rng whole = nb_rng_fork(&base, k), start = whole;
        nb_tensor *all = nb_corrupt(tp, &c, x, C, H, W, &whole);
        int same = all != NULL;
        for (int s = 0; same && s + 1 < 5; s++) {
            nb_rng r = start;
            nb_rng_shard(&r, cut[s], N);
            nb_tensor *rows = nb_contiguous(tp, nb_slice(tp, x, 0, cut[s], cut[s + 1], 1));
            nb_tensor *part = cut[s + 1] > cut[s] ? nb_corrupt(tp, &c, rows, C, H, W, &r) : NULL;
            for (int64_t i = 0; part && i < nb_numel(part); i++) same &= nb_get(part, i) == nb_get(all, cut[s] * D + i);
            same &= (part != NULL) == (cut[s + 1] > cut[s]) && (!part || r.counter == whole.counter);
        }
        ok(same, "corruption %s: shards of 4, 1 and 1 examples get their rows of the batch's, and "
           "advance as it does", specs[k]);
    }
    uint8_t px[3 * D];
    for (int i = 0; i < 3 * D; i++) px[i] = (uint8_t)(i * 37);
    const nb_dataset ds = {.n = 3, .channels = C, .rows = H, .cols = W, .images = px};
    const int64_t idx[N] = {2, 0, 1, 1, 0, 2};
    nb_tensor *xb = nb_empty(tp, NB_F64, NB_SHAPE(N, D)), *xp = nb_empty(tp, NB_F64, NB_SHAPE(2, D));
    nb_rng whole = nb_rng_seed(5), r = whole;
    nb_dataset_images(&ds, idx, N, xb, NB_BIN_DYNAMIC, &whole);
    nb_rng_shard(&r, 3, N);
    nb_dataset_images(&ds, idx + 3, 2, xp, NB_BIN_DYNAMIC, &r);
    ok(!memcmp(xp->data, (double *)xb->data + 3 * D, 2 * D * sizeof(double)),
       "dynamic binarisation: examples 3 and 4 of a batch drawn alone get the batch's pixels");
    whole = nb_rng_seed(6), r = whole;
    nb_tensor *eps = nb_randn(tp, &whole, NB_F32, NB_SHAPE(N, 3));
    nb_rng_shard(&r, 5, N);
    nb_tensor *e5 = nb_randn(tp, &r, NB_F32, NB_SHAPE(1, 3));
    ok(eps && e5 && !memcmp(e5->data, (float *)eps->data + 15, 12) && r.counter == whole.counter,
       "the reparameterisation's ε of example 5, drawn alone, is the batch's");
    nb_tape_free(tp);
}

#if NB_TEST_MPI
static const char *data_dir = "/usr/share/datasets/fashion-mnist";
static char tmp[256];

/* cond on every rank */
static int all_ranks(nb_dist *d, int cond)
{
    double v = cond != 0;
    nb_dist_sum(d, &v, 1);
    return v == nb_dist_size(d);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- training on the ranks ----------------------------------------------------------------- */

static nb_train_cfg small(const char *out, int64_t train, int64_t batch, int epochs)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.data, sizeof c.data, "%s", data_dir);
    snprintf(c.out, sizeof c.out, "%s/%s", tmp, out);
    c.train_size = train, c.test_size = 300, c.batch = batch, c.epochs = epochs, c.progress = 0, c.threads = 1;
    return c;
}

static nb_status train(nb_train_cfg c, const char *resume, nb_dist *d)
{
    nb_trainer *t = nb_trainer_new_dist(&c, resume, d);
    if (!t) return NB_ERR_ARG;
    nb_status st = nb_trainer_run(t, NULL);
    nb_trainer_free(t);
    return st;
}

/* ‖a - b‖ / ‖a‖ over the parameters (optimizer state too when optim) of two checkpoints; -1
 * when they cannot be compared. */
static double rel_diff(const char *a, const char *b, int optim)
{
    nb_safetensors *fa = NULL, *fb = NULL;
    if (nb_st_open(&fa, a) || nb_st_open(&fb, b)) {
        nb_st_close(fa);
        return -1;
    }
    double num = 0, den = 0;
    int comparable = nb_st_count(fa) == nb_st_count(fb);
    for (int i = 0; comparable && i < nb_st_count(fa); i++) {
        const char *name = nb_st_name(fa, i);
        if (!optim && !strncmp(name, "optim.", 6)) continue;
        nb_tensor x, y;
        comparable = !nb_st_get(fa, name, &x) && !nb_st_get(fb, name, &y) && nb_same_shape(&x, &y);
        for (int64_t j = 0; comparable && j < nb_numel(&x); j++) {
            const double u = nb_get(&x, j), v = nb_get(&y, j);
            num += (u - v) * (u - v), den += u * u;
        }
    }
    nb_st_close(fa);
    nb_st_close(fb);
    return comparable ? sqrt(num / (den > 0 ? den : 1)) : -1;
}

static const char *ckpt(const nb_train_cfg *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/checkpoint.safetensors", c->out);
    return buf;
}

/* N ranks at global batch B against one process at batch B, each rank training the reference
 * alone at the same time (into its own directory). */
static void same_trajectory(nb_dist *d, const char *what, nb_train_cfg c, double tol)
{
    char ref[64], a[600], b[600];
    snprintf(ref, sizeof ref, "ref%d", nb_dist_rank(d));
    nb_train_cfg alone = c;
    snprintf(alone.out, sizeof alone.out, "%s/%s", tmp, ref);
    const int ran = all_ranks(d, train(alone, NULL, NULL) == NB_OK);
    const int ran_d = ran && train(c, NULL, d) == NB_OK; /* agreed by the trainer */
    const double r = ran_d && !nb_dist_rank(d) ? rel_diff(ckpt(&alone, a, sizeof a), ckpt(&c, b, sizeof b), 0) : -1;
    ok(ran_d && r >= 0 && r <= tol, "%s on %d ranks follows one process: parameters within %.2g relative (%s)",
       what, nb_dist_size(d), r, ran_d ? "compared" : nb_last_error());
}

static void test_trajectory(nb_dist *d)
{
    /* the MLP VAE, 20 steps at global batch 128: shards of 64 */
    same_trajectory(d, "the MLP VAE, 20 steps at batch 128,", small("vae", 2560, 128, 1), 1e-5);
    /* unequal shards (51 and 50, then 46 and 45) and every kind of noise: dynamic binarisation, all
     * five corruptions (the block's places drawn per example), the reparameterisation */
    nb_train_cfg c = small("noise", 1000, 101, 1);
    const char *kv[] = {"model", "vae", "binarize", "dynamic", "corrupt", "gaussian:0.2,dropout:0.3,blur:1,block:8,saltpepper:0.05"};
    for (int i = 0; i < 6; i += 2) nb_train_set(&c, kv[i], kv[i + 1]);
    same_trajectory(d, "a VAE with dynamic binarisation and five corruptions, batches of 101 and 91,", c, 1e-5);
    nb_train_cfg cv = small("cvae", 640, 64, 1);
    nb_train_set(&cv, "model", "cvae");
    nb_train_set(&cv, "arch", "conv");
    /* looser: a ReLU input near 0 can fall on either side in the two runs' rounding, and the
     * conv nets amplify that (the same build: 3.6e-8 after 10 steps, 1.9e-5 after 9). Gradients
     * summed without the ranks' weights, which Adam nearly forgives, still give 3.4e-4. */
    same_trajectory(d, "the conv CVAE, 10 steps at batch 64,", cv, 1e-4);
}

static void test_resume(nb_dist *d)
{
    nb_train_cfg full = small("full", 1280, 128, 2), part = small("part", 1280, 128, 1);
    char a[600], b[600], keep[600];
    snprintf(keep, sizeof keep, "%s/after1.safetensors", part.out);
    int ran = !train(full, NULL, d) && !train(part, NULL, d);
    if (ran && !nb_dist_rank(d)) ran = !rename(ckpt(&part, b, sizeof b), keep);
    ran = all_ranks(d, ran);
    part.epochs = 2;
    ran = ran && !train(part, keep, d);
    const double r = ran && !nb_dist_rank(d) ? rel_diff(ckpt(&full, a, sizeof a), ckpt(&part, b, sizeof b), 1) : -1;
    ok(ran && r == 0, "a run resumed on %d ranks after epoch 1 ends bit-identical to the uninterrupted one "
       "(parameters and optimizer state; %s)", nb_dist_size(d), ran ? "compared" : nb_last_error());

    /* each rank alone, on the checkpoint of 2 ranks */
    nb_train_cfg alone = small("alone", 1280, 128, 2);
    snprintf(alone.out + strlen(alone.out), sizeof alone.out - strlen(alone.out), "%d", nb_dist_rank(d));
    nb_trainer *t = nb_trainer_new_dist(&alone, keep, NULL);
    const char *msg = nb_last_error();
    ok(all_ranks(d, !t && strstr(msg, "written by a run on 2 ranks, resumed on 1") && strstr(msg, "resume on 2")),
       "resuming on another number of ranks is refused, saying why: %s", msg);
    nb_trainer_free(t);
}

static void test_failures(nb_dist *d)
{
    /* rank 1 reads a truncated file: every rank stops with its message, at once */
    char bad[400], cmd[4096];
    snprintf(bad, sizeof bad, "%s/bad%d", tmp, nb_dist_rank(d));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp %s/t10k-* '%s'/ && head -c 100000 %s/train-images-idx3-ubyte.gz > "
             "'%s'/train-images-idx3-ubyte.gz && cp %s/train-labels* '%s'/", bad, data_dir, bad, data_dir, bad, data_dir, bad);
    const int made = system(cmd) == 0;
    nb_train_cfg c = small("fail", 1280, 128, 1);
    if (nb_dist_rank(d) == 1) snprintf(c.data, sizeof c.data, "%s", bad);
    const double t0 = now();
    nb_trainer *t = nb_trainer_new_dist(&c, NULL, d);
    const double dt = now() - t0;
    const char *msg = nb_last_error();
    ok(all_ranks(d, made && !t && strstr(msg, "rank 1: ") && strstr(msg, "truncated") && dt < 10),
       "a corrupt file on rank 1 stops every rank in %.2f s with its message: %s", dt, msg);
    nb_trainer_free(t);

    /* rank 0 cannot write the checkpoint (a directory has its name): every rank stops after epoch 1 */
    nb_train_cfg s = small("save", 1280, 128, 2);
    char path[600];
    if (!nb_dist_rank(d)) mkdir(s.out, 0755), mkdir(ckpt(&s, path, sizeof path), 0755);
    const nb_status st = train(s, NULL, d);
    msg = nb_last_error();
    ok(all_ranks(d, st == NB_ERR_IO && strstr(msg, "rank 0: ") && strstr(msg, "checkpoint.safetensors")),
       "a failed save on rank 0 stops every rank: %s", msg);

    /* the ranks must be given one run */
    nb_train_cfg o = small("other", 1280, 128, 1);
    if (nb_dist_rank(d) == 1) o.seed = 7;
    t = nb_trainer_new_dist(&o, NULL, d);
    msg = nb_last_error();
    ok(all_ranks(d, !t && strstr(msg, "configuration") && strstr(msg, "rank 1")),
       "ranks given different configurations refuse to start: %s", msg);
    nb_trainer_free(t);
    nb_train_cfg fb = small("fb", 1280, 128, 1);
    fb.free_bits = 0.1;
    t = nb_trainer_new_dist(&fb, NULL, d);
    msg = nb_last_error();
    ok(all_ranks(d, !t && strstr(msg, "--free-bits")), "--free-bits is refused on several ranks: %s", msg);
    nb_trainer_free(t);
}

static void test_collectives(nb_dist *d)
{
    const int r = nb_dist_rank(d);
    int64_t first[2], n[2];
    nb_dist_shard(d, 5, &first[0], &n[0]);
    nb_dist_shard(d, 1, &first[1], &n[1]);
    ok(all_ranks(d, first[0] == (r ? 3 : 0) && n[0] == (r ? 2 : 3) && n[1] == !r && nb_dist_local_size(d) == 2),
       "2 ranks on one node: 5 examples are shared 3 and 2, one example goes to rank 0");
    ok(all_ranks(d, nb_dist_threads(d) >= 1), "rank %d: %d threads of its own", r, nb_dist_threads(d));

    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(1000)), *b = nb_param(ps, "b", NB_SHAPE(3));
    for (int i = 0; i < 1000; i++) nb_set(w->grad, i, (r + 1) * i), nb_set(w, i, r);
    nb_set(b->grad, 0, r ? 4 : 2);
    nb_dist_allreduce_grads(d, ps, r ? 0.75 : 0.25); /* 0.25·1 + 0.75·2 = 1.75 */
    ok(all_ranks(d, nb_get(w->grad, 999) == 1.75 * 999 && nb_get(b->grad, 0) == 0.5 + 3),
       "the all-reduce sums the weighted gradients of the ranks");
    nb_dist_broadcast_params(d, ps, 1);
    ok(all_ranks(d, nb_get(w, 0) == 1 && nb_get(w, 999) == 1), "rank 1's parameters broadcast to every rank");
    nb_params_free(ps);

    double v[3] = {r, 1, 2 * r};
    nb_dist_sum(d, v, 3);
    ok(all_ranks(d, v[0] == 1 && v[1] == 2 && v[2] == 2), "nb_dist_sum adds up the ranks' values");
    if (r == 1) nb_error(NB_ERR_FORMAT, "bad data on rank one");
    const nb_status st = nb_dist_agree(d, r == 1 ? NB_ERR_FORMAT : NB_OK);
    const char *msg = nb_last_error();
    ok(all_ranks(d, st == NB_ERR_FORMAT && !strcmp(msg, "rank 1: bad data on rank one")),
       "a failure on rank 1 reaches every rank, with its status and message: %s", msg);
    ok(all_ranks(d, nb_dist_agree(d, NB_OK) == NB_OK), "ranks that all succeed agree on it");
    const nb_status again = nb_dist_agree(d, st);
    ok(all_ranks(d, again == NB_ERR_FORMAT && !strcmp(nb_last_error(), "rank 1: bad data on rank one")),
       "an outcome agreed before keeps its rank: %s", nb_last_error());
    const int same[2] = {5, r}, diff = nb_dist_same(d, same, sizeof same, "the pair");
    ok(all_ranks(d, !nb_dist_same(d, same, sizeof same[0], "five") && diff == NB_ERR_STATE &&
                    strstr(nb_last_error(), "the pair differs between ranks: rank 1's")),
       "nb_dist_same finds the rank that differs: %s", nb_last_error());

    /* a communicator of the caller's: each rank alone in its own */
    MPI_Comm self;
    MPI_Comm_split(MPI_COMM_WORLD, r, 0, &self);
    nb_dist *one = NULL;
    const nb_status s1 = nb_dist_init(&one, &self);
    ok(all_ranks(d, !s1 && nb_dist_size(one) == 1 && nb_dist_rank(one) == 0 && nb_dist_local_size(one) == 1),
       "nb_dist_init takes the caller's communicator (here one rank each)");
    nb_dist_free(one);
    MPI_Comm_free(&self);
}
#endif

int main(int argc, char **argv)
{
    const int mpi = argc > 1 && !strcmp(argv[1], "--mpi");
    if (!mpi) {
        test_single();
        test_noise_shards();
        return tap_done();
    }
#if NB_TEST_MPI
    nb_dist *d = NULL;
    if (nb_dist_init_env(&d) || nb_dist_size(d) != 2) {
        ok(0, "run under mpirun -np 2: %s (%d ranks)", nb_last_error(), nb_dist_size(d));
        return tap_done();
    }
    if (nb_dist_rank(d)) freopen("/dev/null", "w", stdout); /* rank 0 prints the TAP lines */
    test_collectives(d);
    if (access(data_dir, R_OK)) {
        ok(1, "# SKIP %s not installed (scripts/setup.sh installs it)", data_dir);
    } else {
        /* one directory for both ranks: mpirun is the parent of both */
        snprintf(tmp, sizeof tmp, "/tmp/nb_dist_%ld", (long)getppid());
        if (!nb_dist_rank(d)) mkdir(tmp, 0755);
        nb_dist_agree(d, NB_OK);
        test_trajectory(d);
        test_resume(d);
        test_failures(d);
        nb_dist_agree(d, NB_OK);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (!nb_dist_rank(d) && system(cmd)) tap_diag("could not remove %s", tmp);
    }
    const int rc = tap_done(), rank = nb_dist_rank(d);
    nb_dist_free(d);
    return rank ? 0 : rc;
#else
    ok(0, "--mpi: this test was built without MPI");
    return tap_done();
#endif
}
