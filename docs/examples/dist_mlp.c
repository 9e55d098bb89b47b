/* docs/examples/dist_mlp.c — a model of your own, trained data-parallel (docs/distributed.md).
 *
 *   ./dist_mlp                    one process
 *   mpirun -np 4 ./dist_mlp       four ranks, the same run: the same weights up to rounding
 *
 * A small MLP learns y = sin(3·x0) + x1·x2 from 512 points, each minibatch's inputs jittered by
 * noise drawn per example. Five lines make it data-parallel (marked "dist"). Rank 0 prints the
 * final loss over all the points; the program exits non-zero unless it fell below 0.05.
 */
#include <math.h>
#include <stdio.h>

#include <nabla/nabla.h>

enum { N = 512, IN = 3, HID = 32, B = 64, STEPS = 300 };

static float xs[N * IN], ys[N];

static nb_tensor *forward(nb_tape *tp, const nb_linear_layer *l1, const nb_linear_layer *l2, nb_tensor *x)
{
    return nb_linear_fwd(tp, l2, nb_tanh(tp, nb_linear_fwd(tp, l1, x)));
}

int main(void)
{
    nb_dist *d;
    if (nb_dist_init_env(&d)) { /* dist: MPI under mpirun, else one rank (d = NULL) */
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    nb_rng r = nb_rng_seed(3); /* every rank builds the same data and the same initial weights */
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < IN; j++) xs[i * IN + j] = (float)(2 * nb_rng_uniform1(&r) - 1);
        ys[i] = sinf(3 * xs[i * IN]) + xs[i * IN + 1] * xs[i * IN + 2];
    }
    nb_params *ps = nb_params_new(NB_F32);
    nb_linear_layer l1, l2;
    nb_linear_init(&l1, ps, "fc1", IN, HID, 1, &r);
    nb_linear_init(&l2, ps, "fc2", HID, 1, 1, &r);
    nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 0.01));
    nb_tape *tp = nb_tape_new();
    nb_status st = opt && tp ? NB_OK : NB_ERR_NOMEM;
    for (int step = 0; step < STEPS && !st; step++) {
        const int64_t b0 = (int64_t)step * B % N; /* the global batch: points b0 .. b0 + B */
        int64_t first, n;
        nb_dist_shard(d, B, &first, &n); /* dist: this rank's examples of it */
        nb_tape_reset(tp);
        nb_rng noise = nb_rng_fork(&r, (uint64_t)step);
        nb_rng_shard(&noise, first, B); /* dist: ... and their noise */
        nb_tensor *x = nb_tensor_from(tp, NB_F32, NB_SHAPE(n, IN), xs + (b0 + first) * IN, n * IN);
        nb_tensor *y = nb_tensor_from(tp, NB_F32, NB_SHAPE(n, 1), ys + b0 + first, n);
        x = nb_add(tp, x, nb_scale(tp, nb_randn(tp, &noise, NB_F32, NB_SHAPE(n, IN)), 0.01));
        st = nb_backward(tp, nb_mse(tp, forward(tp, &l1, &l2, x), y, NB_REDUCE_MEAN));
        if (st) fprintf(stderr, "%s\n", nb_tape_error(tp));
        if (!st) st = nb_dist_allreduce_grads(d, ps, (double)n / B); /* dist: the whole batch's gradient */
        if (!st && (st = nb_optim_step(opt))) fprintf(stderr, "%s\n", nb_last_error());
        st = nb_dist_agree(d, st); /* dist: one rank's failure stops them all */
    }
    double loss = INFINITY;
    if (!st) { /* every rank holds the same weights: rank 0 judges them */
        nb_tape_reset(tp);
        nb_tape_set_grad(tp, 0);
        nb_tensor *x = nb_tensor_from(tp, NB_F32, NB_SHAPE(N, IN), xs, N * IN),
                  *y = nb_tensor_from(tp, NB_F32, NB_SHAPE(N, 1), ys, N);
        nb_tensor *mse = nb_mse(tp, forward(tp, &l1, &l2, x), y, NB_REDUCE_MEAN);
        loss = mse ? nb_get(mse, 0) : INFINITY;
        if (nb_dist_rank(d) == 0) printf("%d rank(s): final loss %.6f\n", nb_dist_size(d), loss);
    }
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_params_free(ps);
    nb_dist_free(d);
    return st || !(loss < 0.05);
}
