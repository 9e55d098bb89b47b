/* apps/cmd_compare.c — `nabla compare`: the side-by-side lesson, one command, one report.
 *
 *   1. AE against PCA reconstructions at d = 2, 4, 8, 16, 32, with a table of test MSE;
 *   2. "generating from an AE": a full-covariance Gaussian fitted to its codes, decoded, next to
 *      samples from a VAE's prior;
 *   3. VAE samples at d = 2, 5, 10, 20;
 *   4. "MSE gives the average": a denoising AE's output for a block-masked input next to several
 *      completions drawn from a VAE's posterior given the visible pixels, and its mean;
 *   5. collapse diagnostics (KL per latent dimension, active units) for every VAE.
 * Every model is trained with `nabla train` into its own folder under --out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/app.h"
#include "tensor/error.h"
#include "apps/linalg.h"
#include "apps/plot.h"

enum { MAX_ARGS = 96, NSHOW = 8, PCA_K = 32, FIT_CODES = 10000 };

/* Section 4's corruption: a 24x24 square leaves a frame of 4 pixels, so that many clean images
 * fit what is left (with 90% dropout the silhouette still shows through the scattered pixels). */
#define LESSON_CORRUPT "block:24"

static const int ae_dims[] = {2, 4, 8, 16, 32};
static const int vae_dims[] = {2, 5, 10, 20};
enum { NAE = sizeof ae_dims / sizeof ae_dims[0], NVAE = sizeof vae_dims / sizeof vae_dims[0] };

typedef struct lesson {
    int reuse; /* load models already trained into --out instead of training them again */
    int argc;
    char **argv;
    const char *out;
    nb_dataset train, test;
    nb_tape *tp;
    FILE *md;
} lesson;

/* `nabla train` with the lesson's flags plus extra ones, into <out>/<name>; loads the result. */
static int train(lesson *L, const char *name, const char *const *extra, app_model *am)
{
    char dir[600], ckpt[640];
    snprintf(dir, sizeof dir, "%s/%s", L->out, name);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    char *args[MAX_ARGS];
    int n = 0;
    for (int i = 0; i < L->argc && n < MAX_ARGS - 24; i++)
        if (strcmp(L->argv[i], "--reuse")) args[n++] = L->argv[i];
    for (int i = 0; extra[i] && n < MAX_ARGS - 3; i++) args[n++] = (char *)extra[i];
    args[n++] = "--out";
    args[n++] = dir;
    args[n] = NULL;
    if (L->reuse && !access(ckpt, R_OK)) {
        printf("== compare: reusing %s ==\n", ckpt);
        return app_load_model(ckpt, am) ? app_fail("compare", ckpt) : APP_OK;
    }
    printf("== compare: training %s ==\n", name);
    fflush(stdout);
    int rc = cmd_train(n, args);
    if (rc) return rc;
    return app_load_model(ckpt, am) ? app_fail("compare", ckpt) : APP_OK;
}

static int fail_tape(const lesson *L)
{
    fprintf(stderr, "nabla compare: %s\n", nb_tape_error(L->tp));
    return APP_FAIL;
}

static int write_png(const lesson *L, const char *name, int n, const nb_tensor *const *ts, const int *rows, int cols)
{
    return app_write_images("compare", L->out, name, n, ts, rows, cols, 1, 28, 28);
}

/* The first n test images as an (n, 784) tensor. */
static nb_tensor *test_images(lesson *L, int64_t n)
{
    int64_t idx[1024];
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    nb_tensor *x = nb_empty(L->tp, NB_F32, NB_SHAPE(n, L->test.rows * L->test.cols));
    if (x && nb_dataset_images(&L->test, idx, n, x, NB_BIN_NONE, NULL)) return NULL;
    return x;
}

/* ---- 1 and 2: AE against PCA, and generating from an AE ----------------------------------- */

