/* apps/cmd_compare.c — `nabla compare`: the whole course side by side, one command, one report.
 *
 * Sections, in the order of the lecture notes (each numbered as it is written, so the report
 * reads in order whatever is skipped):
 *   PCA in 2-D (named points encoded and decoded); AE against PCA at d = 2..32; the linear AE
 *   and PCA's subspace (principal angles); interpolation, PCA beside the AE at d = 32;
 *   generating from an AE (a Gaussian fitted to its codes at d = 16 and 32) against a VAE;
 *   "MSE gives the average" (a DAE against posterior completions); denoising in 2-D; VAE samples
 *   at d = 2..20; collapse diagnostics; Gaussian decoders with a learned variance (shared, per
 *   pixel, a head) against their optimum; the CVAE whose code carries the class (d = 20) and
 *   its cure (d = 2); β-VAE latent traversals.
 * Every model is trained with `nabla train` into its own folder under --out, as an MLP or, with
 * --arch conv, as a conv net (the linear AE is an MLP by definition).
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

enum { MAX_ARGS = 128, NSHOW = 8, PCA_K = 32, FIT_CODES = 10000, D_MAX = 4096 };

/* "MSE gives the average": a 24x24 square leaves a frame of 4 pixels, so that many clean images
 * fit what is left (with 90% dropout the silhouette still shows through the scattered pixels). */
#define LESSON_CORRUPT "block:24"

static const int ae_dims[] = {2, 4, 8, 16, 32};
static const int vae_dims[] = {2, 5, 10, 20};
enum { NAE = sizeof ae_dims / sizeof ae_dims[0], NVAE = sizeof vae_dims / sizeof vae_dims[0] };
enum { AE16 = 3, AE32 = 4, VAE10 = 2, VAE20 = 3 };

typedef struct lesson {
    int reuse;  /* load models already trained into --out instead of training them again */
    int epochs; /* what each model is trained for */
    int argc;
    char **argv;
    const char *out, *data, *noun;
    char dname[96], arch[16];
    long toy_steps, codes; /* the 2-D DAE's steps; prior codes weighed for the completions */
    nb_dataset train, test;
    nb_tape *tp;
    FILE *md;
    int section;
    /* PCA of the training images, shared by several sections */
    int D;
    float *all; /* the training images, flat */
    double *mean, *comp, var[PCA_K], pca_mse[NAE];
} lesson;

/* The lesson's own flags, which the trainings must not see. */
static const char *const own_flags[] = {"reuse", "toy-steps", "codes", NULL};

/* `nabla train` with the lesson's flags plus extra ones (later flags win), into <out>/<name>;
 * loads the result. */
static int train(lesson *L, const char *name, const char *const *extra, app_model *am)
{
    char dir[600], ckpt[640];
    snprintf(dir, sizeof dir, "%s/%s", L->out, name);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    char *args[MAX_ARGS];
    int n = 0;
    for (int i = 0; i < L->argc && n < MAX_ARGS - 40; i++) {
        int own = 0;
        for (int k = 0; own_flags[k]; k++) {
            const size_t len = strlen(own_flags[k]);
            if (!strncmp(L->argv[i], "--", 2) && !strncmp(L->argv[i] + 2, own_flags[k], len)) {
                own = L->argv[i][2 + len] == '=' ? 1 : !L->argv[i][2 + len] ? 1 + (k > 0) : 0;
                break;
            }
        }
        if (!own) args[n++] = L->argv[i];
        else i += own - 1; /* a flag with its value */
    }
    for (int i = 0; extra[i] && n < MAX_ARGS - 3; i++) args[n++] = (char *)extra[i];
    args[n++] = "--out";
    args[n++] = dir;
    args[n] = NULL;
    if (L->reuse && !access(ckpt, R_OK)) { /* a run stopped early is trained again, not taken for the lesson */
        if (app_load_model(ckpt, am)) return app_fail("compare", ckpt);
        if (am->epoch >= L->epochs) {
            printf("== compare: reusing %s ==\n", ckpt);
            return APP_OK;
        }
        printf("== compare: %s stopped after %d of %d epochs ==\n", ckpt, am->epoch, L->epochs);
        app_free_model(am);
    }
    printf("== compare: training %s ==\n", name);
    int rc = app_train(n, args, 0);
    if (rc) return rc;
    return app_load_model(ckpt, am) ? app_fail("compare", ckpt) : APP_OK;
}

static int fail_tape(const lesson *L)
{
    fprintf(stderr, "nabla compare: %s\n", nb_tape_error(L->tp));
    return APP_FAIL;
}

/* "## N. title" in the report and a line on the terminal. */
static void section(lesson *L, const char *title)
{
    L->section++;
    fprintf(L->md, "## %d. %s\n\n", L->section, title);
    printf("== compare: %d. %s ==\n", L->section, title);
}

static int write_png(const lesson *L, const char *name, const char *title, const char *const *row_labels,
                     const char *const *col_labels, int n, const nb_tensor *const *ts, const int *rows, int cols)
{
    const img_text text = {title, row_labels, col_labels};
    return app_write_images("compare", L->out, name, &text, n, ts, rows, cols, 1, 28, 28);
}

/* The first n test images as an (n, 784) tensor. */
static nb_tensor *test_images(lesson *L, int64_t n)
{
    int64_t idx[1024];
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    nb_tensor *x = nb_empty(L->tp, NB_F32, NB_SHAPE(n, L->D));
    if (x && nb_dataset_images(&L->test, idx, n, x, NB_BIN_NONE, NULL)) return NULL;
    return x;
}

/* Flat images (n, 784) in the shape the model takes: (n, 1, 28, 28) for a conv net. */
static nb_tensor *as_input(lesson *L, const app_model *am, nb_tensor *flat)
{
    int64_t shape[NB_MAX_DIMS];
    const int nd = nb_model_input_shape(&am->m, flat ? nb_dim(flat, 0) : 0, shape);
    return nb_reshape(L->tp, flat, nd, shape);
}

/* The decoder's mean image for codes z, flat (n, 784). */
static nb_tensor *decode_flat(lesson *L, const app_model *am, nb_tensor *z, nb_tensor *y)
{
    nb_tensor *img = nb_model_mean(L->tp, &am->m, nb_model_decode(L->tp, &am->m, z, y));
    return nb_reshape(L->tp, img, NB_SHAPE(z ? nb_dim(z, 0) : 0, L->D));
}

/* Codes (posterior means) of flat images. */
static nb_tensor *encode_flat(lesson *L, const app_model *am, nb_tensor *flat)
{
    nb_tensor *mu, *lv;
    nb_model_encode(L->tp, &am->m, as_input(L, am, flat), NULL, &mu, &lv);
    return mu;
}

static const char *mname(const app_model *am, char *buf, size_t size) { return app_model_name(&am->cfg, buf, size); }

/* ---- PCA in 2-D ------------------------------------------------------------------------------ */

