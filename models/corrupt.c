/* models/corrupt.c — the denoising autoencoder's corruptions, composable and drawn per batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/models.h"
#include "tensor/error.h"

static const struct {
    const char *name;
    nb_corrupt_kind kind;
    double lo, hi; /* valid parameter range */
} kinds[] = {
    {"gaussian", NB_CORRUPT_GAUSSIAN, 0, 1e3},
    {"dropout", NB_CORRUPT_DROPOUT, 0, 1},
    {"blur", NB_CORRUPT_BLUR, 0, 1e3},
    {"block", NB_CORRUPT_BLOCK, 1, 1e6},
    {"saltpepper", NB_CORRUPT_SALT_PEPPER, 0, 1},
};
enum { NKINDS = sizeof kinds / sizeof kinds[0] };

nb_status nb_corruption_parse(nb_corruption *c, const char *spec)
{
    memset(c, 0, sizeof *c);
    if (!spec || !*spec || !strcmp(spec, "none")) return NB_OK;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':'), *end = NULL;
        if (!colon) return nb_error(NB_ERR_ARG, "corruption '%s': want name:value (e.g. dropout:0.5)", item);
        *colon = 0;
        double v = strtod(colon + 1, &end);
        int k = 0;
        while (k < NKINDS && strcmp(kinds[k].name, item)) k++;
        if (k == NKINDS)
            return nb_error(NB_ERR_ARG, "corruption '%s' unknown (gaussian, dropout, blur, block, saltpepper)", item);
        if (end == colon + 1 || *end || !(v >= kinds[k].lo && v <= kinds[k].hi))
            return nb_error(NB_ERR_ARG, "corruption %s: value '%s' outside [%g, %g]", item, colon + 1,
                            kinds[k].lo, kinds[k].hi);
        if (c->n == NB_MAX_CORRUPT) return nb_error(NB_ERR_ARG, "at most %d corruptions", NB_MAX_CORRUPT);
        c->kind[c->n] = kinds[k].kind;
        c->param[c->n++] = v;
    }
    return NB_OK;
}

void nb_corruption_str(const nb_corruption *c, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < c->n && k < size; i++)
        for (int j = 0; j < NKINDS; j++)
            if (kinds[j].kind == c->kind[i])
                k += (size_t)snprintf(buf + k, size - k, "%s%s:%g", i ? "," : "", kinds[j].name, c->param[i]);
    if (!c->n) snprintf(buf, size, "none");
}

/* Separable Gaussian blur of one h×w plane, edges replicated. */
static void blur_plane(double *p, int h, int w, double sigma, double *tmp)
{
    const int r = (int)ceil(3 * sigma);
    double kern[2 * 3001 + 1], sum = 0;
    const int rr = r > 3000 ? 3000 : r;
    for (int i = -rr; i <= rr; i++) sum += kern[i + rr] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rr; i++) kern[i] /= sum;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double s = 0;
            for (int i = -rr; i <= rr; i++) {
                int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                s += kern[i + rr] * p[y * w + xx];
            }
            tmp[y * w + x] = s;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double s = 0;
            for (int i = -rr; i <= rr; i++) {
                int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                s += kern[i + rr] * tmp[yy * w + x];
            }
            p[y * w + x] = s;
        }
}

nb_tensor *nb_corrupt(nb_tape *tp, const nb_corruption *c, nb_tensor *x, int channels, int height,
                      int width, nb_rng *rng)
{
    if (!x || nb_tape_status(tp)) return NULL;
    const int64_t B = nb_dim(x, 0), D = (int64_t)channels * height * width, n = B * D;
    if (nb_numel(x) != n) {
        nb_tape_fail(tp, NB_ERR_SHAPE, "nb_corrupt: %lld values are not %lld images of %dx%dx%d",
                     (long long)nb_numel(x), (long long)B, channels, height, width);
        return NULL;
    }
    nb_tensor *y = nb_empty(tp, x->dtype, x->ndim, x->shape);
    /* u holds the draws, one row per image: a shard of a batch (nb_rng_shard) draws its rows */
    nb_tensor *v = nb_empty(tp, NB_F64, NB_SHAPE(n)), *u = nb_empty(tp, NB_F64, NB_SHAPE(B, D));
    nb_tensor *tmp = nb_empty(tp, NB_F64, NB_SHAPE((int64_t)height * width));
    if (!y || !v || !u || !tmp) return NULL;
    double *p = v->data, *r = u->data;
    /* work in double: one code path for both dtypes */
    const int flat = nb_is_contiguous(x);
    for (int64_t i = 0; i < n; i++)
        p[i] = !flat ? nb_get(x, i) : x->dtype == NB_F64 ? ((const double *)x->data)[i]
                                                          : ((const float *)x->data)[i];
    for (int k = 0; k < c->n; k++) {
        const double a = c->param[k];
        switch (c->kind[k]) {
        case NB_CORRUPT_GAUSSIAN:
            nb_rng_normal(rng, u, 0, a);
            for (int64_t i = 0; i < n; i++) p[i] = fmin(1, fmax(0, p[i] + r[i]));
            break;
        case NB_CORRUPT_DROPOUT:
            nb_rng_uniform(rng, u, 0, 1);
            for (int64_t i = 0; i < n; i++) if (r[i] < a) p[i] = 0;
            break;
        case NB_CORRUPT_SALT_PEPPER:
            nb_rng_uniform(rng, u, 0, 1);
            for (int64_t i = 0; i < n; i++) /* below a/2: pepper, below a: salt */
                if (r[i] < a) p[i] = r[i] < a / 2 ? 0 : 1;
            break;
        case NB_CORRUPT_BLUR:
            if (a > 0)
                for (int64_t q = 0; q < B * channels; q++)
                    blur_plane(p + q * height * width, height, width, a, tmp->data);
            break;
        case NB_CORRUPT_BLOCK: {
            const int kh = (int)a < height ? (int)a : height, kw = (int)a < width ? (int)a : width;
            /* a shard draws the places of the whole batch, in order, and keeps its own */
            const int64_t lo = rng->rows ? rng->row0 : 0, all = rng->rows > lo + B ? rng->rows : lo + B;
            for (int64_t g = 0; g < all; g++) {
                const int y0 = (int)nb_rng_below(rng, (uint64_t)(height - kh + 1));
                const int x0 = (int)nb_rng_below(rng, (uint64_t)(width - kw + 1));
                const int64_t b = g - lo;
                if (b < 0 || b >= B) continue;
                for (int ch = 0; ch < channels; ch++)
                    for (int yy = y0; yy < y0 + kh; yy++)
                        for (int xx = x0; xx < x0 + kw; xx++)
                            p[b * D + ((int64_t)ch * height + yy) * width + xx] = 0;
            }
            break;
        }
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (y->dtype == NB_F64)
            ((double *)y->data)[i] = p[i];
        else
            ((float *)y->data)[i] = (float)p[i];
    return y;
}
