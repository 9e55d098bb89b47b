/* apps/cmd_images.c — the picture commands over a trained run: reconstruct, sample, interpolate,
 * manifold, scatter, evaluate, traverse. Each writes a PNG that names what it shows and the CSV
 * behind it into the run's directory (--out; app.h says how the run is found). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "tensor/error.h"
#include "apps/linalg.h"
#include "apps/plot.h"

/* What every picture command starts with: flags, the run, the model, the test set, a tape. */
typedef struct session {
    const char *cmd;
    nb_train_cfg cfg;
    app_run run;
    app_model am;
    nb_dataset test;
    const char *data; /* --data, else the model's own training data */
    char model[96], dname[96]; /* "VAE d=20", "Fashion-MNIST" */
    nb_tape *tp;
} session;

/* Every picture command reads the data, the seed and nothing else of the configuration keys:
 * the model's own configuration comes from its checkpoint. */
#define PICTURE_KEYS APP_KEYS("data", "seed")

static int open_session(session *s, const char *cmd, int argc, char **argv, const char *summary,
                        app_flag *flags, int nflags, int need_data)
{
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    int rc = app_parse(argc, argv, cmd, summary, flags, nflags, &s->cfg, PICTURE_KEYS);
    if (rc) return rc < 0 ? -1 : rc;
    if ((rc = app_resolve_run(cmd, flags, nflags, &s->run))) return rc;
    if (app_load_model(s->run.checkpoint, &s->am)) return app_fail(cmd, NULL);
    s->data = app_given(argc, argv, "data") ? s->cfg.data : s->am.cfg.data;
    app_model_name(&s->am.cfg, s->model, sizeof s->model);
    app_data_name(s->data, s->dname, sizeof s->dname);
    if (need_data && nb_dataset_load(&s->test, s->data, "t10k")) return app_fail(cmd, NULL);
    if (!(s->tp = nb_tape_new())) return app_fail(cmd, "out of memory");
    nb_tape_set_grad(s->tp, 0);
    return APP_OK;
}

static void close_session(session *s)
{
    nb_tape_free(s->tp);
    nb_dataset_free(&s->test);
    app_free_model(&s->am);
}

static int tape_fail(const char *cmd, const nb_tape *tp)
{
    fprintf(stderr, "nabla %s: %s\n", cmd, nb_tape_error(tp));
    return APP_FAIL;
}

static int write_stack(session *s, const char *name, const img_text *text, int n, const nb_tensor *const *ts,
                       const int *rows, int cols)
{
    const nb_model_cfg *m = &s->am.cfg.model;
    return app_write_images(s->cmd, s->run.out, name, text, n, ts, rows, cols, m->channels, m->height, m->width);
}

/* Row r of a (rows·cols, ...) batch of images, as its own one-row grid. */
static nb_tensor *row_of(nb_tape *tp, nb_tensor *imgs, int64_t r, int64_t cols)
{
    return nb_slice(tp, imgs, 0, r * cols, (r + 1) * cols, 1);
}

/* ---- reconstruct --------------------------------------------------------------------------- */