static int pca_toy(lesson *L)
{
    enum { NC = 400, NP = 5 };
    static double cx[NC], cy[NC];
    float cloud[2 * NC];
    nb_rng r = nb_rng_seed(5);
    nb_tensor *e = nb_randn(L->tp, &r, NB_F64, NB_SHAPE(NC, 2));
    if (!e) return fail_tape(L);
    for (int i = 0; i < NC; i++) { /* long axis at 30 degrees, standard deviations 1.5 and 0.4 */
        const double a = 1.5 * nb_get(e, 2 * i), b = 0.4 * nb_get(e, 2 * i + 1);
        cx[i] = 1 + a * cos(M_PI / 6) - b * sin(M_PI / 6), cy[i] = 0.5 + a * sin(M_PI / 6) + b * cos(M_PI / 6);
        cloud[2 * i] = (float)cx[i], cloud[2 * i + 1] = (float)cy[i];
    }
    double mean[2], comp[2], var[1];
    if (pca_fit(cloud, NC, 2, 1, mean, comp, var)) return app_fail("compare", "PCA in 2-D");
    const char *names[NP] = {"A", "B", "C", "D", "E"};
    const double px[NP] = {3.0, -1.2, 1.6, 0.0, 1.0}, py[NP] = {1.6, -0.6, -0.4, 1.4, 0.5};
    double qx[NP], qy[NP], z[NP];
    section(L, "PCA in 2-D: encoding and decoding a few points");
    fprintf(L->md, "%d points of a correlated Gaussian cloud; PCA with d = 1 keeps one number per point, its "
                   "coordinate along the principal axis u = (%.3f, %.3f) through the mean (%.2f, %.2f): encode "
                   "z = uᵀ(x − x̄), decode x̂ = x̄ + u z. The reconstruction is the point's projection onto the "
                   "line, and the error is the squared distance to it: what PCA throws away is the "
                   "direction of least variance.\n\n| point | x | z = uᵀ(x − x̄) | x̂ = x̄ + u z | ‖x − x̂‖² |\n"
                   "|---|---|---|---|---|\n", NC, comp[0], comp[1], mean[0], mean[1]);
    for (int i = 0; i < NP; i++) {
        const float p[2] = {(float)px[i], (float)py[i]};
        float q[2];
        pca_encode(mean, comp, 2, 1, p, &z[i]);
        pca_decode(mean, comp, 2, 1, &z[i], q);
        qx[i] = q[0], qy[i] = q[1];
        fprintf(L->md, "| %s | (%.2f, %.2f) | %.3f | (%.3f, %.3f) | %.4f |\n", names[i], px[i], py[i], z[i], qx[i], qy[i],
                (px[i] - qx[i]) * (px[i] - qx[i]) + (py[i] - qy[i]) * (py[i] - qy[i]));
    }
    const double ax[2] = {mean[0] - 5 * comp[0], mean[0] + 5 * comp[0]}, ay[2] = {mean[1] - 5 * comp[1], mean[1] + 5 * comp[1]};
    const plot_layer layers[5] = {
        {.label = "data", .x = cx, .y = cy, .n = NC, .colour = 0, .size = 0.5},
        {.label = "principal axis (d = 1)", .style = PLOT_LINE, .x = ax, .y = ay, .n = 2, .colour = 1},
        {.label = "encode, decode: x -> x̂", .style = PLOT_ARROWS, .x = px, .y = py, .x1 = qx, .y1 = qy, .n = NP, .colour = 4},
        {.label = "points x", .x = px, .y = py, .n = NP, .colour = 2, .size = 1.2, .names = names},
        {.label = "reconstructions x̂", .x = qx, .y = qy, .n = NP, .colour = 3, .size = 1.0},
    };
    const plot_panel panel = {"PCA with d = 1: encode onto the axis, decode to the projection", "x₁", "x₂", 5, layers};
    char path[600];
    if (app_out_path(L->out, "pca_2d.png", path, sizeof path) || plot_layers(path, 1, &panel))
        return app_fail("compare", "PCA in 2-D");
    printf("wrote %s\n", path);
    fprintf(L->md, "\n![PCA in 2-D](pca_2d.png)\n\n");
    return APP_OK;
}

/* ---- AE against PCA, and the linear AE ------------------------------------------------------- */

static int ae_vs_pca(lesson *L, app_model *ae)
{
    const int D = L->D;
    const int64_t ntest = L->test.n;
    double ae_mse[NAE] = {0};
    nb_tensor *rows[1 + 2 * NAE];
    const char *labels[1 + 2 * NAE];
    char names[2 * NAE][64];
    int ones[1 + 2 * NAE];
    nb_tape_reset(L->tp);
    nb_tensor *show = test_images(L, NSHOW);
    if (!show) return fail_tape(L);
    rows[0] = show, ones[0] = 1, labels[0] = "test images";
    float xr[D_MAX], xi[D_MAX];
    double z[PCA_K];
    for (int k = 0; k < NAE; k++) {
        nb_tensor *pr = nb_empty(L->tp, NB_F32, NB_SHAPE(NSHOW, D));
        L->pca_mse[k] = 0;
        for (int64_t i = 0; i < ntest; i++) {
            int64_t one = i;
            nb_tensor t1;
            nb_tensor_wrap(&t1, NB_F32, 2, (const int64_t[]){1, D}, xi);
            if (nb_dataset_images(&L->test, &one, 1, &t1, NB_BIN_NONE, NULL)) return app_fail("compare", NULL);
            pca_encode(L->mean, L->comp, D, ae_dims[k], xi, z);
            pca_decode(L->mean, L->comp, D, ae_dims[k], z, xr);
            for (int j = 0; j < D; j++) L->pca_mse[k] += (xr[j] - xi[j]) * (double)(xr[j] - xi[j]);
            if (i < NSHOW && pr)
                for (int j = 0; j < D; j++) nb_set(pr, i * D + j, xr[j]);
        }
        L->pca_mse[k] /= (double)ntest;
        nb_eval e;
        if (nb_model_evaluate(&ae[k].m, &L->test, 500, NB_BIN_NONE, NULL, 1, &e)) return app_fail("compare", "evaluate");
        ae_mse[k] = e.mse;
        rows[1 + k] = pr, ones[1 + k] = 1;
        rows[1 + NAE + k] = decode_flat(L, &ae[k], encode_flat(L, &ae[k], show), NULL), ones[1 + NAE + k] = 1;
        if (!rows[1 + NAE + k]) return fail_tape(L);
        snprintf(names[k], sizeof names[k], "PCA d=%d", ae_dims[k]);
        snprintf(names[NAE + k], sizeof names[NAE + k], "%sAE d=%d", L->arch, ae_dims[k]);
        labels[1 + k] = names[k], labels[1 + NAE + k] = names[NAE + k];
    }
    section(L, "Autoencoder against PCA");
    fprintf(L->md, "Test squared error per image (summed over the %d pixels, averaged over %lld test images). PCA is "
                   "computed with LAPACK on the %lld training images; the AEs are %s trained on squared error.\n\n"
                   "| d | PCA | AE | AE / PCA |\n|---|---|---|---|\n", D, (long long)ntest, (long long)L->train.n,
            ae[0].cfg.model.arch == NB_ARCH_CONV ? "conv nets (two stride-2 convolutions, a Linear code)"
                                                 : "MLPs 784-400-d-400-784");
    for (int k = 0; k < NAE; k++)
        fprintf(L->md, "| %d | %.2f | %.2f | %.2f |\n", ae_dims[k], L->pca_mse[k], ae_mse[k], ae_mse[k] / L->pca_mse[k]);
    fprintf(L->md, "\n![AE against PCA](ae_vs_pca.png)\n\nThe nonlinear AE bends its d-dimensional code surface "
                   "towards the data; PCA can only choose a flat one. The gap is widest at small d.\n\n");
    for (int k = 0; k < NAE; k++) printf("  d %-3d PCA %8.2f  AE %8.2f squared error per image\n", ae_dims[k], L->pca_mse[k], ae_mse[k]);
    return write_png(L, "ae_vs_pca.png", "Test images, then their PCA reconstructions and the AE's at d = 2, 4, 8, 16, 32",
                     labels, NULL, 1 + 2 * NAE, (const nb_tensor *const *)rows, ones, NSHOW);
}

