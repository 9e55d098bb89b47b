/* nn/init.c — initialisers with PyTorch's definitions (torch.nn.init). */
#include <math.h>

#include "nabla/nn.h"

void nb_fan(const nb_tensor *w, int64_t *fan_in, int64_t *fan_out)
{
    if (w->ndim < 2) { /* PyTorch refuses; a vector is its own fan */
        *fan_in = *fan_out = w->ndim ? w->shape[0] : 1;
        return;
    }
    int64_t receptive = 1;
    for (int d = 2; d < w->ndim; d++) receptive *= w->shape[d];
    *fan_in = w->shape[1] * receptive;
    *fan_out = w->shape[0] * receptive;
}

void nb_init_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi) { nb_rng_uniform(rng, t, lo, hi); }
void nb_init_normal(nb_tensor *t, nb_rng *rng, double mean, double std) { nb_rng_normal(rng, t, mean, std); }

void nb_init_constant(nb_tensor *t, double v)
{
    for (int64_t i = 0, n = nb_numel(t); i < n; i++) nb_set(t, i, v);
}

static double kaiming_std(const nb_tensor *w, double a)
{
    int64_t fan_in, fan_out;
    nb_fan(w, &fan_in, &fan_out);
    return sqrt(2.0 / (1.0 + a * a)) / sqrt((double)fan_in);
}

void nb_init_kaiming_uniform(nb_tensor *w, nb_rng *rng, double a)
{
    const double bound = sqrt(3.0) * kaiming_std(w, a);
    nb_rng_uniform(rng, w, -bound, bound);
}

void nb_init_kaiming_normal(nb_tensor *w, nb_rng *rng, double a)
{
    nb_rng_normal(rng, w, 0.0, kaiming_std(w, a));
}

static double xavier_std(const nb_tensor *w, double gain)
{
    int64_t fan_in, fan_out;
    nb_fan(w, &fan_in, &fan_out);
    return gain * sqrt(2.0 / (double)(fan_in + fan_out));
}

void nb_init_xavier_uniform(nb_tensor *w, nb_rng *rng, double gain)
{
    const double bound = sqrt(3.0) * xavier_std(w, gain);
    nb_rng_uniform(rng, w, -bound, bound);
}

void nb_init_xavier_normal(nb_tensor *w, nb_rng *rng, double gain)
{
    nb_rng_normal(rng, w, 0.0, xavier_std(w, gain));
}