int cmd_reconstruct(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "n", .help = "images per row", .def = "8"},
        {.name = "rows", .help = "pairs of rows (originals above reconstructions)", .def = "2"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "reconstruct", argc, argv, "Test images above their reconstructions "
                          "(the decoder's mean at the posterior mean), like pytorch/examples.", flags, nf, 1);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long n = app_flag_long(flags, nf, "n", 8, &bad), rows = app_flag_long(flags, nf, "rows", 2, &bad);
    if (bad || n < 1 || n > 64 || rows < 1 || rows > 32 || n * rows > s.test.n) {
        close_session(&s);
        return app_usage("reconstruct", "--n (1 to 64) and --rows (1 to 32) must fit the test set");
    }
    const int64_t count = n * rows;
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    for (int64_t i = 0; i < count; i++) idx[i] = i;
    nb_tensor *x, *y, *mu, *lv;
    if (app_images(s.tp, &s.am, &s.test, idx, count, &x, &y)) {
        free(idx);
        close_session(&s);
        return app_fail("reconstruct", NULL);
    }
    nb_model_encode(s.tp, &s.am.m, x, y, &mu, &lv);
    nb_tensor *rec = nb_model_mean(s.tp, &s.am.m, nb_model_decode(s.tp, &s.am.m, mu, y));
    nb_tensor *err = nb_mse(s.tp, rec, x, NB_REDUCE_NONE);
    if (!err) {
        free(idx);
        rc = tape_fail(s.cmd, s.tp);
        close_session(&s);
        return rc;
    }
    /* pairs of rows: originals r, reconstructions r */
    nb_tensor *parts[64];
    const char *labels[64];
    int prow[64], np = 0;
    for (long r = 0; r < rows; r++) {
        parts[np] = row_of(s.tp, x, r, n), parts[np + 1] = row_of(s.tp, rec, r, n);
        labels[np] = "test images", labels[np + 1] = "reconstructed";
        prow[np] = prow[np + 1] = 1;
        np += 2;
    }
    char title[400];
    snprintf(title, sizeof title, "%s on %s: test images and their reconstructions", s.model, s.dname);
    const img_text text = {title, labels, NULL};
    rc = write_stack(&s, "reconstruction.png", &text, np, (const nb_tensor *const *)parts, prow, (int)n);
    FILE *f = rc ? NULL : app_open_csv(s.run.out, "reconstruction.csv", "index,label,squared_error");
    for (int64_t i = 0; f && i < count; i++)
        fprintf(f, "%lld,%d,%.6f\n", (long long)i, s.test.labels ? s.test.labels[i] : -1, nb_get(err, i));
    if (f) fclose(f);
    if (!rc && !f) rc = app_fail("reconstruct", NULL);
    free(idx);
    close_session(&s);
    return rc;
}

/* ---- sample -------------------------------------------------------------------------------- */

int cmd_sample(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "n", .help = "grid size n x n (a CVAE: one row per class, n columns)", .def = "8"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "sample", argc, argv, "Decodes z ~ N(0, I) into a grid; for a CVAE, "
                          "row c holds class c and each column shares one z.", flags, nf, 0);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long n = app_flag_long(flags, nf, "n", 8, &bad);
    const nb_model *m = &s.am.m;
    if (bad || n < 1 || n > 64) {
        close_session(&s);
        return app_usage("sample", "--n must be 1 to 64");
    }
    if (!nb_model_is_vae(m) && m->cfg.kind != NB_VQVAE) {
        close_session(&s);
        nb_error(NB_ERR_ARG, "an AE has no prior to sample from (nabla compare fits one to its codes)");
        return app_fail("sample", NULL);
    }
    nb_rng r = nb_rng_seed(s.cfg.seed);
    if (m->cfg.kind >= NB_VQVAE) { /* priors of their own: uniform codes, the mixture, z2 → z1 */
        static const char *const from[] = {"codes drawn uniformly", "z ~ the VampPrior", "z2 ~ N(0, I), z1 ~ p(z1|z2)"};
        nb_tensor *img = nb_model_sample(s.tp, m, n * n, NULL, &r);
        if (!img) {
            rc = tape_fail(s.cmd, s.tp);
            close_session(&s);
            return rc;
        }
        char title[400];
        snprintf(title, sizeof title, "%s (%s): samples from the prior", s.model, s.dname);
        const char *labels[1] = {from[m->cfg.kind - NB_VQVAE]};
        const img_text text = {title, labels, NULL};
        rc = write_stack(&s, "samples.png", &text, 1, (const nb_tensor *const *)&img, (const int[]){(int)n}, (int)n);
        close_session(&s);
        return rc;
    }
    const int cvae = m->cfg.kind == NB_CVAE, K = m->cfg.nclasses;
    const int64_t rows = cvae ? K : n, count = rows * n;
    if (cvae && K > 64) {
        close_session(&s);
        return app_usage("sample", "a CVAE of %d classes makes too many rows (at most 64)", K);
    }
    /* a VAE: one code per cell; a CVAE: one code per column, shared down the classes */
    nb_tensor *y = NULL, *z = nb_randn(s.tp, &r, NB_F32, NB_SHAPE(cvae ? n : count, m->cfg.latent));
    if (cvae) { /* row c: class c; column j: the shared code z_j */
        int *lab = malloc((size_t)count * sizeof *lab);
        for (int64_t i = 0; i < count; i++) lab[i] = (int)(i / n);
        y = app_onehot(s.tp, count, K, lab);
        free(lab);
        z = nb_reshape(s.tp, nb_expand(s.tp, nb_reshape(s.tp, z, NB_SHAPE(1, n, m->cfg.latent)),
                                       NB_SHAPE(rows, n, m->cfg.latent)), NB_SHAPE(count, m->cfg.latent));
    }
    nb_tensor *img = nb_model_mean(s.tp, m, nb_model_decode(s.tp, m, z, y));
    if (!img) {
        rc = tape_fail(s.cmd, s.tp);
        close_session(&s);
        return rc;
    }
    char title[400], names[64][32];
    const char *labels[64];
    nb_tensor *parts[64];
    int prow[64];
    if (cvae) {
        snprintf(title, sizeof title, "%s samples, one row per class: each column decodes one z ~ N(0, I)", s.model);
        for (int k = 0; k < K; k++) {
            parts[k] = row_of(s.tp, img, k, n), prow[k] = 1;
            labels[k] = app_class_name(s.am.cfg.data, k, names[k], sizeof names[k]);
        }
    } else {
        snprintf(title, sizeof title, "%s (%s): samples from the prior", s.model, s.dname);
        parts[0] = img, prow[0] = (int)rows, labels[0] = "z ~ N(0, I)";
    }
    const img_text text = {title, labels, NULL};
    rc = write_stack(&s, cvae ? "samples_by_class.png" : "samples.png", &text, cvae ? K : 1,
                     (const nb_tensor *const *)parts, prow, (int)n);
    FILE *f = rc ? NULL : app_open_csv(s.run.out, cvae ? "samples_by_class.csv" : "samples.csv", "row,column,class,z");
    for (int64_t i = 0; f && i < count; i++) {
        fprintf(f, "%lld,%lld,%d,", (long long)(i / n), (long long)(i % n), cvae ? (int)(i / n) : -1);
        for (int j = 0; j < m->cfg.latent; j++) fprintf(f, "%s%.5f", j ? " " : "", nb_get(z, i * m->cfg.latent + j));
        fprintf(f, "\n");
    }
    if (f) fclose(f);
    close_session(&s);
    return rc;
}

