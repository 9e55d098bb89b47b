/* docs/examples/regression.c — the worked example of nabla.h: linear regression with SGD.
 * Built and run by the tests (it exits non-zero unless it recovers the weights). */
#include <math.h>
#include <stdio.h>

#include <nabla/nabla.h>

int main(void)
{
    /* data: y = x · (1, -2, 0.5) + noise-free */
    float xs[8 * 3], ys[8];
    nb_rng r = nb_rng_seed(1);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 3; j++) xs[i * 3 + j] = (float)(2 * nb_rng_uniform1(&r) - 1);
        ys[i] = xs[i * 3] - 2 * xs[i * 3 + 1] + 0.5f * xs[i * 3 + 2];
    }

    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(3, 1));
    nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_SGD, 0.1));
    nb_tape *tp = nb_tape_new();
    int failed = 0;
    for (int step = 0; step < 500 && !failed; step++) {
        nb_tape_reset(tp);
        nb_tensor *x = nb_tensor_from(tp, NB_F32, NB_SHAPE(8, 3), xs, 8 * 3);
        nb_tensor *y = nb_tensor_from(tp, NB_F32, NB_SHAPE(8, 1), ys, 8);
        nb_tensor *loss = nb_mse(tp, nb_matmul(tp, x, w), y, NB_REDUCE_MEAN);
        if (nb_backward(tp, loss)) {
            fprintf(stderr, "%s\n", nb_tape_error(tp));
            failed = 1;
        } else if (nb_optim_step(opt)) {
            fprintf(stderr, "%s\n", nb_last_error());
            failed = 1;
        }
    }
    const double want[3] = {1, -2, 0.5};
    double err = 0;
    for (int j = 0; j < 3; j++) err = fmax(err, fabs(nb_get(w, j) - want[j]));
    printf("w = (%.4f, %.4f, %.4f), max error %.2e\n", nb_get(w, 0), nb_get(w, 1), nb_get(w, 2), err);
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_params_free(ps);
    return failed || err > 1e-3;
}