static int ae_vs_pca(lesson *L, app_model *ae, app_model *vae)
{
    const int D = L->train.rows * L->train.cols;
    const int64_t ntr = L->train.n;
    float *all = malloc((size_t)ntr * (size_t)D * sizeof *all);
    double *mean = malloc((size_t)D * sizeof *mean), *comp = malloc((size_t)PCA_K * D * sizeof *comp), var[PCA_K];
    int64_t *idx = malloc((size_t)ntr * sizeof *idx);
    int rc = all && mean && comp && idx ? APP_OK : app_fail("compare", "out of memory");
    for (int64_t i = 0; i < ntr && !rc; i++) idx[i] = i;
    nb_tensor tall;
    nb_tensor_wrap(&tall, NB_F32, 2, (const int64_t[]){ntr, D}, all);
    if (!rc && nb_dataset_images(&L->train, idx, ntr, &tall, NB_BIN_NONE, NULL))
        rc = app_fail("compare", NULL);
    printf("== compare: PCA of %lld training images (LAPACK) ==\n", (long long)ntr);
    if (!rc && pca_fit(all, ntr, D, PCA_K, mean, comp, var)) rc = app_fail("compare", "PCA");
    /* test MSE (per image, summed over pixels) of PCA and the AE at each d */
    const int64_t ntest = L->test.n;
    double pca_mse[NAE] = {0}, ae_mse[NAE] = {0};
    nb_tensor *rows[1 + 2 * NAE];
    int ones[1 + 2 * NAE];
    nb_tape_reset(L->tp);
    nb_tensor *show = test_images(L, NSHOW);
    rows[0] = show, ones[0] = 1;
    float *xr = malloc((size_t)D * sizeof *xr), *xi = malloc((size_t)D * sizeof *xi);
    double z[PCA_K];
    for (int k = 0; k < NAE && !rc; k++) {
        nb_tensor *pr = nb_empty(L->tp, NB_F32, NB_SHAPE(NSHOW, D));
        for (int64_t i = 0; i < ntest; i++) {
            int64_t one = i;
            nb_tensor t1;
            nb_tensor_wrap(&t1, NB_F32, 2, (const int64_t[]){1, D}, xi);
            if (nb_dataset_images(&L->test, &one, 1, &t1, NB_BIN_NONE, NULL)) {
                rc = app_fail("compare", NULL);
                break;
            }
            pca_encode(mean, comp, D, ae_dims[k], xi, z);
            pca_decode(mean, comp, D, ae_dims[k], z, xr);
            for (int j = 0; j < D; j++) pca_mse[k] += (xr[j] - xi[j]) * (double)(xr[j] - xi[j]);
            if (i < NSHOW)
                for (int j = 0; j < D; j++) nb_set(pr, i * D + j, xr[j]);
        }
        pca_mse[k] /= (double)ntest;
        rows[1 + k] = pr, ones[1 + k] = 1;
        nb_eval e;
        if (nb_model_evaluate(&ae[k].m, &L->test, 500, NB_BIN_NONE, NULL, 1, &e)) rc = app_fail("compare", "evaluate");
        ae_mse[k] = e.mse;
        nb_tensor *mu, *lv;
        nb_model_encode(L->tp, &ae[k].m, show, NULL, &mu, &lv);
        rows[1 + NAE + k] = nb_model_mean(L->tp, &ae[k].m, nb_model_decode(L->tp, &ae[k].m, mu, NULL));
        ones[1 + NAE + k] = 1;
        if (!rows[1 + NAE + k]) rc = fail_tape(L);
    }
    free(xr), free(xi);
    if (!rc) rc = write_png(L, "ae_vs_pca.png", 1 + 2 * NAE, (const nb_tensor *const *)rows, ones, NSHOW);
    if (!rc) {
        fprintf(L->md, "## 1. Autoencoder against PCA\n\nTest squared error per image (summed over the 784 "
                       "pixels, averaged over %lld test images). PCA is computed with LAPACK on the %lld training "
                       "images; the AEs are MLPs 784-400-d-400-784 trained on squared error.\n\n"
                       "| d | PCA | AE | AE / PCA |\n|---|---|---|---|\n", (long long)ntest, (long long)ntr);
        for (int k = 0; k < NAE; k++)
            fprintf(L->md, "| %d | %.2f | %.2f | %.2f |\n", ae_dims[k], pca_mse[k], ae_mse[k], ae_mse[k] / pca_mse[k]);
        fprintf(L->md, "\nTop row: test images; then PCA reconstructions at d = 2, 4, 8, 16, 32; then the AE's "
                       "at the same d.\n\n![AE against PCA](ae_vs_pca.png)\n\n");
        printf("  d    PCA MSE   AE MSE\n");
        for (int k = 0; k < NAE; k++) printf("  %-3d %8.2f %8.2f\n", ae_dims[k], pca_mse[k], ae_mse[k]);
    }
    /* 2: fit N(μ̂, Σ̂) to the d = 16 AE's training codes and decode samples from it */
    const int k16 = 3, d = ae_dims[k16];
    const int64_t nfit = ntr < FIT_CODES ? ntr : FIT_CODES;
    double *codes = malloc((size_t)nfit * d * sizeof *codes), gm[64], gl[64 * 64], eps[64], out[64];
    for (int64_t i0 = 0; i0 < nfit && !rc; i0 += 500) {
        const int64_t b = nfit - i0 < 500 ? nfit - i0 : 500;
        nb_tape_reset(L->tp);
        nb_tensor t1;
        nb_tensor_wrap(&t1, NB_F32, 2, (const int64_t[]){b, D}, all + i0 * D);
        nb_tensor *mu, *lv;
        nb_model_encode(L->tp, &ae[k16].m, &t1, NULL, &mu, &lv);
        if (!mu) rc = fail_tape(L);
        for (int64_t i = 0; !rc && i < b * d; i++) codes[i0 * d + i] = nb_get(mu, i);
    }
    if (!rc && gauss_fit(codes, nfit, d, gm, gl)) rc = app_fail("compare", "Gaussian fit");
    if (!rc) {
        nb_tape_reset(L->tp);
        nb_rng r = nb_rng_seed(7);
        nb_tensor *zs = nb_empty(L->tp, NB_F32, NB_SHAPE(64, d)), *e = nb_randn(L->tp, &r, NB_F64, NB_SHAPE(64, d));
        for (int s = 0; s < 64; s++) {
            for (int j = 0; j < d; j++) eps[j] = nb_get(e, s * d + j);
            gauss_sample(gm, gl, d, eps, out);
            for (int j = 0; j < d; j++) nb_set(zs, s * d + j, out[j]);
        }
        nb_tensor *ae_s = nb_model_mean(L->tp, &ae[k16].m, nb_model_decode(L->tp, &ae[k16].m, zs, NULL));
        nb_tensor *ae_prior = nb_model_sample(L->tp, &ae[k16].m, 32, NULL, &r); /* z ~ N(0, I) */
        nb_tensor *vae_s = nb_model_sample(L->tp, &vae->m, 32, NULL, &r);
        if (!ae_s || !ae_prior || !vae_s) rc = fail_tape(L);
        const nb_tensor *grids[3] = {ae_s, ae_prior, vae_s};
        if (!rc) rc = write_png(L, "ae_gaussian_vs_vae.png", 3, grids, (const int[]){8, 4, 4}, 8);
        if (!rc)
            fprintf(L->md, "## 2. Generating from an autoencoder\n\nTop (8 rows): a full-covariance Gaussian "
                           "N(μ̂, Σ̂) (Cholesky factor from LAPACK) fitted to %lld training codes of the d = %d AE, "
                           "sampled and decoded. Middle (4 rows): the same AE decoding z ~ N(0, I). Bottom (4 rows): "
                           "samples from the prior of the d = %d VAE.\n\n"
                           "![AE with a fitted Gaussian against VAE samples](ae_gaussian_vs_vae.png)\n\n"
                           "Nothing in the AE's loss says where its codes should lie. Decoding N(0, I) shows it: "
                           "the codes live at another scale and in another place, and the decoder has never seen "
                           "these points. Fitting a Gaussian to the codes repairs the scale and the correlations, "
                           "but not the shape: the codes form clusters on a curved set, one Gaussian also covers "
                           "the space between them, and samples from there decode to blends of classes and "
                           "smeared shapes beside the good ones. The VAE's KL term pulls its codes towards "
                           "N(0, I) and its decoder is trained on noisy codes all around them, so its prior "
                           "samples land where the decoder knows what to draw.\n\n",
                    (long long)nfit, d, vae->cfg.model.latent);
    }
    free(codes), free(all), free(mean), free(comp), free(idx);
    return rc;
}