static int linear_ae(lesson *L, app_model *lin)
{
    const int D = L->D, d = lin->cfg.model.latent;
    const nb_tensor *w = lin->m.dec.layer[lin->m.dec.n - 1].weight; /* (784, d): x̂ = W z + b */
    double *A = malloc((size_t)D * d * sizeof *A), *B = malloc((size_t)D * d * sizeof *B), cs[PCA_K];
    if (!A || !B) return free(A), free(B), app_fail("compare", "out of memory");
    for (int j = 0; j < D; j++)
        for (int k = 0; k < d; k++) A[j * d + k] = nb_get(w, j * d + k), B[j * d + k] = L->comp[k * D + j];
    nb_status st = subspace_cosines(A, B, D, d, d, cs);
    free(A), free(B);
    if (st) return app_fail("compare", "linear AE subspace");
    double worst = 0, dist2 = 0;
    for (int k = 0; k < d; k++) worst = fmax(worst, acos(cs[k]) * 180 / M_PI), dist2 += 1 - cs[k] * cs[k];
    nb_eval e;
    if (nb_model_evaluate(&lin->m, &L->test, 500, NB_BIN_NONE, NULL, 1, &e)) return app_fail("compare", "evaluate");
    int kp = -1;
    for (int k = 0; k < NAE; k++) kp = ae_dims[k] == d ? k : kp;
    nb_tape_reset(L->tp);
    nb_tensor *show = test_images(L, NSHOW), *pr = nb_empty(L->tp, NB_F32, NB_SHAPE(NSHOW, D));
    if (!show || !pr) return fail_tape(L);
    float xi[D_MAX], xr[D_MAX];
    double z[PCA_K];
    for (int i = 0; i < NSHOW; i++) {
        for (int j = 0; j < D; j++) xi[j] = (float)nb_get(show, i * D + j);
        pca_encode(L->mean, L->comp, D, d, xi, z);
        pca_decode(L->mean, L->comp, D, d, z, xr);
        for (int j = 0; j < D; j++) nb_set(pr, i * D + j, xr[j]);
    }
    nb_tensor *lr = decode_flat(L, lin, encode_flat(L, lin, show), NULL);
    if (!lr) return fail_tape(L);
    section(L, "The linear autoencoder spans PCA's subspace");
    fprintf(L->md, "An AE with no hidden layer, identity activation and identity output (`--hidden none --act "
                   "identity --output identity --decoder gaussian`) is two affine maps, x̂ = W_d (W_e x + b_e) + b_d, "
                   "trained on squared error (here for %d epochs at lr 0.003: it is cheap, and slow to converge). Its optimum is PCA's: the columns of W_d span the top-d principal "
                   "subspace, in another basis (neither orthonormal nor ordered by variance, so its codes are not "
                   "PCA's codes).\n\nAt d = %d the principal angles between the column space of W_d and PCA's top %d "
                   "components are %.1f° at most; the subspace distance ‖sin θ‖ is %.3f (0: the same subspace, "
                   "√%d = %.2f: orthogonal). cos θ, largest first:", lin->epoch, d, d, worst, sqrt(dist2), d,
            sqrt((double)d));
    for (int k = 0; k < d; k++) fprintf(L->md, "%s %.3f", k ? "," : "", cs[k]);
    fprintf(L->md, ". Test squared error per image: linear AE %.2f, PCA %.2f", e.mse, kp >= 0 ? L->pca_mse[kp] : NAN);
    const double ratio = kp >= 0 ? e.mse / L->pca_mse[kp] : NAN;
    if (ratio < 1.05)
        fprintf(L->md, ": within %.1f%% of each other, as at the optimum. The AE's gradient descent approaches it "
                       "from above, slowest along the directions of least variance, which show as the largest "
                       "angles.\n\n", 100 * fabs(ratio - 1));
    else
        fprintf(L->md, ": this run has not reached the optimum yet (%.2f times PCA's error; train longer, e.g. "
                       "`--epochs`), and the angles say how far its subspace still is from PCA's.\n\n", ratio);
    fprintf(L->md, "![The linear AE and PCA](linear_ae.png)\n\n");
    printf("  linear AE d=%d: largest principal angle to PCA's subspace %.1f degrees, distance %.3f; squared error %.2f "
           "(PCA %.2f)\n", d, worst, sqrt(dist2), e.mse, kp >= 0 ? L->pca_mse[kp] : NAN);
    char title[160], p1[32], p2[32];
    snprintf(title, sizeof title, "Test images, PCA and the linear AE at d = %d", d);
    snprintf(p1, sizeof p1, "PCA d=%d", d);
    snprintf(p2, sizeof p2, "linear AE d=%d", d);
    const nb_tensor *g[3] = {show, pr, lr};
    return write_png(L, "linear_ae.png", title, (const char *[]){"test images", p1, p2}, NULL, 3, g, (const int[]){1, 1, 1},
                     NSHOW);
}

/* ---- interpolation ------------------------------------------------------------------------- */

static int interpolation(lesson *L, app_model *ae, app_model *vae)
{
    enum { N = 10, A = 0, B = 1 };
    const int D = L->D, d = ae->cfg.model.latent;
    nb_tape_reset(L->tp);
    nb_tensor *x = test_images(L, 2), *pca = nb_empty(L->tp, NB_F32, NB_SHAPE(N, D));
    nb_tensor *za = nb_empty(L->tp, NB_F32, NB_SHAPE(N, d)), *zv = nb_empty(L->tp, NB_F32, NB_SHAPE(N, vae->cfg.model.latent));
    nb_tensor *ca = encode_flat(L, ae, x), *cv = encode_flat(L, vae, x);
    if (!pca || !za || !zv || !ca || !cv) return fail_tape(L);
    float xa[D_MAX], xb[D_MAX], xr[D_MAX];
    double pa[PCA_K], pb[PCA_K], pz[PCA_K];
    for (int j = 0; j < D; j++) xa[j] = (float)nb_get(x, A * D + j), xb[j] = (float)nb_get(x, B * D + j);
    pca_encode(L->mean, L->comp, D, d, xa, pa);
    pca_encode(L->mean, L->comp, D, d, xb, pb);
    char cols[N][16];
    const char *clab[N];
    for (int i = 0; i < N; i++) {
        const double t = (double)i / (N - 1);
        for (int k = 0; k < d; k++) pz[k] = (1 - t) * pa[k] + t * pb[k], nb_set(za, i * d + k, (1 - t) * nb_get(ca, k) + t * nb_get(ca, d + k));
        for (int k = 0; k < vae->cfg.model.latent; k++)
            nb_set(zv, i * vae->cfg.model.latent + k, (1 - t) * nb_get(cv, k) + t * nb_get(cv, vae->cfg.model.latent + k));
        pca_decode(L->mean, L->comp, D, d, pz, xr);
        for (int j = 0; j < D; j++) nb_set(pca, i * D + j, xr[j]);
        snprintf(cols[i], sizeof cols[i], "t=%.2g", t);
        clab[i] = cols[i];
    }
    nb_tensor *ra = decode_flat(L, ae, za, NULL), *rv = decode_flat(L, vae, zv, NULL);
    if (!ra || !rv) return fail_tape(L);
    char n1[32], n2[32], n3[64];
    snprintf(n1, sizeof n1, "PCA d=%d", d);
    snprintf(n2, sizeof n2, "%sAE d=%d", L->arch, d);
    mname(vae, n3, sizeof n3);
    section(L, "Interpolation: PCA beside the autoencoder");
    fprintf(L->md, "Decoding (1 − t)·z_a + t·z_b between the codes of two test images, at d = %d. PCA's decoder is "
                   "affine, so its path is the straight blend of the two projections: one image fades out as the "
                   "other fades in. The AE's decoder is not: the path bends through images of its own, which are "
                   "not always %ss. The VAE's (d = %d) stays among plausible ones, as its codes fill the space "
                   "between.\n\n![Interpolation: PCA, AE, VAE](interpolation.png)\n\n", d, L->noun,
            vae->cfg.model.latent);
    const nb_tensor *g[3] = {pca, ra, rv};
    return write_png(L, "interpolation.png", "Interpolating between test images 0 and 1 in code space",
                     (const char *[]){n1, n2, n3}, clab, 3, g, (const int[]){1, 1, 1}, N);
}

