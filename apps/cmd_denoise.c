/* apps/cmd_denoise.c — `nabla denoise`: clean, corrupted and denoised rows for the corruption the
 * model was trained on (or others: --corruption, --all), with the error before and after; and
 * `--toy`, the 2-D lesson: points on a curve plus noise, what a small DAE makes of them, and the
 * denoising map it learns, drawn as arrows. */
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

/* One standard normal draw (Box-Muller): the toy's noise for its pictures. */
static double normal1(nb_rng *r)
{
    const double u = 1 - nb_rng_uniform1(r), v = nb_rng_uniform1(r);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

int app_denoise_toy(const char *out, uint64_t seed, double sigma, int steps)
{
    enum { B = 256, H = 64, GRID = 17, NPTS = 600, NSHOW = 400 };
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(seed);
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
        } else if ((step + 1) % (steps >= 10 ? steps / 10 : 1) == 0 || step + 1 == steps) {
            printf("  toy DAE: step %d/%d, squared error %.4f per coordinate\n", step + 1, steps, nb_get(loss, 0));
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
    nb_tensor *res = nb_mlp_fwd(tp, &net, g);
    for (int i = 0; res && i < GRID * GRID; i++) x1[i] = nb_get(res, 2 * i), y1[i] = nb_get(res, 2 * i + 1);
    for (int i = 0; i < NPTS; i++) curve((double)(i % (NPTS - 1)) / (NPTS - 1), &px[i], &py[i]);
    /* fresh noisy points, and what the DAE makes of them */
    static double nx[NSHOW], ny[NSHOW], dx[NSHOW], dy[NSHOW];
    nb_tensor *pts = nb_empty(tp, NB_F32, NB_SHAPE(NSHOW, 2));
    for (int i = 0; pts && i < NSHOW; i++) {
        double cx, cy;
        curve(nb_rng_uniform1(&r), &cx, &cy);
        nx[i] = cx + sigma * normal1(&r), ny[i] = cy + sigma * normal1(&r);
        nb_set(pts, 2 * i, nx[i]), nb_set(pts, 2 * i + 1, ny[i]);
    }
    nb_tensor *den = nb_mlp_fwd(tp, &net, pts);
    for (int i = 0; den && i < NSHOW; i++) dx[i] = nb_get(den, 2 * i), dy[i] = nb_get(den, 2 * i + 1);
    char path[600], t1[128];
    snprintf(t1, sizeof t1, "noisy inputs x + N(0, %.2g²)", sigma); /* short: three panels share the width */
    const plot_layer data_l = {.label = "clean data (the curve)", .style = PLOT_LINE, .x = px, .y = py, .n = NPTS, .colour = 0};
    const plot_layer l1[2] = {data_l, {.label = "noisy inputs", .x = nx, .y = ny, .n = NSHOW, .colour = 4, .size = 0.5}};
    const plot_layer l2[2] = {data_l, {.label = "denoised outputs", .x = dx, .y = dy, .n = NSHOW, .colour = 1, .size = 0.5}};
    const plot_layer l3[2] = {data_l, {.label = "input -> output", .style = PLOT_ARROWS, .x = x0, .y = y0, .x1 = x1,
                                      .y1 = y1, .n = GRID * GRID, .colour = 1}};
    const plot_panel panels[3] = {{t1, "x₁", "x₂", 2, l1},
                                  {"the DAE's outputs for them", "x₁", "x₂", 2, l2},
                                  {"its map on a grid", "x₁", "x₂", 2, l3}};
    if (!rc && (!res || !den || app_out_path(out, "denoise_toy.png", path, sizeof path) ||
                plot_layers(path, 3, panels)))
        rc = app_fail("denoise", "toy plot");
    if (!rc) {
        printf("wrote %s\n", path);
        FILE *f = app_open_csv(out, "denoise_toy.csv", "x,y,denoised_x,denoised_y");
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
        APP_RUN_FLAGS,
        {.name = "corruption", .help = "a corruption (as for --corrupt) to apply instead of the model's own",
         .def = "the one the model was trained with", .repeat = 1},
        {.name = "all", .help = "the six corruptions of the lesson, to see how a model does on others", .is_switch = 1},
        {.name = "n", .help = "images per row", .def = "8"},
        {.name = "eval", .help = "test images the errors are averaged over", .def = "1000"},
        {.name = "toy", .help = "also the 2-D toy: points on a curve plus noise", .is_switch = 1},
        {.name = "toy-sigma", .help = "noise of the toy", .def = "0.25"},
        {.name = "toy-steps", .help = "training steps of the toy", .def = "3000"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "denoise", "Rows of clean, corrupted and denoised test images for the corruption "
                       "the model was trained with (a DAE learns to undo that one), and the squared error per image "
                       "before and after (denoise.csv).", flags, nf, &cfg, APP_KEYS("data", "seed"));
    if (rc) return rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long n = app_flag_long(flags, nf, "n", 8, &bad), neval = app_flag_long(flags, nf, "eval", 1000, &bad);
    const double toy_sigma = app_flag_double(flags, nf, "toy-sigma", 0.25, &bad);
    const long toy_steps = app_flag_long(flags, nf, "toy-steps", 3000, &bad);
    if (bad || n < 1 || n > 64 || neval < n || toy_steps < 1 || !(toy_sigma > 0))
        return app_usage("denoise", "--n 1 to 64, --eval at least --n, --toy-steps and --toy-sigma above 0");
    app_run run;
    if ((rc = app_resolve_run("denoise", flags, nf, &run))) return rc;
    app_model am;
    nb_dataset test;
    if (app_load_model(run.checkpoint, &am)) return app_fail("denoise", NULL);
    const app_flag *given = &flags[2];
    const int all = flags[3].count || (!given->count && !am.cfg.corrupt.n);
    const int nc = given->count ? given->count : all ? 6 : 1;
    nb_corruption corr[6];
    for (int k = 0; k < nc; k++)
        if (given->count || all ? nb_corruption_parse(&corr[k], given->count ? given->value[k] : default_corruptions[k])
                                : (corr[k] = am.cfg.corrupt, NB_OK)) {
            app_free_model(&am);
            return app_usage("denoise", "%s", nb_last_error());
        }
    const char *data = app_given(argc, argv, "data") ? cfg.data : am.cfg.data;
    if (nb_dataset_load(&test, data, "t10k")) {
        app_free_model(&am);
        return app_fail("denoise", NULL);
    }
    const long count = neval < test.n ? neval : (long)test.n;
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    for (long i = 0; i < count; i++) idx[i] = i;
    nb_tensor *parts[18];
    const char *labels[18];
    char names[6][128], trained[128], model[96], title[400];
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
        nb_corruption_str(&corr[k], names[k], sizeof names[k]);
        parts[3 * k] = nb_slice(tp, x, 0, 0, n, 1);
        parts[3 * k + 1] = nb_slice(tp, xc, 0, 0, n, 1);
        parts[3 * k + 2] = nb_slice(tp, rec, 0, 0, n, 1);
        labels[3 * k] = "clean", labels[3 * k + 1] = names[k], labels[3 * k + 2] = "denoised";
        prow[3 * k] = prow[3 * k + 1] = prow[3 * k + 2] = 1;
    }
    nb_corruption_str(&am.cfg.corrupt, trained, sizeof trained);
    app_model_name(&am.cfg, model, sizeof model);
    snprintf(title, sizeof title, "%s trained on %s inputs: clean, corrupted and denoised test images",
             model, am.cfg.corrupt.n ? trained : "clean");
    const img_text text = {title, labels, NULL};
    if (!rc)
        rc = app_write_images("denoise", run.out, "denoise.png", &text, 3 * nc, (const nb_tensor *const *)parts, prow,
                              (int)n, m->channels, m->height, m->width);
    FILE *f = rc ? NULL : app_open_csv(run.out, "denoise.csv",
                                       "corruption,images,squared_error_corrupted,squared_error_denoised");
    if (f) {
        printf("%s trained on %s; squared error per image over %ld test images:\n", model,
               am.cfg.corrupt.n ? trained : "clean inputs", count);
        for (int k = 0; k < nc; k++) {
            fprintf(f, "%s,%ld,%.4f,%.4f\n", names[k], count, err_in[k], err_out[k]);
            printf("  %-16s corrupted %8.2f, denoised %8.2f\n", names[k], err_in[k], err_out[k]);
        }
        fclose(f);
    }
    free(idx);
    nb_tape_free(tp);
    nb_dataset_free(&test);
    app_free_model(&am);
    if (!rc && flags[6].count) rc = app_denoise_toy(run.out, cfg.seed, toy_sigma, (int)toy_steps);
    return rc;
}