/* ---- 3 and 5: VAE samples by d, and collapse diagnostics ---------------------------------- */

static int vae_samples(lesson *L, app_model *vae)
{
    nb_tape_reset(L->tp);
    nb_tensor *grids[NVAE];
    int rows[NVAE];
    for (int k = 0; k < NVAE; k++) {
        nb_rng r = nb_rng_seed(11);
        grids[k] = nb_model_sample(L->tp, &vae[k].m, 32, NULL, &r);
        rows[k] = 4;
        if (!grids[k]) return fail_tape(L);
    }
    int rc = write_png(L, "vae_samples_by_d.png", NVAE, (const nb_tensor *const *)grids, rows, 8);
    if (rc) return rc;
    fprintf(L->md, "## 3. VAE samples at d = 2, 5, 10, 20\n\nFour rows per model, from the top: d = 2, 5, 10, "
                   "20 (as in Kingma & Welling's figure 5).\n\n![VAE samples](vae_samples_by_d.png)\n\n");
    fprintf(L->md, "## 5. Collapse diagnostics\n\nKL per latent dimension (nats, mean over test images, largest "
                   "first) and active units (Cov_x E[z_d|x] > 0.01, Burda et al.).\n\n"
                   "| d | test -ELBO | KL | active units | KL per dimension |\n|---|---|---|---|---|\n");
    for (int k = 0; k < NVAE; k++) {
        nb_eval e;
        if (nb_model_evaluate(&vae[k].m, &L->test, 500, NB_BIN_NONE, NULL, 1, &e)) return app_fail("compare", "evaluate");
        double kd[256];
        const int d = e.latent < 256 ? e.latent : 256;
        memcpy(kd, e.kl_dim, (size_t)d * sizeof *kd);
        for (int i = 0; i < d; i++) /* largest first */
            for (int j = i + 1; j < d; j++)
                if (kd[j] > kd[i]) {
                    double t = kd[i];
                    kd[i] = kd[j], kd[j] = t;
                }
        fprintf(L->md, "| %d | %.2f | %.2f | %d | ", vae_dims[k], e.elbo_loss, e.kl, e.active_units);
        for (int i = 0; i < d; i++) fprintf(L->md, "%s%.2f", i ? " " : "", kd[i]);
        fprintf(L->md, " |\n");
        printf("  VAE d=%-2d test -ELBO %.2f, KL %.2f, %d/%d active units\n", vae_dims[k], e.elbo_loss, e.kl,
               e.active_units, e.latent);
    }
    fprintf(L->md, "\nDimensions beyond what the data needs carry almost no KL: the posterior equals the "
                   "prior there (collapsed), and the active units stop growing with d.\n\n");
    return APP_OK;
}