/* ---- generating from an AE ------------------------------------------------------------------- */

/* 32 samples from a full-covariance Gaussian fitted to the training codes of ae, decoded. */
static nb_tensor *fitted_samples(lesson *L, app_model *ae, int64_t nsamp)
{
    const int D = L->D, d = ae->cfg.model.latent;
    const int64_t ntr = L->train.n, nfit = ntr < FIT_CODES ? ntr : FIT_CODES;
    double *codes = malloc((size_t)nfit * d * sizeof *codes), gm[64], gl[64 * 64], eps[64], out[64];
    if (!codes) return NULL;
    int ok = 1;
    for (int64_t i0 = 0; i0 < nfit && ok; i0 += 500) {
        const int64_t b = nfit - i0 < 500 ? nfit - i0 : 500;
        nb_tape_reset(L->tp);
        nb_tensor t1;
        nb_tensor_wrap(&t1, NB_F32, 2, (const int64_t[]){b, D}, L->all + i0 * D);
        nb_tensor *mu = encode_flat(L, ae, &t1);
        if (!mu) ok = 0;
        for (int64_t i = 0; ok && i < b * d; i++) codes[i0 * d + i] = nb_get(mu, i);
    }
    nb_tape_reset(L->tp);
    if (ok && gauss_fit(codes, nfit, d, gm, gl)) ok = 0, app_fail("compare", "Gaussian fit");
    free(codes);
    if (!ok) return NULL;
    nb_rng r = nb_rng_seed(7);
    nb_tensor *zs = nb_empty(L->tp, NB_F32, NB_SHAPE(nsamp, d)), *e = nb_randn(L->tp, &r, NB_F64, NB_SHAPE(nsamp, d));
    for (int64_t s = 0; zs && e && s < nsamp; s++) {
        for (int j = 0; j < d; j++) eps[j] = nb_get(e, s * d + j);
        gauss_sample(gm, gl, d, eps, out);
        for (int j = 0; j < d; j++) nb_set(zs, s * d + j, out[j]);
    }
    return decode_flat(L, ae, zs, NULL);
}

static int generating(lesson *L, app_model *ae16, app_model *ae32, app_model *vae)
{
    enum { NS = 32 };
    nb_tensor *s16 = fitted_samples(L, ae16, NS);
    if (!s16) return fail_tape(L);
    /* the tape is reset per fit: copy the first grid out before the second */
    static float keep[NS * D_MAX];
    for (int64_t i = 0; i < NS * L->D; i++) keep[i] = (float)nb_get(s16, i);
    nb_tensor *s32 = fitted_samples(L, ae32, NS);
    if (!s32) return fail_tape(L);
    nb_tensor *g16 = nb_tensor_from(L->tp, NB_F32, NB_SHAPE(NS, L->D), keep, NS * L->D);
    nb_rng r = nb_rng_seed(7);
    nb_tensor *prior = decode_flat(L, ae16, nb_randn(L->tp, &r, NB_F32, NB_SHAPE(16, ae16->cfg.model.latent)), NULL);
    nb_tensor *vs = decode_flat(L, vae, nb_randn(L->tp, &r, NB_F32, NB_SHAPE(NS, vae->cfg.model.latent)), NULL);
    if (!g16 || !prior || !vs) return fail_tape(L);
    char l1[64], l2[64], l3[64], l4[64], vn[64];
    snprintf(l1, sizeof l1, "Gaussian fitted\nto AE d=%d codes", ae16->cfg.model.latent);
    snprintf(l2, sizeof l2, "Gaussian fitted\nto AE d=%d codes", ae32->cfg.model.latent);
    snprintf(l3, sizeof l3, "AE d=%d decoding\nz ~ N(0, I)", ae16->cfg.model.latent);
    snprintf(l4, sizeof l4, "%s\nprior samples", mname(vae, vn, sizeof vn));
    section(L, "Generating from an autoencoder");
    fprintf(L->md, "From the top: a full-covariance Gaussian N(μ̂, Σ̂) (Cholesky factor from LAPACK) fitted to the "
                   "training codes of the d = %d AE and of the d = %d AE, sampled and decoded (4 rows each); the d = %d "
                   "AE decoding z ~ N(0, I) (2 rows); samples from the prior of the %s (4 rows).\n\n"
                   "![AE with a fitted Gaussian against VAE samples](ae_gaussian_vs_vae.png)\n\n"
                   "Nothing in the AE's loss says where its codes should lie. Decoding N(0, I) shows it: the codes "
                   "live at another scale and in another place, and the decoder has never seen these points. Fitting "
                   "a Gaussian to the codes repairs the scale and the correlations, but not the shape: the codes form "
                   "clusters on a curved set, one Gaussian also covers the space between them, and samples from there "
                   "decode to blends of classes and smeared shapes beside the good ones; at d = %d more of the "
                   "Gaussian's volume lies off that set than at d = %d. The VAE's KL term pulls its codes towards "
                   "N(0, I) and its decoder is trained on noisy codes all around them, so its prior samples land "
                   "where the decoder knows what to draw.\n\n", ae16->cfg.model.latent, ae32->cfg.model.latent,
            ae16->cfg.model.latent, vn, ae32->cfg.model.latent, ae16->cfg.model.latent);
    const nb_tensor *g[4] = {g16, s32, prior, vs};
    return write_png(L, "ae_gaussian_vs_vae.png", "Generating: a Gaussian fitted to an AE's codes, N(0, I) into an AE, "
                     "and a VAE's prior", (const char *[]){l1, l2, l3, l4}, NULL, 4, g, (const int[]){4, 4, 2, 4}, 8);
}

/* ---- MSE gives the average ------------------------------------------------------------------- */

/* Completions of a partly hidden image x (784) by the VAE's posterior over the visible pixels,
 * p(z | x_visible) ∝ p(x_visible | z) p(z): K codes from the prior, weighted by the Bernoulli
 * likelihood of the visible pixels only, NDRAW of them drawn by those weights (systematic
 * resampling). Returns the effective sample size; writes the draws and the weighted mean. */
