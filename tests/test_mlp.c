/* tests/test_mlp.c — end to end: a 2-layer MLP fits a synthetic regression problem with plain
 * SGD written here, through the public API only. The loss must fall at least 10x. */
#include <math.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

enum { N = 256, IN = 4, HID = 32, STEPS = 3000 };

int main(void)
{
    nb_rng rng = nb_rng_seed(2026);
    float x[N * IN], y[N];
    for (int i = 0; i < N; i++) {
        float *xi = x + i * IN;
        for (int j = 0; j < IN; j++) xi[j] = (float)(2 * nb_rng_uniform1(&rng) - 1);
        y[i] = sinf(2 * xi[0]) + xi[1] * xi[2] - 0.5f * xi[3] * xi[3];
    }

    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w1 = nb_param(ps, "w1", NB_SHAPE(IN, HID)), *b1 = nb_param(ps, "b1", NB_SHAPE(HID));
    nb_tensor *w2 = nb_param(ps, "w2", NB_SHAPE(HID, 1)), *b2 = nb_param(ps, "b2", NB_SHAPE(1));
    nb_rng_uniform(&rng, w1, -1 / sqrt(IN), 1 / sqrt(IN));
    nb_rng_uniform(&rng, w2, -1 / sqrt(HID), 1 / sqrt(HID));

    nb_tape *tp = nb_tape_new();
    double first = 0, last = 0;
    int failed = 0;
    for (int step = 0; step < STEPS && !failed; step++) {
        nb_tape_reset(tp);
        nb_tensor *xb = nb_tensor_from(tp, NB_F32, NB_SHAPE(N, IN), x, N * IN);
        nb_tensor *yb = nb_tensor_from(tp, NB_F32, NB_SHAPE(N, 1), y, N);
        nb_tensor *h = nb_tanh(tp, nb_add(tp, nb_matmul(tp, xb, w1), b1));
        nb_tensor *pred = nb_add(tp, nb_matmul(tp, h, w2), b2);
        nb_tensor *loss = nb_mean(tp, nb_square(tp, nb_sub(tp, pred, yb)), 0, NULL, 0);
        nb_params_zero_grad(ps);
        if (nb_backward(tp, loss)) {
            ok(0, "backward failed: %s", nb_tape_error(tp));
            failed = 1;
            break;
        }
        float *p, *g;
        int64_t n;
        nb_params_flat(ps, (void **)&p, (void **)&g, &n);
        for (int64_t i = 0; i < n; i++) p[i] -= 0.1f * g[i];
        if (step == 0) first = nb_get(loss, 0);
        last = nb_get(loss, 0);
    }
    ok(!failed && isfinite(last), "training ran %d steps", STEPS);
    ok(last * 10 <= first, "MSE fell from %.4f to %.4f (%.1fx; needs 10x)", first, last, first / last);
    nb_tape_free(tp);
    nb_params_free(ps);
    return tap_done();
}