/* ---- interpolate --------------------------------------------------------------------------- */

int cmd_interpolate(int argc, char **argv)
{
    app_flag flags[] = {
        {.name = "out", .help = "where to write", .def = "beside the first model"},
        {.name = "checkpoint", .help = "a trained model; repeat to put models side by side (e.g. AE and VAE)",
         .def = "the last run of nabla train", .repeat = 1},
        {.name = "a", .help = "index of the first test image", .def = "0"},
        {.name = "b", .help = "index of the second test image", .def = "1"},
        {.name = "n", .help = "steps from a to b", .def = "10"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "interpolate", "Decodes (1-t)·z_a + t·z_b for t from 0 to 1 between the "
                       "codes (posterior means) of two test images, one row per model.", flags, nf, &cfg,
                       APP_KEYS("data", "seed"));
    if (rc) return rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long a = app_flag_long(flags, nf, "a", 0, &bad), b = app_flag_long(flags, nf, "b", 1, &bad);
    const long n = app_flag_long(flags, nf, "n", 10, &bad);
    if (bad || n < 2 || n > 64) return app_usage("interpolate", "--a, --b must be test indices, --n 2 to 64");
    /* the first model's run decides where to write and, without --data, which test images */
    app_run first;
    app_flag one[2] = {flags[0], flags[1]};
    one[1].count = flags[1].count ? 1 : 0;
    if ((rc = app_resolve_run("interpolate", one, 2, &first))) return rc;
    const int nmodels = flags[1].count ? flags[1].count : 1;
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    nb_tensor *rows[APP_MAX_REPEAT];
    const char *labels[APP_MAX_REPEAT];
    char names[APP_MAX_REPEAT][96], data[512] = "";
    app_model am[APP_MAX_REPEAT];
    nb_dataset test = {0};
    int nloaded = 0;
    FILE *f = NULL;
    for (int k = 0; k < nmodels && !rc; k++) {
        const char *ckpt = k ? flags[1].value[k] : first.checkpoint;
        if (app_load_model(ckpt, &am[k])) {
            rc = app_fail("interpolate", NULL);
            break;
        }
        nloaded++;
        labels[k] = app_model_name(&am[k].cfg, names[k], sizeof names[k]);
        if (!k) {
            snprintf(data, sizeof data, "%s", app_given(argc, argv, "data") ? cfg.data : am[0].cfg.data);
            if (nb_dataset_load(&test, data, "t10k")) {
                rc = app_fail("interpolate", NULL);
                break;
            }
            if (a >= test.n || b >= test.n) {
                rc = app_usage("interpolate", "--a and --b must be below %lld", (long long)test.n);
                break;
            }
        }
        if (k && (am[k].cfg.model.channels != am[0].cfg.model.channels || am[k].cfg.model.height != am[0].cfg.model.height ||
                  am[k].cfg.model.width != am[0].cfg.model.width)) {
            rc = app_usage("interpolate", "the models take images of different shapes");
            break;
        }
        const int64_t idx[2] = {a, b};
        nb_tensor *x, *y, *mu, *lv;
        if (app_images(tp, &am[k], &test, idx, 2, &x, &y)) {
            rc = app_fail("interpolate", NULL);
            break;
        }
        nb_model_encode(tp, &am[k].m, x, y, &mu, &lv);
        const int d = am[k].cfg.model.latent;
        nb_tensor *z = nb_empty(tp, NB_F32, NB_SHAPE(n, d)), *yy = NULL;
        if (!mu || !z) {
            rc = tape_fail("interpolate", tp);
            break;
        }
        for (long i = 0; i < n; i++) {
            const double t = (double)i / (double)(n - 1);
            for (int j = 0; j < d; j++) nb_set(z, i * d + j, (1 - t) * nb_get(mu, j) + t * nb_get(mu, d + j));
        }
        if (y) { /* a CVAE keeps the first image's class */
            int *lab = malloc((size_t)n * sizeof *lab);
            for (long i = 0; i < n; i++) lab[i] = test.labels[a];
            yy = app_onehot(tp, n, am[k].cfg.model.nclasses, lab);
            free(lab);
        }
        rows[k] = nb_model_mean(tp, &am[k].m, nb_model_decode(tp, &am[k].m, z, yy));
        if (!rows[k]) {
            rc = tape_fail("interpolate", tp);
            break;
        }
    }
    char cols[64][16], title[400], dname[96];
    const char *col_labels[64];
    for (long i = 0; i < n; i++) {
        snprintf(cols[i], sizeof cols[i], "t=%.2g", (double)i / (double)(n - 1));
        col_labels[i] = cols[i];
    }
    snprintf(title, sizeof title, "Decoding (1-t)·z_a + t·z_b between the codes of test images %ld and %ld (%s)", a, b,
             app_data_name(data, dname, sizeof dname));
    const img_text text = {title, labels, col_labels};
    const nb_model_cfg *mc = nloaded ? &am[0].cfg.model : NULL;
    if (!rc)
        rc = app_write_images("interpolate", first.out, "interpolation.png", &text, nmodels,
                              (const nb_tensor *const *)rows, (const int[APP_MAX_REPEAT]){1, 1, 1, 1}, (int)n,
                              mc->channels, mc->height, mc->width);
    if (!rc && (f = app_open_csv(first.out, "interpolation.csv", "row,model,t,image_a,image_b"))) {
        for (int k = 0; k < nmodels; k++)
            for (long i = 0; i < n; i++)
                fprintf(f, "%d,%s,%.4f,%ld,%ld\n", k, labels[k], (double)i / (double)(n - 1), a, b);
        fclose(f);
    }
    for (int k = 0; k < nloaded; k++) app_free_model(&am[k]);
    nb_tape_free(tp);
    nb_dataset_free(&test);
    return rc;
}

/* ---- manifold ------------------------------------------------------------------------------ */

int cmd_manifold(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "n", .help = "grid size", .def = "20"},
        {.name = "class", .help = "the class to draw (a CVAE)", .def = "0"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "manifold", argc, argv, "Decodes z on a grid through the inverse normal CDF, "
                          "z = Φ⁻¹(linspace(0.05, 0.95, n)), as in Kingma & Welling's figure 4.", flags, nf, 0);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long n = app_flag_long(flags, nf, "n", 20, &bad), cls = app_flag_long(flags, nf, "class", 0, &bad);
    const nb_model *m = &s.am.m;
    if (bad || n < 2 || n > 64) rc = app_usage("manifold", "--n must be 2 to 64");
    else if (m->cfg.latent != 2 || !nb_model_is_vae(m)) {
        nb_error(NB_ERR_ARG, "needs a VAE with --latent 2 (this one: %s, latent %d)",
                 nb_model_is_vae(m) ? "VAE" : "AE", m->cfg.latent);
        rc = app_fail("manifold", NULL);
    } else if (m->cfg.kind == NB_CVAE && cls >= m->cfg.nclasses) {
        rc = app_usage("manifold", "--class must be below %d", m->cfg.nclasses);
    }
    if (rc) {
        close_session(&s);
        return rc;
    }
    nb_tensor *z = nb_empty(s.tp, NB_F32, NB_SHAPE(n * n, 2)), *y = NULL;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) { /* rows go down in z2, columns right in z1 */
            nb_set(z, (i * n + j) * 2, nb_ndtri(0.05 + 0.9 * (double)j / (double)(n - 1)));
            nb_set(z, (i * n + j) * 2 + 1, nb_ndtri(0.95 - 0.9 * (double)i / (double)(n - 1)));
        }
    if (m->cfg.kind == NB_CVAE) {
        int *lab = malloc((size_t)(n * n) * sizeof *lab);
        for (long i = 0; i < n * n; i++) lab[i] = (int)cls;
        y = app_onehot(s.tp, n * n, m->cfg.nclasses, lab);
        free(lab);
    }
    nb_tensor *img = nb_model_mean(s.tp, m, nb_model_decode(s.tp, m, z, y));
    if (!img) {
        rc = tape_fail(s.cmd, s.tp);
        close_session(&s);
        return rc;
    }
    /* one grid per row, so that each row carries its z2 and each column its z1 */
    nb_tensor *parts[64];
    int prow[64];
    char rl[64][16], cl[64][16], title[400], cname[32];
    const char *rlab[64], *clab[64];
    for (long i = 0; i < n; i++) {
        parts[i] = row_of(s.tp, img, i, n), prow[i] = 1;
        snprintf(rl[i], sizeof rl[i], "z₂ = %.2f", nb_get(z, i * n * 2 + 1));
        snprintf(cl[i], sizeof cl[i], "%.2f", nb_get(z, i * 2));
        rlab[i] = rl[i], clab[i] = cl[i];
    }
    snprintf(title, sizeof title, "%s on %s%s%s: the decoded latent plane, z₁ across (numbers above), z₂ down", s.model,
             s.dname, m->cfg.kind == NB_CVAE ? ", class " : "",
             m->cfg.kind == NB_CVAE ? app_class_name(s.am.cfg.data, (int)cls, cname, sizeof cname) : "");
    const img_text text = {title, rlab, clab};
    rc = write_stack(&s, "manifold.png", &text, (int)n, (const nb_tensor *const *)parts, prow, (int)n);
    FILE *f = rc ? NULL : app_open_csv(s.run.out, "manifold.csv", "row,column,z1,z2");
    for (long i = 0; f && i < n * n; i++)
        fprintf(f, "%ld,%ld,%.6f,%.6f\n", i / n, i % n, nb_get(z, i * 2), nb_get(z, i * 2 + 1));
    if (f) fclose(f);
    close_session(&s);
    return rc;
}