static double complete(const nb_model *vae, const nb_tensor *x, const nb_tensor *visible, int64_t i, nb_rng *r,
                       int K, int ndraw, double *draws, double *mean)
{
    enum { D = 784, KMAX = 1 << 16 };
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    nb_tensor *z = nb_randn(tp, r, NB_F32, NB_SHAPE(K, vae->cfg.latent));
    nb_tensor *logits = nb_reshape(tp, nb_model_decode(tp, vae, z, NULL), NB_SHAPE(K, D));
    nb_tensor *xi = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, D), (const float *)x->data + i * D, D);
    nb_tensor *vi = nb_tensor_from(tp, NB_F32, NB_SHAPE(1, D), (const float *)visible->data + i * D, D);
    /* -BCE = t·l - softplus(l), summed over the visible pixels */
    nb_tensor *ll = nb_sum(tp, nb_mul(tp, nb_sub(tp, nb_mul(tp, logits, xi), nb_softplus(tp, logits)), vi), NB_AXES(1), 0);
    nb_tensor *img = nb_sigmoid(tp, logits);
    double ess = 0;
    if (ll && img) {
        static double w[KMAX];
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
    nb_tensor *xc = nb_corrupt(L->tp, &c, x, 1, 28, 28, &r);
    /* the same draws on an all-ones image mark which pixels stayed visible */
    nb_tensor *visible = nb_corrupt(L->tp, &c, nb_full(L->tp, NB_F32, NB_SHAPE(NIMG, D), 1), 1, 28, 28, &same);
    nb_tensor *dae_out = decode_flat(L, dae, encode_flat(L, dae, xc), NULL);
    /* per image, one row: clean, corrupted, DAE, NDRAW posterior completions, their mean */
    const int cols = 4 + NDRAW;
    nb_tensor *grid = nb_zeros(L->tp, NB_F32, NB_SHAPE(NIMG * cols, D));
    if (!dae_out || !visible || !grid) return fail_tape(L);
    static double draws[NDRAW * D], mean[D];
    double ess[NIMG];
    for (int i = 0; i < NIMG; i++) {
        nb_rng ri = nb_rng_fork(&r, (uint64_t)i);
        ess[i] = complete(&vae->m, x, visible, i, &ri, (int)L->codes, NDRAW, draws, mean);
        const int64_t row = (int64_t)i * cols;
        for (int j = 0; j < D; j++) {
            nb_set(grid, (row + 0) * D + j, nb_get(x, i * D + j));
            nb_set(grid, (row + 1) * D + j, nb_get(xc, i * D + j));
            nb_set(grid, (row + 2) * D + j, nb_get(dae_out, i * D + j));
            for (int s = 0; s < NDRAW; s++) nb_set(grid, (row + 3 + s) * D + j, draws[s * D + j]);
            nb_set(grid, (row + 3 + NDRAW) * D + j, mean[j]);
        }
    }
    section(L, "MSE gives the average");
    fprintf(L->md, "Each row: a test image; the same with a 24x24 square blanked out; the denoising AE's output "
                   "(trained on that corruption with squared error); %d completions drawn from the posterior of the "
                   "d = %d VAE given the visible pixels only, p(z | x_visible) ∝ p(x_visible | z) p(z) (%ld codes "
                   "from the prior, weighted by the likelihood of the visible pixels, resampled); and the posterior "
                   "mean image.\n\n![MSE gives the average](mse_gives_the_average.png)\n\n"
                   "When most of a %s is hidden, many clean images fit what is left. Squared error is minimised by "
                   "their average, so the DAE draws one smooth compromise. The VAE keeps the uncertainty as a "
                   "distribution over codes: its draws are different %ss that all agree with the visible pixels, "
                   "and it is their *mean* that looks like the DAE's output. Effective sample sizes of the "
                   "weighting, per row:", NDRAW, vae->cfg.model.latent, L->codes, L->noun, L->noun);
    for (int i = 0; i < NIMG; i++) fprintf(L->md, "%s %.0f", i ? "," : "", ess[i]);
    fprintf(L->md, " (out of %ld; a small one means the visible pixels leave few codes).\n\n", L->codes);
    const char *clab[4 + NDRAW] = {"clean", "block:24", "DAE", "draw 1", "draw 2", "draw 3", "draw 4", "draw 5", "mean"};
    return write_png(L, "mse_gives_the_average.png", "A hidden square: the DAE's one answer against completions "
                     "drawn from a VAE's posterior", (const char *[]){"4 test images"}, clab, 1,
                     (const nb_tensor *const *)&grid, (const int[]){NIMG}, cols);
}

/* ---- VAE samples by d, and collapse diagnostics ---------------------------------------------- */

static int vae_samples(lesson *L, app_model *vae)
{
    nb_tape_reset(L->tp);
    nb_tensor *grids[NVAE];
    const char *labels[NVAE];
    char names[NVAE][64];
    int rows[NVAE];
    for (int k = 0; k < NVAE; k++) {
        nb_rng r = nb_rng_seed(11);
        grids[k] = nb_model_sample(L->tp, &vae[k].m, 32, NULL, &r);
        rows[k] = 4, labels[k] = mname(&vae[k], names[k], sizeof names[k]);
        if (!grids[k]) return fail_tape(L);
    }
    section(L, "VAE samples at d = 2, 5, 10, 20");
    fprintf(L->md, "Four rows per model, from the top: d = 2, 5, 10, 20 (as in Kingma & Welling's figure 5).\n\n"
                   "![VAE samples](vae_samples_by_d.png)\n\n");
    return write_png(L, "vae_samples_by_d.png", "Samples from the prior of VAEs with a latent space of 2, 5, 10 and 20 "
                     "dimensions", labels, NULL, NVAE, (const nb_tensor *const *)grids, rows, 8);
}

static int collapse(lesson *L, app_model *vae)
{
    section(L, "Collapse diagnostics");
    fprintf(L->md, "KL per latent dimension (nats, mean over test images, largest first) and active units "
                   "(Cov_x E[z_d|x] > 0.01, Burda et al.).\n\n"
                   "| d | test -ELBO | KL | active units | KL per dimension |\n|---|---|---|---|---|\n");
    int collapsed = 0;
    char active[200] = "";
    size_t used = 0;
    for (int k = 0; k < NVAE; k++) {
        nb_eval e;
        if (nb_model_evaluate(&vae[k].m, &L->test, 500, NB_BIN_NONE, NULL, 1, &e)) return app_fail("compare", "evaluate");
        double kd[256];
        const int d = e.latent < 256 ? e.latent : 256;
        memcpy(kd, e.kl_dim, (size_t)d * sizeof *kd);
        for (int i = 0; i < d; i++) /* largest first */
            for (int j = i + 1; j < d; j++)
                if (kd[j] > kd[i]) {
                    const double t = kd[i];
                    kd[i] = kd[j], kd[j] = t;
                }
        fprintf(L->md, "| %d | %.2f | %.2f | %d of %d | ", vae_dims[k], e.elbo_loss, e.kl, e.active_units, e.latent);
        for (int i = 0; i < d; i++) fprintf(L->md, "%s%.2f", i ? " " : "", kd[i]);
        fprintf(L->md, " |\n");
        collapsed += e.latent - e.active_units;
        used += (size_t)snprintf(active + used, sizeof active - used, "%s%d of %d", k ? ", " : "", e.active_units, e.latent);
        printf("  VAE d=%-2d test -ELBO %.2f nats per image, KL %.2f, %d/%d active units\n", vae_dims[k], e.elbo_loss, e.kl,
               e.active_units, e.latent);
    }
    if (collapsed)
        fprintf(L->md, "\nActive units: %s. Dimensions beyond what the data needs carry almost no KL: their posterior "
                       "equals the prior (collapsed), and the active units stop growing with d.\n\n", active);
    else
        fprintf(L->md, "\nActive units: %s. Every dimension is in use here: none has collapsed to the prior. (With "
                       "longer training and a larger d, the last dimensions' KL falls towards 0; the KL per dimension "
                       "above shows how unevenly the code is used already.)\n\n", active);
    return APP_OK;
}

/* ---- Gaussian decoders with a learned variance ----------------------------------------------- */

/* Per-pixel squared error e_j of the decoder mean at z ~ q(z|x) (as the ELBO draws it) over the
 * first n training images: the optimum of a learned variance, σ_j² = e_j (per pixel) or mean_j e_j
 * (shared). Also the mean of the log-variance the model predicts. */
static int pixel_mse(lesson *L, const app_model *am, int64_t n, double *e, double *mean_lv)
{
    const int D = L->D;
    for (int j = 0; j < D; j++) e[j] = 0;
    *mean_lv = 0;
    nb_rng root = nb_rng_seed(17);
    for (int64_t i0 = 0; i0 < n; i0 += 500) {
        const int64_t b = n - i0 < 500 ? n - i0 : 500;
        nb_tape_reset(L->tp);
        nb_tensor t1;
        nb_tensor_wrap(&t1, NB_F32, 2, (const int64_t[]){b, D}, L->all + i0 * D);
        nb_tensor *x = as_input(L, am, &t1);
        nb_rng r = nb_rng_fork(&root, (uint64_t)i0);
        nb_batch batch = {x, x, NULL};
        nb_loss_opts o = {.beta = 1, .rng = &r};
        nb_loss_terms t;
        if (nb_model_loss(L->tp, &am->m, &batch, &o, &t)) return fail_tape(L);
        nb_tensor *mean = nb_model_mean(L->tp, &am->m, t.out), *lv = nb_model_logvar(L->tp, &am->m, t.out);
        if (!mean || !lv) return fail_tape(L);
        const int64_t nlv = nb_numel(lv);
        for (int64_t i = 0; i < b; i++)
            for (int j = 0; j < D; j++) {
                const double dv = nb_get(mean, i * D + j) - nb_get(&t1, i * D + j);
                e[j] += dv * dv;
                *mean_lv += nb_get(lv, nlv == 1 ? 0 : nlv == D ? j : i * D + j);
            }
    }
    for (int j = 0; j < D; j++) e[j] /= (double)n;
    *mean_lv /= (double)n * D;
    return APP_OK;
}