/* ---- 4: MSE gives the average ------------------------------------------------------------- */

/* Completions of a partly hidden image x (784) by the VAE's posterior over the visible pixels,
 * p(z | x_visible) ∝ p(x_visible | z) p(z): K codes from the prior, weighted by the Bernoulli
 * likelihood of the visible pixels only, NDRAW of them drawn by those weights (systematic
 * resampling). Returns the effective sample size; writes the draws and the weighted mean. */
static double complete(const nb_model *vae, const nb_tensor *x, const nb_tensor *visible, int64_t i, nb_rng *r,
                       int ndraw, double *draws, double *mean)
{
    enum { K = 4096, D = 784 };
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    nb_tensor *z = nb_randn(tp, r, NB_F32, NB_SHAPE(K, vae->cfg.latent));
    nb_tensor *logits = nb_model_decode(tp, vae, z, NULL);
    nb_tensor *xi = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, D), (const float *)x->data + i * D, D);
    nb_tensor *vi = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, D), (const float *)visible->data + i * D, D);
    /* -BCE = t·l - softplus(l), summed over the visible pixels */
    nb_tensor *ll = nb_sum(tp, nb_mul(tp, nb_sub(tp, nb_mul(tp, logits, xi), nb_softplus(tp, logits)), vi), NB_AXES(1), 0);
    nb_tensor *img = nb_sigmoid(tp, logits);
    double ess = 0;
    if (ll && img) {
        static double w[K];
        double mx = -INFINITY, sum = 0, sum2 = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, nb_get(ll, k));
        for (int k = 0; k < K; k++) sum += w[k] = exp(nb_get(ll, k) - mx);
        for (int k = 0; k < K; k++) w[k] /= sum, sum2 += w[k] * w[k];
        ess = 1 / sum2;
        for (int j = 0; j < D; j++) mean[j] = 0;
        for (int k = 0; k < K; k++)
            if (w[k] > 1e-12)
                for (int j = 0; j < D; j++) mean[j] += w[k] * nb_get(img, k * D + j);
        double u = nb_rng_uniform1(r) / ndraw, c = w[0];
        for (int s = 0, k = 0; s < ndraw; s++, u += 1.0 / ndraw) {
            while (c < u && k < K - 1) c += w[++k];
            for (int j = 0; j < D; j++) draws[s * D + j] = nb_get(img, k * D + j);
        }
    } else {
        fprintf(stderr, "nabla compare: %s\n", nb_tape_error(tp));
    }
    nb_tape_free(tp);
    return ess;
}