/* ---- scatter ------------------------------------------------------------------------------- */

int cmd_scatter(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "n", .help = "test images to encode", .def = "5000"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "scatter", argc, argv, "Encodes test images (posterior means) and plots the "
                          "codes coloured by label: the code itself for a 2-D latent, else its first two "
                          "principal components.", flags, nf, 1);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    long n = app_flag_long(flags, nf, "n", 5000, &bad);
    if (bad || n < 2) {
        close_session(&s);
        return app_usage("scatter", "--n must be at least 2");
    }
    if (n > s.test.n) n = (long)s.test.n;
    const int d = s.am.cfg.model.latent;
    float *codes = malloc((size_t)n * (size_t)d * sizeof *codes);
    double *px = malloc((size_t)n * sizeof *px), *py = malloc((size_t)n * sizeof *py);
    int *lab = malloc((size_t)n * sizeof *lab);
    for (long i0 = 0; i0 < n && !rc; i0 += 500) { /* in batches: the arena stays small */
        const long b = n - i0 < 500 ? n - i0 : 500;
        int64_t idx[500];
        for (long i = 0; i < b; i++) idx[i] = i0 + i, lab[i0 + i] = s.test.labels ? s.test.labels[i0 + i] : 0;
        nb_tape_reset(s.tp);
        nb_tensor *x, *y, *mu, *lv;
        if (app_images(s.tp, &s.am, &s.test, idx, b, &x, &y)) {
            rc = app_fail("scatter", NULL);
            break;
        }
        nb_model_encode(s.tp, &s.am.m, x, y, &mu, &lv);
        if (!mu) {
            rc = tape_fail(s.cmd, s.tp);
            break;
        }
        for (long i = 0; i < b * d; i++) codes[i0 * d + i] = (float)nb_get(mu, i);
    }
    const char *xl = "z₁", *yl = d == 1 ? "" : "z₂";
    if (!rc && d == 1) {
        for (long i = 0; i < n; i++) px[i] = codes[i], py[i] = 0;
    } else if (!rc && d == 2) {
        for (long i = 0; i < n; i++) px[i] = codes[2 * i], py[i] = codes[2 * i + 1];
    } else if (!rc) {
        double *mean = malloc((size_t)d * sizeof *mean), *comp = malloc((size_t)(2 * d) * sizeof *comp), var[2], z[2];
        if (pca_fit(codes, n, d, 2, mean, comp, var)) rc = app_fail("scatter", "PCA");
        for (long i = 0; !rc && i < n; i++) {
            pca_encode(mean, comp, d, 2, codes + i * d, z);
            px[i] = z[0], py[i] = z[1];
        }
        xl = "first principal component of the codes", yl = "second principal component";
        free(mean), free(comp);
    }
    char path[600];
    if (!rc) {
        const int nl = s.test.labels ? (s.test.nclasses > 10 ? s.test.nclasses : 10) : 1;
        char title[400], names[32][32];
        const char *lnames[32];
        for (int k = 0; k < nl && k < 32; k++) lnames[k] = app_class_name(s.data, k, names[k], sizeof names[k]);
        snprintf(title, sizeof title, "%s on %s: codes of %ld test images (posterior means)", s.model, s.dname, n);
        if (app_out_path(s.run.out, "scatter.png", path, sizeof path) ||
            plot_scatter(path, title, xl, yl, px, py, lab, (int)n, nl, lnames))
            rc = app_fail("scatter", NULL);
        else
            printf("wrote %s\n", path);
    }
    FILE *f = rc ? NULL : app_open_csv(s.run.out, "scatter.csv", "index,label,x,y");
    for (long i = 0; f && i < n; i++) fprintf(f, "%ld,%d,%.6f,%.6f\n", i, lab[i], px[i], py[i]);
    if (f) fclose(f);
    free(codes), free(px), free(py), free(lab);
    close_session(&s);
    return rc;
}

