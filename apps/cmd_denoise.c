/* apps/cmd_denoise.c — `nabla denoise`: clean, corrupted and denoised rows for each corruption,
 * with the error before and after; and `--toy`, the 2-D lesson: points on a curve plus noise,
 * and the denoising map a small DAE learns, drawn as arrows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "tensor/error.h"
#include "apps/plot.h"

static const char *const default_corruptions[] = {"gaussian:0.5", "dropout:0.5", "dropout:0.9", "blur:4",
                                                  "block:16", "saltpepper:0.2"};

/* Mean squared error per image between two batches. */
static double mse_per_image(const nb_tensor *a, const nb_tensor *b)
{
    double s = 0;
    for (int64_t i = 0, n = nb_numel(a); i < n; i++) s += (nb_get(a, i) - nb_get(b, i)) * (nb_get(a, i) - nb_get(b, i));
    return s / (double)nb_dim(a, 0);
}

/* ---- the 2-D toy --------------------------------------------------------------------------- */

/* A point on a closed, wavy curve: the clean data the toy DAE learns to project onto. */
static void curve(double t, double *x, double *y)
{
    const double r = 1 + 0.3 * sin(6 * M_PI * t);
    *x = r * cos(2 * M_PI * t), *y = r * sin(2 * M_PI * t);
}

static int toy(const nb_train_cfg *cfg, double sigma, int steps)
{
    enum { B = 256, H = 64, GRID = 21, NPTS = 600 };
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(cfg->seed);
    nb_mlp net;
    const int sizes[4] = {2, H, H, 2};
    nb_optim *opt = NULL;
    nb_tape *tp = nb_tape_new();
    int rc = APP_OK;
    if (nb_mlp_init(&net, ps, "toy", 3, sizes, NB_ACT_TANH, 0, &r) ||
        !(opt = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 3e-3)))) {
        rc = app_fail("denoise", "toy model");
        goto out;
    }
    float clean[2 * B];
    for (int step = 0; step < steps && !rc; step++) { /* fresh points and noise every step */
        nb_tape_reset(tp);
        for (int i = 0; i < B; i++) {
            double x, y;
            curve(nb_rng_uniform1(&r), &x, &y);
            clean[2 * i] = (float)x, clean[2 * i + 1] = (float)y;
        }
        nb_tensor *target = nb_tensor_from(tp, NB_F32, NB_SHAPE(B, 2), clean, B * 2);
        nb_tensor *noisy = nb_add(tp, target, nb_scale(tp, nb_randn(tp, &r, NB_F32, NB_SHAPE(B, 2)), sigma));
        nb_tensor *loss = nb_mse(tp, nb_mlp_fwd(tp, &net, noisy), target, NB_REDUCE_MEAN);
        if (nb_backward(tp, loss) || nb_optim_step(opt)) {
            fprintf(stderr, "nabla denoise: toy: %s%s\n", nb_tape_error(tp), nb_last_error());
            rc = APP_FAIL;
        }
    }
    /* the learned map on a grid: an arrow from each point to its denoised image */
    static double x0[GRID * GRID], y0[GRID * GRID], x1[GRID * GRID], y1[GRID * GRID], px[NPTS], py[NPTS];
    nb_tape_reset(tp);
    nb_tape_set_grad(tp, 0);
    nb_tensor *g = nb_empty(tp, NB_F32, NB_SHAPE(GRID * GRID, 2));
    for (int i = 0; i < GRID * GRID; i++) {
        x0[i] = -1.6 + 3.2 * (i % GRID) / (GRID - 1), y0[i] = -1.6 + 3.2 * (i / GRID) / (GRID - 1);
        nb_set(g, 2 * i, x0[i]), nb_set(g, 2 * i + 1, y0[i]);
    }
    nb_tensor *out = nb_mlp_fwd(tp, &net, g);
    for (int i = 0; out && i < GRID * GRID; i++) x1[i] = nb_get(out, 2 * i), y1[i] = nb_get(out, 2 * i + 1);
    for (int i = 0; i < NPTS; i++) curve((double)i / NPTS, &px[i], &py[i]);
    char path[600], title[128];
    snprintf(title, sizeof title, "2-D denoising AE: x + N(0, %.2g^2) -> learned map", sigma);
    if (!rc && (!out || app_out_path(cfg->out, "denoise_toy.png", path, sizeof path) ||
                plot_arrows(path, title, x0, y0, x1, y1, GRID * GRID, px, py, NPTS)))
        rc = app_fail("denoise", "toy plot");
    if (!rc) {
        printf("wrote %s\n", path);
        FILE *f = app_open_csv(cfg->out, "denoise_toy.csv", "x,y,denoised_x,denoised_y");
        if (f) {
            for (int i = 0; i < GRID * GRID; i++) fprintf(f, "%.5f,%.5f,%.5f,%.5f\n", x0[i], y0[i], x1[i], y1[i]);
            fclose(f);
        }
    }