static int decoders(lesson *L, app_model *dec, int ndec)
{
    const int D = L->D;
    const int64_t n = L->train.n < FIT_CODES ? L->train.n : FIT_CODES;
    static double e[D_MAX];
    section(L, "Gaussian decoders with a learned variance");
    fprintf(L->md, "p(x|z) = N(μ(z), σ²) with σ² learned: one value for all pixels (`--decoder gaussian-shared`), "
                   "one per pixel (`gaussian-pixel`), or an output of the network, log σ²(z) = W₃ᵀh + b₃ from the "
                   "decoder's last hidden layer h (`gaussian-head`). The learned log-variance starts at the data's "
                   "(the log of each pixel's variance over the training images, or of their mean), not at 0: from "
                   "σ = 1, Adam at lr 1e-3 moves it about 0.001 a step and needs thousands of steps to reach the "
                   "optimum. For a fixed decoder mean the optimum is the squared error itself: σ² = E‖x − μ(z)‖²/D "
                   "for the shared value, σ_j² = E(x_j − μ_j(z))² per pixel, z drawn from q(z|x) as in training; "
                   "here over %lld training images.\n\n"
                   "| decoder | test -ELBO | learned log σ² (mean over pixels) | optimum log σ² | learned σ² | "
                   "optimum σ² |\n|---|---|---|---|---|---|\n", (long long)n);
    nb_tape_reset(L->tp);
    nb_tensor *show = test_images(L, NSHOW);
    static float keep[3][2][NSHOW * D_MAX];
    double shared_sigma[3] = {0}, worst_gap = 0;
    for (int k = 0; k < ndec; k++) {
        double lv_mean, opt = 0, opt_shared = 0;
        if (pixel_mse(L, &dec[k], n, e, &lv_mean)) return APP_FAIL;
        const nb_model_cfg *c = &dec[k].cfg.model;
        for (int j = 0; j < D; j++) {
            double lj = log(fmax(e[j], 1e-30));
            if (c->logvar_min < c->logvar_max) lj = fmin(fmax(lj, c->logvar_min), c->logvar_max);
            opt += lj / D, opt_shared += e[j] / D;
        }
        if (c->decoder == NB_DEC_GAUSSIAN_SHARED) opt = log(opt_shared);
        nb_eval ev;
        if (nb_model_evaluate(&dec[k].m, &L->test, 500, NB_BIN_NONE, NULL, 1, &ev)) return app_fail("compare", "evaluate");
        static const char *const what[] = {"", "", "shared", "per pixel", "a head, log σ²(z)"};
        fprintf(L->md, "| %s | %.2f | %.3f | %.3f | %.4f | %.4f |\n", what[c->decoder], ev.elbo_loss, lv_mean, opt,
                exp(lv_mean), exp(opt));
        printf("  decoder %s: learned log variance %.3f (mean over pixels), optimum %.3f\n", what[c->decoder], lv_mean, opt);
        worst_gap = fmax(worst_gap, fabs(lv_mean - opt));
        /* the test images' reconstructions and σ, for the picture */
        nb_tape_reset(L->tp);
        show = test_images(L, NSHOW);
        nb_tensor *mu, *lvz;
        nb_model_encode(L->tp, &dec[k].m, as_input(L, &dec[k], show), NULL, &mu, &lvz);
        nb_tensor *out = nb_model_decode(L->tp, &dec[k].m, mu, NULL);
        nb_tensor *m = nb_reshape(L->tp, nb_model_mean(L->tp, &dec[k].m, out), NB_SHAPE(NSHOW, D));
        nb_tensor *lv = nb_model_logvar(L->tp, &dec[k].m, out);
        if (!m || !lv) return fail_tape(L);
        const int64_t nlv = nb_numel(lv);
        for (int64_t i = 0; i < NSHOW; i++) { /* σ per image, white at its largest */
            double smax = 0;
            for (int64_t j = i * D; j < (i + 1) * D; j++) smax = fmax(smax, exp(0.5 * nb_get(lv, nlv == 1 ? 0 : j % nlv)));
            for (int64_t j = i * D; j < (i + 1) * D; j++) {
                keep[k][0][j] = (float)nb_get(m, j);
                keep[k][1][j] = (float)(exp(0.5 * nb_get(lv, nlv == 1 ? 0 : j % nlv)) / smax);
            }
        }
        shared_sigma[k] = exp(0.5 * nb_get(lv, 0));
    }
    fprintf(L->md, "\n%s The per-pixel and head variants find small variances at the border, which is always "
                   "dark, and large ones where the %ss differ. The picture shows, for each decoder, the mean "
                   "reconstruction of test images and σ as an image (white: the largest σ of that image).\n\n"
                   "![Gaussian decoders](decoders.png)\n\n",
            worst_gap < 0.3 ? "Each learned log-variance sits within 0.3 of its optimum: the model finds its own "
                              "balance between reconstruction and KL."
                            : "Not every learned log-variance has reached its optimum in this run (the largest gap "
                              "is in the table); with its start at the data's variance a few epochs more close it.",
            L->noun);
    nb_tape_reset(L->tp);
    show = test_images(L, NSHOW);
    nb_tensor *g[1 + 6];
    const char *labels[1 + 6];
    char names[6][64];
    int rows[1 + 6], ng = 1;
    g[0] = show, rows[0] = 1, labels[0] = "test images";
    static const char *const short_name[] = {"", "", "shared σ", "per-pixel σ", "σ(z) head"};
    for (int k = 0; k < ndec; k++) /* a shared σ is one number: its label says it, no picture */
        for (int part = 0; part < (dec[k].cfg.model.decoder == NB_DEC_GAUSSIAN_SHARED ? 1 : 2); part++) {
            g[ng] = nb_tensor_from(L->tp, NB_F32, NB_SHAPE(NSHOW, D), keep[k][part], NSHOW * D);
            if (dec[k].cfg.model.decoder == NB_DEC_GAUSSIAN_SHARED)
                snprintf(names[ng - 1], sizeof names[0], "shared σ = %.3f:\nmean", shared_sigma[k]);
            else
                snprintf(names[ng - 1], sizeof names[0], "%s:\n%s", short_name[dec[k].cfg.model.decoder],
                         part ? "σ (white: the\nimage's largest)" : "mean");
            labels[ng] = names[ng - 1], rows[ng] = 1, ng++;
        }
    return write_png(L, "decoders.png", "Gaussian decoders: the mean of p(x|z) and its learned σ for test images",
                     labels, NULL, ng, (const nb_tensor *const *)g, rows, NSHOW);
}

/* ---- CVAE: the code carries the class --------------------------------------------------------- */

/* Samples of a CVAE, one row per class, one shared z per column; *effect: the variance between
 * classes (down a column) over the variance between codes (along a row), summed over pixels. */