/* ---- evaluate ------------------------------------------------------------------------------ */

int cmd_evaluate(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "k", .help = "importance samples for log p(x) (VAEs; 0: skip)", .def = "100"},
        {.name = "n", .help = "test images for log p(x) (0: all)", .def = "1000"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "evaluate", argc, argv, "Test-set metrics in nats per image (-ELBO, reconstruction, "
                          "KL, bits/dim, active units, KL per latent dimension) and, for a VAE, the importance-"
                          "sampled log-likelihood with its standard error (evaluate.csv).", flags, nf, 1);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long k = app_flag_long(flags, nf, "k", 100, &bad), n = app_flag_long(flags, nf, "n", 1000, &bad);
    if (bad) {
        close_session(&s);
        return app_usage("evaluate", "--k and --n take non-negative integers");
    }
    const nb_model *m = &s.am.m;
    nb_eval e;
    double ll = NAN, se = NAN;
    /* the objective the model was trained on, so that its own bound is measured beside the ELBO */
    nb_loss_opts obj = nb_loss_defaults();
    obj.objective = s.am.cfg.objective, obj.samples = s.am.cfg.samples, obj.tc_beta = s.am.cfg.tc_beta;
    obj.mmd_lambda = s.am.cfg.mmd_lambda;
    if (nb_model_evaluate_with(m, &s.test, 500, s.am.cfg.binarize, &s.am.cfg.corrupt, s.cfg.seed, NULL, &obj, &e) ||
        (nb_model_is_vae(m) && k > 0 && /* a VQ-VAE has none: its posterior is a point mass */
         nb_model_log_likelihood(m, &s.test, n, (int)k, s.am.cfg.binarize, s.cfg.seed, &ll, &se))) {
        close_session(&s);
        return app_fail("evaluate", NULL);
    }
    printf("%s, %lld test images: -ELBO %.2f = reconstruction %.2f + KL %.2f nats per image, %.4f bits/dim, "
           "squared error %.2f per image, %d/%d active units\n", s.model, (long long)e.n, e.elbo_loss, e.recon, e.kl,
           e.bits_per_dim, e.mse, e.active_units, e.latent);
    if (e.objective == NB_OBJ_IWAE)
        printf("objective iwae: -IWAE-%d %.2f nats per image\n", e.samples, e.bound);
    else if (e.objective == NB_OBJ_TCVAE)
        printf("objective tcvae: MI %.2f, TC %.2f, dwKL %.2f nats per image (minibatch-weighted, batches of 500)\n",
               e.mi, e.tc, e.dwkl);
    else if (e.objective == NB_OBJ_WAE || e.objective == NB_OBJ_INFOVAE)
        printf("objective %s: MMD %.4f (batches of 500)\n", nb_objective_name(e.objective), e.mmd);
    if (m->cfg.kind == NB_VQVAE)
        printf("codebook: perplexity %.1f of %d codes, %d dead on the test set; log p(x): n/a (a point-mass "
               "posterior; the bound above is recon + L log K)\n", e.perplexity, m->cfg.codebook, e.dead_codes);
    if (m->cfg.kind == NB_HVAE)
        printf("per layer: KL z1 %.2f, z2 %.2f nats per image; active units %d/%d, %d/%d\n", e.kl1, e.kl2,
               e.active1, e.latent, e.active2, e.latent2);
    if (isfinite(ll))
        printf("log p(x) >= %.2f ± %.2f nats per image (importance sampling, k = %ld, %ld images)\n", ll, se, k,
               n ? n : (long)s.test.n);
    FILE *f = app_open_csv(s.run.out, "evaluate.csv", "metric,value");
    if (f) {
        fprintf(f, "images,%lld\nelbo_loss,%.6f\nrecon,%.6f\nkl,%.6f\nbits_per_dim,%.6f\nmse,%.6f\nactive_units,%d\n",
                (long long)e.n, e.elbo_loss, e.recon, e.kl, e.bits_per_dim, e.mse, e.active_units);
        fprintf(f, "bound,%.6f\n", e.bound);
        for (int j = 0; j < e.latent && j < 256; j++) fprintf(f, "kl_dim_%d,%.6f\n", j, e.kl_dim[j]);
        if (isfinite(ll)) fprintf(f, "log_likelihood_k%ld,%.6f\nlog_likelihood_stderr,%.6f\n", k, ll, se);
        fclose(f);
    }
    close_session(&s);
    return f ? APP_OK : app_fail("evaluate", NULL);
}