out:
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_params_free(ps);
    return rc;
}

/* ---- images -------------------------------------------------------------------------------- */

int cmd_denoise(int argc, char **argv)
{
    app_flag flags[] = {
        {.name = "checkpoint", .help = "the trained (denoising) model", .def = "<out>/checkpoint.safetensors"},
        {.name = "corruption", .help = "a corruption (as for --corrupt); default: the six of the lesson",
         .repeat = 1},
        {.name = "n", .help = "images per row", .def = "8"},
        {.name = "eval", .help = "test images the errors are averaged over", .def = "1000"},
        {.name = "toy", .help = "also the 2-D toy: points on a curve plus noise", .is_switch = 1},
        {.name = "toy-sigma", .help = "noise of the toy", .def = "0.25"},
        {.name = "toy-steps", .help = "training steps of the toy", .def = "3000"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "denoise", "For each corruption, rows of clean, corrupted and denoised test "
                       "images, and the squared error per image before and after (denoise.csv).", flags, nf, &cfg, 1);
    if (rc) return rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long n = app_flag_long(flags, nf, "n", 8, &bad), neval = app_flag_long(flags, nf, "eval", 1000, &bad);
    const double toy_sigma = app_flag_double(flags, nf, "toy-sigma", 0.25, &bad);
    const long toy_steps = app_flag_long(flags, nf, "toy-steps", 3000, &bad);
    if (bad || n < 1 || n > 64 || neval < n) return app_usage("denoise", "--n 1 to 64, --eval at least --n");
    const int nc = flags[1].count ? flags[1].count : 6;
    nb_corruption corr[6];
    for (int k = 0; k < nc; k++)
        if (nb_corruption_parse(&corr[k], flags[1].count ? flags[1].value[k] : default_corruptions[k]))
            return app_usage("denoise", "%s", nb_last_error());
    char buf[600];
    app_model am;
    nb_dataset test;
    if (app_load_model(app_checkpoint(flags, nf, &cfg, buf, sizeof buf), &am)) return app_fail("denoise", NULL);
    if (nb_dataset_load(&test, cfg.data, "t10k")) {
        app_free_model(&am);
        return app_fail("denoise", NULL);
    }
    const long count = neval < test.n ? neval : (long)test.n;
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    for (long i = 0; i < count; i++) idx[i] = i;
    nb_tensor *parts[18];
    int prow[18];
    double err_in[6], err_out[6];
    const nb_model_cfg *m = &am.cfg.model;
    nb_tensor *x, *y;
    if (app_images(tp, &am, &test, idx, count, &x, &y)) rc = app_fail("denoise", NULL);
    for (int k = 0; k < nc && !rc; k++) {
        nb_rng r = nb_rng_seed(cfg.seed + (uint64_t)k);
        nb_tensor *xc = nb_corrupt(tp, &corr[k], x, m->channels, m->height, m->width, &r), *mu, *lv;
        nb_model_encode(tp, &am.m, xc, y, &mu, &lv);
        nb_tensor *rec = nb_model_mean(tp, &am.m, nb_model_decode(tp, &am.m, mu, y));
        if (!rec) {
            fprintf(stderr, "nabla denoise: %s\n", nb_tape_error(tp));
            rc = APP_FAIL;
            break;
        }
        err_in[k] = mse_per_image(xc, x), err_out[k] = mse_per_image(rec, x);
        parts[3 * k] = nb_slice(tp, x, 0, 0, n, 1);
        parts[3 * k + 1] = nb_slice(tp, xc, 0, 0, n, 1);
        parts[3 * k + 2] = nb_slice(tp, rec, 0, 0, n, 1);
        prow[3 * k] = prow[3 * k + 1] = prow[3 * k + 2] = 1;
    }
    if (!rc)
        rc = app_write_images("denoise", cfg.out, "denoise.png", 3 * nc, (const nb_tensor *const *)parts, prow, (int)n,
                              m->channels, m->height, m->width);
    if (!rc) printf("  (per corruption: clean, corrupted, denoised)\n");
    FILE *f = rc ? NULL : app_open_csv(cfg.out, "denoise.csv",
                                       "corruption,images,squared_error_corrupted,squared_error_denoised");
    if (f) {
        for (int k = 0; k < nc; k++) {
            char name[128];
            nb_corruption_str(&corr[k], name, sizeof name);
            fprintf(f, "%s,%ld,%.4f,%.4f\n", name, count, err_in[k], err_out[k]);
            printf("  %-16s squared error per image: corrupted %8.2f, denoised %8.2f\n", name, err_in[k], err_out[k]);
        }
        fclose(f);
    }
    free(idx);
    nb_tape_free(tp);
    nb_dataset_free(&test);
    app_free_model(&am);
    if (!rc && flags[4].count) rc = toy(&cfg, toy_sigma, (int)toy_steps);
    return rc;
}