static nb_tensor *class_grid(lesson *L, const app_model *cv, int n, double *effect)
{
    const int K = cv->cfg.model.nclasses, d = cv->cfg.model.latent, D = L->D;
    nb_rng r = nb_rng_seed(21);
    nb_tensor *z = nb_randn(L->tp, &r, NB_F32, NB_SHAPE(1, n, d));
    z = nb_reshape(L->tp, nb_expand(L->tp, z, NB_SHAPE(K, n, d)), NB_SHAPE((int64_t)K * n, d));
    int lab[64 * 16];
    for (int i = 0; i < K * n; i++) lab[i] = i / n;
    nb_tensor *img = decode_flat(L, cv, z, app_onehot(L->tp, (int64_t)K * n, K, lab));
    if (!img) return NULL;
    double between = 0, within = 0;
    for (int j = 0; j < D; j++) {
        for (int c = 0; c < n; c++) { /* down column c: the classes at one z */
            double s = 0, s2 = 0;
            for (int k = 0; k < K; k++) s += nb_get(img, (k * n + c) * D + j), s2 += pow(nb_get(img, (k * n + c) * D + j), 2);
            between += (s2 / K - (s / K) * (s / K)) / n;
        }
        for (int k = 0; k < K; k++) { /* along row k: the codes at one class */
            double s = 0, s2 = 0;
            for (int c = 0; c < n; c++) s += nb_get(img, (k * n + c) * D + j), s2 += pow(nb_get(img, (k * n + c) * D + j), 2);
            within += (s2 / n - (s / n) * (s / n)) / K;
        }
    }
    *effect = between / within;
    return img;
}

static int cvae(lesson *L, app_model *big, app_model *small)
{
    enum { N = 8 };
    const int K = big->cfg.model.nclasses;
    if (K > 16) return APP_OK;
    nb_tape_reset(L->tp);
    double eb, es;
    nb_tensor *gb = class_grid(L, big, N, &eb), *gs = class_grid(L, small, N, &es);
    if (!gb || !gs) return fail_tape(L);
    nb_tensor *parts[2 * 16];
    const char *labels[2 * 16];
    char names[2 * 16][48], cname[32];
    int rows[2 * 16];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < K; k++) {
            parts[s * K + k] = nb_slice(L->tp, s ? gs : gb, 0, (int64_t)k * N, (int64_t)(k + 1) * N, 1);
            char head[16] = "";
            if (!k) snprintf(head, sizeof head, "d=%d: ", (s ? small : big)->cfg.model.latent);
            snprintf(names[s * K + k], sizeof names[0], "%s%s", head, app_class_name(L->data, k, cname, sizeof cname));
            labels[s * K + k] = names[s * K + k], rows[s * K + k] = 1;
        }
    section(L, "The conditional VAE: when the code carries the class");
    fprintf(L->md, "Samples of two CVAEs, one row per class and one z ~ N(0, I) per column, shared down the column: "
                   "at d = %d (top) and d = %d (bottom). A CVAE should draw the class it is given, with z keeping the "
                   "style. At d = %d the encoder sees the image, so z alone can carry the class, and nothing in the "
                   "loss makes the decoder prefer y: each column keeps one shape down the rows, whatever y says (the "
                   "known failure \"the code carries the class\"; a PyTorch CVAE of the same shape does the same). "
                   "With d = 2 the code has no room for the class and the style both, and the decoder must take the "
                   "class from y: the rows follow their classes.\n\n"
                   "How much the class changes an image, against how much the code does (variance down the columns "
                   "over variance along the rows, summed over pixels): %.2f at d = %d, %.2f at d = %d (larger: the "
                   "rows follow y more)%s.\n\n![CVAE samples by class](cvae_by_class.png)\n\n",
            big->cfg.model.latent, small->cfg.model.latent, big->cfg.model.latent, eb, big->cfg.model.latent, es,
            small->cfg.model.latent, es > eb ? "" : "; in this run the small code does not follow y more yet: train longer");
    printf("  CVAE class effect (between classes / between codes): d=%d %.2f, d=%d %.2f\n", big->cfg.model.latent, eb,
           small->cfg.model.latent, es);
    char title[160];
    snprintf(title, sizeof title, "CVAE samples, one row per class, one z per column: at d = %d (top) and d = %d "
             "(bottom)", big->cfg.model.latent, small->cfg.model.latent);
    return write_png(L, "cvae_by_class.png", title, labels, NULL, 2 * K, (const nb_tensor *const *)parts, rows, N);
}

/* ---- β-VAE traversals ------------------------------------------------------------------------- */

static int traversals(lesson *L, const char *const *dirs, int n)
{
    section(L, "β-VAE: latent traversals");
    fprintf(L->md, "`nabla traverse`: one row per latent dimension, largest KL first, decoding the code of a test "
                   "image with that one dimension run from −3 to 3 and the others fixed. With β = 1 several "
                   "dimensions change the same things at once; with β > 1 the KL term presses harder towards the "
                   "factorised prior, fewer dimensions stay active (the rows with KL near 0 change nothing), and each "
                   "active one tends to change one thing: width, slant, brightness, shape. Higgins et al. pay for "
                   "it in reconstruction.\n\n");
    for (int k = 0; k < n; k++) {
        char ckpt[700];
        snprintf(ckpt, sizeof ckpt, "%s/%s/checkpoint.safetensors", L->out, dirs[k]);
        char outdir[700];
        snprintf(outdir, sizeof outdir, "%s/%s", L->out, dirs[k]);
        char neval[32];
        snprintf(neval, sizeof neval, "%lld", (long long)(L->test.n < 1000 ? L->test.n : 1000));
        const char *args[] = {"--checkpoint", ckpt, "--out", outdir, "--data", L->data, "--eval", neval, NULL};
        const int rc = cmd_traverse(8, (char **)args);
        if (rc) return rc;
        fprintf(L->md, "![traversals of %s](%s/traverse.png)\n\n", dirs[k], dirs[k]);
    }
    return APP_OK;
}

/* ---- the lesson -------------------------------------------------------------------------------- */

static int fit_pca(lesson *L)
{
    const int D = L->D;
    const int64_t ntr = L->train.n;
    L->all = malloc((size_t)ntr * (size_t)D * sizeof *L->all);
    L->mean = malloc((size_t)D * sizeof *L->mean), L->comp = malloc((size_t)PCA_K * D * sizeof *L->comp);
    int64_t *idx = malloc((size_t)ntr * sizeof *idx);
    if (!L->all || !L->mean || !L->comp || !idx) return free(idx), app_fail("compare", "out of memory");
    for (int64_t i = 0; i < ntr; i++) idx[i] = i;
    nb_tensor tall;
    nb_tensor_wrap(&tall, NB_F32, 2, (const int64_t[]){ntr, D}, L->all);
    const nb_status st = nb_dataset_images(&L->train, idx, ntr, &tall, NB_BIN_NONE, NULL);
    free(idx);
    if (st) return app_fail("compare", NULL);
    printf("== compare: PCA of %lld training images (LAPACK) ==\n", (long long)ntr);
    return pca_fit(L->all, ntr, D, ntr > PCA_K ? PCA_K : (int)ntr - 1, L->mean, L->comp, L->var)
               ? app_fail("compare", "PCA") : APP_OK;
}

/* Every model of the lesson. */
enum { M_AE = 0, M_VAE = M_AE + NAE, M_DAE = M_VAE + NVAE, M_LIN, M_GSHARED, M_GPIXEL, M_GHEAD, M_CVAE20, M_CVAE2,
       M_BVAE, NMODELS };

