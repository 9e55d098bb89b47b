/* tests/test_dist.c — data-parallel training (nabla/dist.h).
 *
 *   test_dist          one rank: a NULL nb_dist, argument checks, nabla without MPI
 *   test_dist --mpi    under `mpirun -np 2`: the collectives, a communicator of the caller's
 *
 * Under mpirun both ranks run every check; rank 0 prints the TAP lines, and a check that one
 * rank decides alone is first agreed between the ranks (all_ranks).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
/* cond on every rank */
static int all_ranks(nb_dist *d, int cond)
{
    double v = cond != 0;
    nb_dist_sum(d, &v, 1);
    return v == nb_dist_size(d);
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
    const int rc = tap_done(), rank = nb_dist_rank(d);
    nb_dist_free(d);
    return rank ? 0 : rc;
#else
    ok(0, "--mpi: this test was built without MPI");
    return tap_done();
#endif
}