static int mse_average(lesson *L, app_model *dae, app_model *vae)
{
    enum { NIMG = 4, NDRAW = 5, D = 784 };
    nb_tape_reset(L->tp);
    nb_tensor *x = test_images(L, NIMG);
    nb_corruption c;
    nb_corruption_parse(&c, LESSON_CORRUPT);
    nb_rng r = nb_rng_seed(3), same = r;
    nb_tensor *xc = nb_corrupt(L->tp, &c, x, 1, 28, 28, &r), *mu, *lv;
    /* the same draws on an all-ones image mark which pixels stayed visible */
    nb_tensor *visible = nb_corrupt(L->tp, &c, nb_full(L->tp, NB_F32, NB_SHAPE(NIMG, D), 1), 1, 28, 28, &same);
    nb_model_encode(L->tp, &dae->m, xc, NULL, &mu, &lv);
    nb_tensor *dae_out = nb_model_mean(L->tp, &dae->m, nb_model_decode(L->tp, &dae->m, mu, NULL));
    /* per image, one row: clean, corrupted, DAE, NDRAW posterior completions, their mean */
    const int cols = 4 + NDRAW;
    nb_tensor *grid = nb_zeros(L->tp, NB_F32, NB_SHAPE(NIMG * cols, D));
    if (!dae_out || !visible || !grid) return fail_tape(L);
    static double draws[NDRAW * D], mean[D];
    double ess[NIMG];
    for (int i = 0; i < NIMG; i++) {
        nb_rng ri = nb_rng_fork(&r, (uint64_t)i);
        ess[i] = complete(&vae->m, x, visible, i, &ri, NDRAW, draws, mean);
        const int64_t row = (int64_t)i * cols;
        for (int j = 0; j < D; j++) {
            nb_set(grid, (row + 0) * D + j, nb_get(x, i * D + j));
            nb_set(grid, (row + 1) * D + j, nb_get(xc, i * D + j));
            nb_set(grid, (row + 2) * D + j, nb_get(dae_out, i * D + j));
            for (int s = 0; s < NDRAW; s++) nb_set(grid, (row + 3 + s) * D + j, draws[s * D + j]);
            nb_set(grid, (row + 3 + NDRAW) * D + j, mean[j]);
        }
    }
    int rc = write_png(L, "mse_gives_the_average.png", 1, (const nb_tensor *const *)&grid, (const int[]){NIMG}, cols);
    if (!rc) {
        fprintf(L->md, "## 4. MSE gives the average\n\nEach row: a test image; the same with a 24x24 square "
                       "blanked out; the denoising AE's output (trained on that corruption with squared error); "
                       "%d completions drawn from the posterior of the d = %d VAE given the visible pixels "
                       "only, p(z | x_visible) ∝ p(x_visible | z) p(z) (4096 codes from the prior, weighted by "
                       "the likelihood of the visible pixels, resampled); and the posterior mean image.\n\n"
                       "![MSE gives the average](mse_gives_the_average.png)\n\n"
                       "When most of a garment is hidden, many clean images fit what is left. Squared error is "
                       "minimised by their average, so the DAE draws one smooth compromise. The VAE keeps the "
                       "uncertainty as a distribution over codes: its draws are different garments that all "
                       "agree with the visible pixels, and it is their *mean* that looks like the DAE's "
                       "output. Effective sample sizes of the weighting, per row:", NDRAW, vae->cfg.model.latent);
        for (int i = 0; i < NIMG; i++) fprintf(L->md, "%s %.0f", i ? "," : "", ess[i]);
        fprintf(L->md, " (out of 4096; a small one means the visible pixels leave few codes).\n\n");
    }
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    app_flag flags[] = {{.name = "reuse", .help = "load the models a previous run trained into --out", .is_switch = 1}};
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "compare", "The side-by-side lesson: AE against PCA at d = 2..32, generating "
                       "from an AE with a fitted Gaussian against VAE samples, VAE samples at d = 2, 5, 10, 20, "
                       "\"MSE gives the average\", and collapse diagnostics; writes report.md into --out "
                       "(default out/compare). Configuration keys (--epochs, --train-size, --threads, ...) "
                       "apply to every model it trains.", flags, 1, &cfg, 1);
    if (rc) return rc < 0 ? APP_OK : rc;
    int has_out = 0;
    for (int i = 0; i < argc; i++) has_out |= !strncmp(argv[i], "--out", 5);
    lesson L = {.reuse = flags[0].count, .argc = argc, .argv = argv, .out = has_out ? cfg.out : "out/compare"};
    if (nb_dataset_load(&L.train, cfg.data, "train") || nb_dataset_load(&L.test, cfg.data, "t10k"))
        return app_fail("compare", NULL);
    if (L.train.channels != 1 || L.train.rows != 28 || L.train.cols != 28) {
        nb_error(NB_ERR_ARG, "the lesson is laid out for 28x28 grey images");
        return app_fail("compare", NULL);
    }
    if (cfg.train_size && cfg.train_size < L.train.n) L.train.n = cfg.train_size; /* a view */
    if (cfg.test_size && cfg.test_size < L.test.n) L.test.n = cfg.test_size;
    char path[600];
    if (app_out_path(L.out, "report.md", path, sizeof path) || !(L.md = fopen(path, "w")))
        return app_fail("compare", "report.md");
    L.tp = nb_tape_new();
    nb_tape_set_grad(L.tp, 0);
    fprintf(L.md, "# Autoencoders side by side\n\nAll losses in nats per image or squared error per image (sums "
                  "over pixels, means over images). Each model's folder holds its config.json, metrics.csv, "
                  "loss_curve.png and checkpoint.\n\n");
    app_model ae[NAE] = {0}, vae[NVAE] = {0}, dae = {0};
    char dname[32], dval[16];
    for (int k = 0; k < NAE && !rc; k++) {
        snprintf(dname, sizeof dname, "ae_d%d", ae_dims[k]);
        snprintf(dval, sizeof dval, "%d", ae_dims[k]);
        rc = train(&L, dname, (const char *[]){"--model", "ae", "--decoder", "gaussian", "--latent", dval, NULL}, &ae[k]);
    }
    for (int k = 0; k < NVAE && !rc; k++) {
        snprintf(dname, sizeof dname, "vae_d%d", vae_dims[k]);
        snprintf(dval, sizeof dval, "%d", vae_dims[k]);
        rc = train(&L, dname, (const char *[]){"--model", "vae", "--latent", dval, NULL}, &vae[k]);
    }
    if (!rc) rc = train(&L, "dae_block24", (const char *[]){"--model", "dae", "--decoder", "gaussian", "--latent", "20",
                                                             "--corrupt", LESSON_CORRUPT, NULL}, &dae);
    if (!rc) rc = ae_vs_pca(&L, ae, &vae[NVAE - 1]);
    if (!rc) rc = vae_samples(&L, vae);
    if (!rc) rc = mse_average(&L, &dae, &vae[NVAE - 1]);
    fclose(L.md);
    if (!rc) printf("wrote %s\n", path);
    for (int k = 0; k < NAE; k++) app_free_model(&ae[k]);
    for (int k = 0; k < NVAE; k++) app_free_model(&vae[k]);
    app_free_model(&dae);
    nb_tape_free(L.tp);
    nb_dataset_free(&L.train);
    nb_dataset_free(&L.test);
    return rc;
}