static int train_all(lesson *L, app_model *am)
{
    char dname[32], dval[16];
    int rc = APP_OK;
    for (int k = 0; k < NAE && !rc; k++) {
        snprintf(dname, sizeof dname, "ae_d%d", ae_dims[k]);
        snprintf(dval, sizeof dval, "%d", ae_dims[k]);
        rc = train(L, dname, (const char *[]){"--model", "ae", "--decoder", "gaussian", "--latent", dval, NULL}, &am[M_AE + k]);
    }
    for (int k = 0; k < NVAE && !rc; k++) {
        snprintf(dname, sizeof dname, "vae_d%d", vae_dims[k]);
        snprintf(dval, sizeof dval, "%d", vae_dims[k]);
        rc = train(L, dname, (const char *[]){"--model", "vae", "--latent", dval, NULL}, &am[M_VAE + k]);
    }
    /* learned variances: clamped, as a near-constant pixel's optimum is σ → 0 */
    static const char *const runs[][20] = {
        {"dae_block24", "--model", "dae", "--decoder", "gaussian", "--latent", "20", "--corrupt", LESSON_CORRUPT},
        {"linear_ae_d16", "--model", "ae", "--arch", "mlp", "--hidden", "none", "--act", "identity", "--output", "identity",
         "--decoder", "gaussian", "--latent", "16", "--lr", "0.003"},
        {"vae_gaussian_shared", "--model", "vae", "--decoder", "gaussian-shared", "--latent", "20"},
        {"vae_gaussian_pixel", "--model", "vae", "--decoder", "gaussian-pixel", "--latent", "20", "--logvar-min", "-6",
         "--logvar-max", "2"},
        {"vae_gaussian_head", "--model", "vae", "--decoder", "gaussian-head", "--latent", "20", "--logvar-min", "-6",
         "--logvar-max", "2"},
        {"cvae_d20", "--model", "cvae", "--latent", "20"},
        {"cvae_d2", "--model", "cvae", "--latent", "2"},
        {"beta_vae_d10", "--model", "vae", "--latent", "10", "--beta", "4"},
    };
    for (int k = 0; k < NMODELS - M_DAE && !rc; k++) {
        /* the linear AE is two matrices, cheap per epoch and slow to converge along the directions of
         * least variance: ten times the epochs */
        char ep[32];
        snprintf(ep, sizeof ep, "%d", 10 * L->epochs);
        const char *extra[24];
        int n = 0;
        for (; runs[k][n + 1]; n++) extra[n] = runs[k][n + 1];
        if (M_DAE + k == M_LIN) extra[n++] = "--epochs", extra[n++] = ep;
        extra[n] = NULL;
        const int saved = L->epochs;
        if (M_DAE + k == M_LIN) L->epochs *= 10; /* what --reuse expects of it */
        rc = train(L, runs[k][0], extra, &am[M_DAE + k]);
        L->epochs = saved;
    }
    return rc;
}

static int lessons(lesson *L, app_model *am)
{
    int rc = pca_toy(L);
    if (!rc) rc = ae_vs_pca(L, am + M_AE);
    if (!rc) rc = linear_ae(L, &am[M_LIN]);
    if (!rc) rc = interpolation(L, &am[M_AE + AE32], &am[M_VAE + VAE20]);
    if (!rc) rc = generating(L, &am[M_AE + AE16], &am[M_AE + AE32], &am[M_VAE + VAE20]);
    if (!rc) rc = mse_average(L, &am[M_DAE], &am[M_VAE + VAE20]);
    if (!rc) {
        section(L, "Denoising in 2-D");
        fprintf(L->md, "A small DAE (2-64-64-2, tanh) trained on points of a closed curve plus N(0, 0.25²): the noisy "
                       "inputs, the DAE's outputs for them, and its map on a grid, an arrow from each point to its "
                       "output. The outputs fall back towards the curve, but onto its smoothed, shrunk version: MSE "
                       "gives the average of the clean points that could have produced each input, and near the "
                       "curve's tight bends those lie on both sides.\n\n![Denoising in 2-D](denoise_toy.png)\n\n");
        rc = app_denoise_toy(L->out, 1, 0.25, (int)L->toy_steps);
    }
    if (!rc) rc = vae_samples(L, am + M_VAE);
    if (!rc) rc = collapse(L, am + M_VAE);
    if (!rc) rc = decoders(L, &am[M_GSHARED], 3);
    if (!rc) rc = cvae(L, &am[M_CVAE20], &am[M_CVAE2]);
    if (!rc) rc = traversals(L, (const char *[]){"vae_d10", "beta_vae_d10"}, 2);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    app_flag flags[] = {
        {.name = "out", .help = "where the report, its pictures and every model's folder go", .def = "out/compare"},
        {.name = "reuse", .help = "load the models a previous run trained into --out", .is_switch = 1},
        {.name = "toy-steps", .help = "training steps of the 2-D denoising toy", .def = "3000"},
        {.name = "codes", .help = "codes from the prior weighed for the completions of \"MSE gives the average\"",
         .def = "4096"},
    };
    const int nf = sizeof flags / sizeof flags[0];
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "compare", "The whole course side by side: PCA in 2-D, AE against PCA at d = 2..32, "
                       "the linear AE and PCA's subspace, interpolation, generating from an AE, \"MSE gives the "
                       "average\", denoising in 2-D, VAE samples and collapse, learned Gaussian decoders, the CVAE's "
                       "code carrying the class, β-VAE traversals; report.md, its pictures and one folder per model "
                       "under --out. Configuration keys (--arch, --epochs, --train-size, --threads, ...) apply to "
                       "every model it trains.", flags, nf, &cfg, NULL);
    if (rc) return rc < 0 ? APP_OK : rc;
    int bad = 0;
    lesson L = {.reuse = flags[1].count, .epochs = cfg.epochs, .argc = argc, .argv = argv, .out = app_flag_str(flags, nf, "out"),
                .data = cfg.data, .noun = app_data_noun(cfg.data),
                .toy_steps = app_flag_long(flags, nf, "toy-steps", 3000, &bad),
                .codes = app_flag_long(flags, nf, "codes", 4096, &bad)};
    if (bad || L.toy_steps < 1 || L.codes < 16 || L.codes > 65536)
        return app_usage("compare", "--toy-steps must be a positive integer, --codes 16 to 65536");
    app_data_name(cfg.data, L.dname, sizeof L.dname);
    snprintf(L.arch, sizeof L.arch, "%s", cfg.model.arch == NB_ARCH_CONV ? "conv " : "");
    if (nb_dataset_load(&L.train, cfg.data, "train") || nb_dataset_load(&L.test, cfg.data, "t10k"))
        return app_fail("compare", NULL);
    if (L.train.channels != 1 || L.train.rows != 28 || L.train.cols != 28) {
        nb_dataset_free(&L.train), nb_dataset_free(&L.test);
        nb_error(NB_ERR_ARG, "the lesson is laid out for 28x28 grey images");
        return app_fail("compare", NULL);
    }
    L.D = 28 * 28;
    if (cfg.train_size && cfg.train_size < L.train.n) L.train.n = cfg.train_size; /* a view */
    if (cfg.test_size && cfg.test_size < L.test.n) L.test.n = cfg.test_size;
    char path[600];
    app_model am[NMODELS] = {0};
    L.tp = nb_tape_new();
    nb_tape_set_grad(L.tp, 0);
    if (app_out_path(L.out, "report.md", path, sizeof path) || !(L.md = fopen(path, "w"))) rc = app_fail("compare", "report.md");
    if (!rc) rc = fit_pca(&L);
    if (!rc) rc = train_all(&L, am);
    if (!rc) {
        fprintf(L.md, "# Autoencoders side by side on %s (%s)\n\nAll losses in nats per image or squared error per "
                      "image (sums over pixels, means over images). Each model's folder holds its config.json, "
                      "metrics.csv, loss_curve.png and checkpoint; `nabla compare --reuse` rebuilds this report "
                      "from them.\n\n", L.dname, cfg.model.arch == NB_ARCH_CONV ? "conv nets" : "MLPs");
        rc = lessons(&L, am);
    }
    if (L.md) fclose(L.md);
    if (!rc) printf("wrote %s\n", path);
    for (int k = 0; k < NMODELS; k++) app_free_model(&am[k]);
    nb_tape_free(L.tp);
    nb_dataset_free(&L.train);
    nb_dataset_free(&L.test);
    free(L.all), free(L.mean), free(L.comp);
    return rc;
}