/* ---- traverse ------------------------------------------------------------------------------ */

int cmd_traverse(int argc, char **argv)
{
    app_flag flags[] = {
        APP_RUN_FLAGS,
        {.name = "image", .help = "the test image whose code (posterior mean) the rows start from", .def = "0"},
        {.name = "range", .help = "each dimension runs from -range to +range", .def = "3"},
        {.name = "n", .help = "steps along each dimension", .def = "9"},
        {.name = "eval", .help = "test images the KL per dimension is measured on", .def = "1000"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    session s;
    int rc = open_session(&s, "traverse", argc, argv, "Latent traversals (β-VAE): one row per latent dimension, "
                          "largest KL first; along a row that dimension runs over [-range, range] while the others "
                          "keep a test image's code. A disentangled dimension changes one thing; a collapsed one "
                          "(KL near 0) changes nothing.", flags, nf, 1);
    if (rc) return close_session(&s), rc < 0 ? APP_OK : rc;
    int bad = 0;
    const long img = app_flag_long(flags, nf, "image", 0, &bad), n = app_flag_long(flags, nf, "n", 9, &bad);
    const long neval = app_flag_long(flags, nf, "eval", 1000, &bad);
    const double range = app_flag_double(flags, nf, "range", 3, &bad);
    const nb_model *m = &s.am.m;
    const int d = m->cfg.latent, rows = d < 64 ? d : 64;
    if (bad || n < 2 || n > 64 || img >= s.test.n || neval < 1 || !(range > 0) || range > 100) {
        close_session(&s);
        return app_usage("traverse", "--image below %lld, --n 2 to 64, --range above 0 (at most 100), --eval at "
                         "least 1", (long long)s.test.n);
    }
    if (!nb_model_is_vae(m)) {
        close_session(&s);
        nb_error(NB_ERR_ARG, "traversals need a VAE: an AE's code has no prior scale to walk along");
        return app_fail("traverse", NULL);
    }
    nb_eval e;
    const nb_dataset view = nb_dataset_view(&s.test, 0, neval < s.test.n ? neval : s.test.n);
    if (nb_model_evaluate(m, &view, 500, NB_BIN_NONE, NULL, s.cfg.seed, &e)) {
        close_session(&s);
        return app_fail("traverse", NULL);
    }
    int order[256];
    for (int j = 0; j < d && j < 256; j++) order[j] = j;
    for (int i = 0; i < rows; i++) /* largest KL first */
        for (int j = i + 1; j < d && j < 256; j++)
            if (e.kl_dim[order[j]] > e.kl_dim[order[i]]) {
                const int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    const int64_t one = img;
    nb_tensor *x, *y, *mu, *lv;
    if (app_images(s.tp, &s.am, &s.test, &one, 1, &x, &y)) {
        close_session(&s);
        return app_fail("traverse", NULL);
    }
    nb_model_encode(s.tp, &s.am.m, x, y, &mu, &lv);
    nb_tensor *z = nb_empty(s.tp, NB_F32, NB_SHAPE((int64_t)rows * n, d)), *yy = NULL;
    if (!mu || !z) {
        rc = tape_fail(s.cmd, s.tp);
        close_session(&s);
        return rc;
    }
    for (int r = 0; r < rows; r++)
        for (long c = 0; c < n; c++)
            for (int j = 0; j < d; j++)
                nb_set(z, ((int64_t)r * n + c) * d + j,
                       j == order[r] ? -range + 2 * range * (double)c / (double)(n - 1) : nb_get(mu, j));
    if (y) { /* a CVAE keeps the image's class */
        int *lab = malloc((size_t)(rows * n) * sizeof *lab);
        for (long i = 0; i < rows * n; i++) lab[i] = s.test.labels[img];
        yy = app_onehot(s.tp, rows * n, m->cfg.nclasses, lab);
        free(lab);
    }
    nb_tensor *out = nb_model_mean(s.tp, m, nb_model_decode(s.tp, m, z, yy));
    if (!out) {
        rc = tape_fail(s.cmd, s.tp);
        close_session(&s);
        return rc;
    }
    nb_tensor *parts[64];
    int prow[64];
    char rl[64][32], cl[64][16], title[400];
    const char *rlab[64], *clab[64];
    for (int r = 0; r < rows; r++) {
        parts[r] = row_of(s.tp, out, r, n), prow[r] = 1;
        snprintf(rl[r], sizeof rl[r], "z%d (KL %.2f)", order[r] + 1, e.kl_dim[order[r]]);
        rlab[r] = rl[r];
    }
    for (long c = 0; c < n; c++) {
        snprintf(cl[c], sizeof cl[c], "%.2g", -range + 2 * range * (double)c / (double)(n - 1));
        clab[c] = cl[c];
    }
    snprintf(title, sizeof title, "%s on %s: latent traversals from the code of test image %ld, one dimension "
             "per row (largest KL first), the others fixed", s.model, s.dname, img);
    const img_text text = {title, rlab, clab};
    rc = write_stack(&s, "traverse.png", &text, rows, (const nb_tensor *const *)parts, prow, (int)n);
    FILE *f = rc ? NULL : app_open_csv(s.run.out, "traverse.csv", "row,dimension,kl,value");
    for (int r = 0; f && r < rows; r++)
        for (long c = 0; c < n; c++)
            fprintf(f, "%d,%d,%.6f,%.6f\n", r, order[r] + 1, e.kl_dim[order[r]],
                    -range + 2 * range * (double)c / (double)(n - 1));
    if (f) fclose(f);
    close_session(&s);
    return rc;
}
