/* tests/test_zoo_obj.c — the VAE's objectives (iwae, tcvae, wae, infovae): whole-loss f64
 * gradient checks, their values against plain loops written here from the formulas, IWAE-1 =
 * the ELBO, a few steps of training each, and the training features around them (config keys,
 * kl-cycle's β, --valid's best.safetensors, the refusals). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla/models.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

enum { B = 3, D = 2, K = 4, NDATA = 10 }; /* batch, latent dims, IWAE samples, tcvae's N */

static nb_model_cfg tiny(nb_arch arch)
{
    nb_model_cfg c = nb_model_defaults();
    c.channels = 1, c.height = 3, c.width = 4, c.latent = D, c.nhidden = 1, c.hidden[0] = 5, c.act = NB_ACT_TANH;
    if (arch == NB_ARCH_CONV) c.arch = arch, c.height = 8, c.width = 8, c.conv1 = 2, c.conv2 = 3;
    return c;
}

static nb_loss_opts opts(nb_objective obj)
{
    nb_loss_opts o = nb_loss_defaults();
    o.objective = obj, o.samples = K, o.dataset_size = NDATA;
    o.tc_alpha = 0.7, o.tc_beta = 3, o.tc_gamma = 1.3, o.beta = 1.5;
    o.mmd_lambda = obj == NB_OBJ_INFOVAE ? 5 : 0; /* 0: WAE's default 10 */
    return o;
}

/* ---- gradient checks ----------------------------------------------------------------------- */

typedef struct gc_ctx {
    nb_model m;
    nb_objective obj;
} gc_ctx;

static nb_tensor *build(nb_tape *tp, nb_tensor **in, void *ctx)
{
    const gc_ctx *c = ctx;
    nb_loss_opts o = opts(c->obj);
    o.eps = in[1], o.prior = in[2];
    nb_batch b = {in[0], in[0], NULL};
    nb_loss_terms t;
    nb_model_loss(tp, &c->m, &b, &o, &t);
    return t.loss;
}

static void test_gradients(void)
{
    const struct { nb_objective obj; nb_arch arch; const char *label; } cs[] = {
        {NB_OBJ_IWAE, NB_ARCH_MLP, "IWAE-4 (MLP)"},      {NB_OBJ_IWAE, NB_ARCH_CONV, "IWAE-4 (conv)"},
        {NB_OBJ_TCVAE, NB_ARCH_MLP, "beta-TCVAE (MLP)"}, {NB_OBJ_TCVAE, NB_ARCH_CONV, "beta-TCVAE (conv)"},
        {NB_OBJ_WAE, NB_ARCH_MLP, "WAE-MMD (MLP)"},      {NB_OBJ_INFOVAE, NB_ARCH_MLP, "InfoVAE (MLP)"},
        {NB_OBJ_INFOVAE, NB_ARCH_CONV, "InfoVAE (conv)"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        gc_ctx c = {.obj = cs[i].obj};
        nb_model_cfg cfg = tiny(cs[i].arch);
        nb_params *ps = nb_params_new(NB_F64);
        nb_rng r = nb_rng_seed(40 + i);
        if (!ok(nb_model_init(&c.m, &cfg, ps, &r) == NB_OK, "%s: builds (%s)", cs[i].label, nb_last_error())) continue;
        nb_gradcheck_case g = {.label = cs[i].label, .build = build, .ctx = &c, .nin = 3, .params = ps,
                               .seed = 70 + (unsigned)i, .tol = 1e-6};
        int64_t xs[NB_MAX_DIMS];
        const int nd = nb_model_input_shape(&c.m, B, xs);
        g.in[0] = (nb_gc_input){.ndim = nd, .dom = NB_GC_UNIT};
        memcpy(g.in[0].shape, xs, sizeof xs);
        /* ε fixed (the reparameterisation's noise), and the prior's samples */
        g.in[1] = (nb_gc_input){.ndim = 1, .shape = {B * (cs[i].obj == NB_OBJ_IWAE ? K : 1) * D}, .dom = NB_GC_CONST};
        g.in[2] = (nb_gc_input){.ndim = 2, .shape = {B, D}, .dom = NB_GC_CONST};
        gc_tap(&g);
        nb_params_free(ps);
    }
}

/* ---- values against plain loops ------------------------------------------------------------ */

static double log_normal(double v, double mean, double lv) { return -0.5 * (log(2 * M_PI) + lv + (v - mean) * (v - mean) / exp(lv)); }

static double logsumexp(const double *v, int n)
{
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, v[i]);
    for (int i = 0; i < n; i++) s += exp(v[i] - mx);
    return mx + log(s);
}

/* -log p(x_i|z) for one code, by the model's own decoder (what is checked is the objective) */
static double nll_of(const nb_model *m, nb_tape *tp, const double *z, const nb_tensor *x, int i)
{
    const int64_t n = m->in_dim;
    nb_tensor *zt = nb_tensor_from(tp, NB_F64, NB_SHAPE(1, D), z, D);
    nb_tensor *xt = nb_tensor_from(tp, NB_F64, NB_SHAPE(1, n), (const double *)x->data + i * n, n);
    return nb_get(nb_model_nll(tp, m, nb_model_decode(tp, m, zt, NULL), xt), 0);
}

/* the IMQ kernel over the seven scales, as the formula has it */
static double imq(const double *a, const double *b)
{
    static const double s[7] = {0.1, 0.2, 0.5, 1, 2, 5, 10};
    double d2 = 0, k = 0;
    for (int j = 0; j < D; j++) d2 += (a[j] - b[j]) * (a[j] - b[j]);
    for (int i = 0; i < 7; i++) k += 2.0 * D * s[i] / (2.0 * D * s[i] + d2);
    return k;
}

static void test_values(void)
{
    nb_model_cfg cfg = tiny(NB_ARCH_MLP);
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(11);
    nb_model m;
    nb_model_init(&m, &cfg, ps, &r);
    nb_tape *tp = nb_tape_new();
    nb_tape_set_grad(tp, 0);
    nb_tensor *x = nb_uniform(tp, &r, NB_F64, NB_SHAPE(B, 12), 0.05, 0.95);
    double eps[B * K * D], prior[B * D], mu[B * D], lv[B * D];
    for (int i = 0; i < B * K * D; i++) eps[i] = sin(1.7 * i + 0.3) * 1.5;
    for (int i = 0; i < B * D; i++) prior[i] = cos(2.3 * i + 0.1) * 1.2;
    nb_tensor *mu_t, *lv_t;
    nb_model_encode(tp, &m, x, NULL, &mu_t, &lv_t);
    for (int i = 0; i < B * D; i++) mu[i] = nb_get(mu_t, i), lv[i] = nb_get(lv_t, i);
    nb_batch b = {x, x, NULL};
    nb_loss_terms t;

    /* IWAE-K: z_ik = μ_i + σ_i ε_ik, row-major (B, K, d) */
    nb_loss_opts o = opts(NB_OBJ_IWAE);
    o.eps = nb_tensor_from(tp, NB_F64, NB_SHAPE(B * K * D), eps, B * K * D);
    nb_model_loss(tp, &m, &b, &o, &t);
    double want = 0, bound0 = 0;
    for (int i = 0; i < B; i++) {
        double lw[K];
        for (int k = 0; k < K; k++) {
            double z[D];
            lw[k] = 0;
            for (int j = 0; j < D; j++) {
                z[j] = mu[i * D + j] + exp(0.5 * lv[i * D + j]) * eps[(i * K + k) * D + j];
                lw[k] += log_normal(z[j], 0, 0) - log_normal(z[j], mu[i * D + j], lv[i * D + j]);
            }
            lw[k] -= nll_of(&m, tp, z, x, i);
        }
        const double bi = -(logsumexp(lw, K) - log((double)K));
        want += bi / B;
        if (i == 0) bound0 = bi;
    }
    ok(t.loss && fabs(nb_get(t.loss, 0) - want) < 1e-10 && fabs(nb_get(t.bound, 0) - bound0) < 1e-10,
       "IWAE-%d loss %.12f = the plain loop's %.12f", K, t.loss ? nb_get(t.loss, 0) : NAN, want);

    /* IWAE with K = 1 is the ELBO with its KL estimated by the sample: the ELBO's reconstruction
     * at the same ε plus log q(z|x) - log p(z) at that z */
    o.samples = 1, o.eps = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), eps, B * D);
    nb_model_loss(tp, &m, &b, &o, &t);
    const double iwae1 = t.loss ? nb_get(t.loss, 0) : NAN;
    nb_loss_opts e = {.beta = 1, .eps = o.eps};
    nb_model_loss(tp, &m, &b, &e, &t);
    double elbo1 = 0;
    for (int i = 0; i < B; i++) {
        double kl1 = 0;
        for (int j = 0; j < D; j++) {
            const double z = mu[i * D + j] + exp(0.5 * lv[i * D + j]) * eps[i * D + j];
            kl1 += log_normal(z, mu[i * D + j], lv[i * D + j]) - log_normal(z, 0, 0);
        }
        elbo1 += (nb_get(t.recon, i) + kl1) / B;
    }
    ok(fabs(iwae1 - elbo1) < 1e-10, "IWAE-1 %.12f = the ELBO's reconstruction + the sampled KL %.12f", iwae1, elbo1);

    /* β-TCVAE by minibatch-weighted sampling */
    double z[B * D], recon[B];
    for (int i = 0; i < B * D; i++) z[i] = mu[i] + exp(0.5 * lv[i]) * eps[i];
    for (int i = 0; i < B; i++) recon[i] = nll_of(&m, tp, z + i * D, x, i);
    o = opts(NB_OBJ_TCVAE);
    o.eps = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), eps, B * D);
    nb_model_loss(tp, &m, &b, &o, &t);
    const double lnb = log((double)NDATA * B);
    double mi = 0, tc = 0, dw = 0, rec = 0;
    for (int i = 0; i < B; i++) {
        double joint[B], qzx = 0, pz = 0, prod = 0;
        for (int jj = 0; jj < B; jj++) {
            joint[jj] = 0;
            for (int d = 0; d < D; d++) joint[jj] += log_normal(z[i * D + d], mu[jj * D + d], lv[jj * D + d]);
        }
        for (int d = 0; d < D; d++) {
            double col[B];
            for (int jj = 0; jj < B; jj++) col[jj] = log_normal(z[i * D + d], mu[jj * D + d], lv[jj * D + d]);
            prod += logsumexp(col, B) - lnb;
            qzx += log_normal(z[i * D + d], mu[i * D + d], lv[i * D + d]);
            pz += log_normal(z[i * D + d], 0, 0);
        }
        const double qz = logsumexp(joint, B) - lnb;
        mi += (qzx - qz) / B, tc += (qz - prod) / B, dw += (prod - pz) / B, rec += recon[i] / B;
    }
    want = rec + o.tc_alpha * mi + o.tc_beta * tc + o.tc_gamma * dw;
    ok(t.mi && fabs(nb_get(t.mi, 0) - mi) < 1e-10 && fabs(nb_get(t.tc, 0) - tc) < 1e-10 &&
       fabs(nb_get(t.dwkl, 0) - dw) < 1e-10 && fabs(nb_get(t.loss, 0) - want) < 1e-10,
       "beta-TCVAE: MI %.6f, TC %.6f, dwKL %.6f and the loss %.10f as the plain loop's", mi, tc, dw, want);

    /* WAE-MMD and InfoVAE: the unbiased U-statistic against the fixed prior samples */
    double within = 0, cross = 0, kl = 0;
    for (int i = 0; i < B; i++)
        for (int jj = 0; jj < B; jj++) {
            if (i != jj) within += imq(z + i * D, z + jj * D) + imq(prior + i * D, prior + jj * D);
            cross += imq(z + i * D, prior + jj * D);
        }
    for (int i = 0; i < B * D; i++) kl += -0.5 * (1 + lv[i] - mu[i] * mu[i] - exp(lv[i])) / B;
    const double mmd = within / (B * (B - 1.0)) - 2 * cross / ((double)B * B);
    for (int w = 0; w < 2; w++) {
        o = opts(w ? NB_OBJ_INFOVAE : NB_OBJ_WAE);
        o.eps = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), eps, B * D);
        o.prior = nb_tensor_from(tp, NB_F64, NB_SHAPE(B, D), prior, B * D);
        nb_model_loss(tp, &m, &b, &o, &t);
        want = w ? rec + o.beta * kl + (5 - 1) * mmd : rec + 10 * mmd;
        ok(t.mmd && fabs(nb_get(t.mmd, 0) - mmd) < 1e-12 && fabs(nb_get(t.loss, 0) - want) < 1e-10,
           "%s: MMD %.8f and the loss %.10f as the plain loop's (%.10f)", w ? "InfoVAE" : "WAE-MMD", mmd, want,
           t.loss ? nb_get(t.loss, 0) : NAN);
    }
    /* the ELBO's own bound rides along: recon + KL per example */
    ok(t.bound && fabs(nb_get(t.bound, 1) - (nb_get(t.recon, 1) + nb_get(t.kl, 1))) < 1e-12,
       "the bound per example of the MMD objectives is the ELBO's");
    nb_tape_free(tp);
    nb_params_free(ps);
}

/* ---- training ------------------------------------------------------------------------------ */

/* 100 Adam steps on 16 fixed patterns: the mean loss of the last 5 steps is below the first 5's. */
static void test_training(void)
{
    const nb_objective objs[] = {NB_OBJ_IWAE, NB_OBJ_TCVAE, NB_OBJ_WAE, NB_OBJ_INFOVAE};
    for (int k = 0; k < 4; k++) {
        nb_model_cfg cfg = tiny(NB_ARCH_MLP);
        cfg.act = NB_ACT_RELU, cfg.hidden[0] = 16;
        nb_params *ps = nb_params_new(NB_F32);
        nb_rng r = nb_rng_seed(5);
        nb_model m;
        nb_model_init(&m, &cfg, ps, &r);
        nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 1e-2));
        nb_tape *tp = nb_tape_new();
        float img[16 * 12];
        for (int i = 0; i < 16 * 12; i++) img[i] = (float)((i * 7 + i / 12) % 3 == 0);
        double first = 0, last = 0;
        nb_status st = NB_OK;
        for (int s = 0; s < 100 && !st; s++) {
            nb_tape_reset(tp);
            nb_tensor *x = nb_tensor_from(tp, NB_F32, NB_SHAPE(16, 12), img, 16 * 12);
            nb_loss_opts o = opts(objs[k]);
            o.rng = &r, o.beta = 1;
            nb_loss_terms t;
            nb_batch b = {x, x, NULL};
            if ((st = nb_model_loss(tp, &m, &b, &o, &t)) || (st = nb_backward(tp, t.loss)) || (st = nb_optim_step(opt))) break;
            if (s < 5) first += nb_get(t.loss, 0) / 5;
            if (s >= 95) last += nb_get(t.loss, 0) / 5;
        }
        ok(!st && last < first - 0.5, "%s trains: the loss falls from %.3f to %.3f in 100 steps (%s)",
           nb_objective_name(objs[k]), first, last, st ? nb_last_error() : "");
        nb_tape_free(tp);
        nb_optim_free(opt);
        nb_params_free(ps);
    }
}

/* ---- configuration and the trainer --------------------------------------------------------- */

static void test_config(void)
{
    nb_train_cfg c = nb_train_defaults();
    ok(c.objective == NB_OBJ_ELBO && c.samples == 5 && c.tc_beta == 6 && c.mmd_lambda == 0 && c.collapse == 0.5,
       "defaults: elbo, K = 5, TC weight 6, lambda by objective, collapse below half the dims");
    const char *bad[][2] = {{"objective", "vqvae"}, {"samples", "0"},     {"samples", "5000"}, {"tc-beta", "-1"},
                            {"tc-beta", "nan"},     {"mmd-lambda", "-3"}, {"kl-cycle", "-1"},  {"collapse", "1.5"},
                            {"valid", "-2"},        {"samples", "2.5"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(nb_train_set(&c, bad[i][0], bad[i][1]) == NB_ERR_ARG && strstr(nb_last_error(), bad[i][0]),
           "--%s %s is refused: %s", bad[i][0], bad[i][1], nb_last_error());
    ok(!nb_train_set(&c, "objective", "tcvae") && !nb_train_set(&c, "samples", "7") && !nb_train_set(&c, "tc-beta", "2.5") &&
       !nb_train_set(&c, "mmd-lambda", "30") && !nb_train_set(&c, "kl-cycle", "4") && !nb_train_set(&c, "valid", "100"),
       "the keys take good values");
    char *json = nb_train_cfg_json(&c);
    char path[] = "/tmp/nb_zoo_obj_XXXXXX";
    const int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) fputs(json, f), fclose(f);
    nb_train_cfg back = nb_train_defaults();
    ok(f && !nb_train_load_config(&back, path) && back.objective == NB_OBJ_TCVAE && back.samples == 7 &&
       back.tc_beta == 2.5 && back.mmd_lambda == 30 && back.kl_cycle == 4 && back.valid == 100,
       "config.json carries objective, samples, tc-beta, mmd-lambda, kl-cycle and valid back");
    unlink(path);
    free(json);
    nb_train_cfg p = nb_train_defaults();
    ok(!nb_train_preset(&p, "iwae") && p.objective == NB_OBJ_IWAE && p.samples == 5 && p.batch == 20 &&
       p.model.nhidden == 2 && p.model.hidden[1] == 200 && p.model.latent == 50 && p.model.act == NB_ACT_TANH &&
       p.binarize == NB_BIN_DYNAMIC && p.optim.eps == 1e-4, "preset iwae: 784-200-200-50 tanh, K 5, batch 20, dynamic, eps 1e-4");
    p = nb_train_defaults();
    ok(!nb_train_preset(&p, "pythae-vae") && p.model.hidden[0] == 512 && p.model.latent == 16 && p.batch == 64,
       "preset pythae-vae: 784-512-16, batch 64");
}

/* β per step: rises over the first half of each cycle, then holds */
static void test_kl_cycle(void)
{
    nb_train_cfg c = nb_train_defaults();
    c.beta = 4, c.kl_cycle = 2;
    const int64_t steps[] = {0, 5, 9, 10, 15, 19, 20, 25, 30};
    const double want[] = {0, 2, 3.6, 4, 4, 4, 0, 2, 4};
    double err = 0;
    for (int i = 0; i < 9; i++) err = fmax(err, fabs(nb_train_beta(&c, steps[i], 10) - want[i]));
    ok(err < 1e-12, "kl-cycle 2 at 10 steps an epoch: beta 0, 2, 3.6, 4, 4, 4, then again 0, 2, 4 (%.2g)", err);
    c.kl_cycle = 0, c.kl_warmup = 2;
    ok(fabs(nb_train_beta(&c, 10, 10) - 2) < 1e-12 && nb_train_beta(&c, 40, 10) == 4, "kl-warmup still ramps once");
}

static char tmp[256];

static nb_train_cfg small(const char *out, const char *obj)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.out, sizeof c.out, "%s/%s", tmp, out);
    c.train_size = 640, c.test_size = 128, c.batch = 64, c.epochs = 2, c.progress = 0, c.optim.lr = 3e-3;
    nb_train_set(&c, "objective", obj);
    return c;
}

static void test_trainer(void)
{
    nb_train_cfg c = small("valid", "iwae");
    c.valid = 128;
    nb_trainer *t = nb_trainer_new(&c, NULL);
    const nb_status st = t ? nb_trainer_run(t, NULL) : NB_ERR_ARG;
    char path[600], line[1024] = "";
    snprintf(path, sizeof path, "%s/best.safetensors", c.out);
    struct stat sb;
    ok(!st && nb_trainer_data(t, 0)->n == 512 && stat(path, &sb) == 0, "--valid 128: trains on 512 images, "
       "writes best.safetensors%s%s", st ? ": " : "", st ? nb_last_error() : "");
    nb_train_cfg back;
    int epoch = 0;
    const int read = !nb_checkpoint_config(path, &back, &epoch, NULL); /* before ok(): it sets epoch */
    ok(read && back.objective == NB_OBJ_IWAE && back.valid == 128 && epoch >= 1,
       "best.safetensors is a checkpoint of the run (epoch %d)", epoch);
    snprintf(path, sizeof path, "%s/metrics.csv", c.out);
    FILE *f = fopen(path, "r");
    if (f && fgets(line, sizeof line, f)) fgets(line, sizeof line, f);
    if (f) fclose(f);
    line[strcspn(line, "\n")] = 0; /* one TAP line */
    int commas = 0;
    for (char *p = line; *p; p++) commas += *p == ',';
    ok(commas == 32 && line[strlen(line) - 1] != ',', "metrics.csv: the valid columns are filled (%s)", line);
    nb_trainer_free(t);

    nb_train_cfg a = small("ae", "tcvae");
    nb_train_set(&a, "model", "ae");
    t = nb_trainer_new(&a, NULL);
    ok(!t && strstr(nb_last_error(), "--objective tcvae") && strstr(nb_last_error(), "VAE"),
       "an AE with --objective tcvae is refused: %s", nb_last_error());
    nb_trainer_free(t);
    nb_train_cfg w = small("wbeta", "wae");
    w.beta = 4;
    t = nb_trainer_new(&w, NULL);
    ok(!t && strstr(nb_last_error(), "--beta"), "--beta with wae is refused: %s", nb_last_error());
    nb_trainer_free(t);
    nb_train_cfg v = small("vbig", "elbo");
    v.valid = 640;
    t = nb_trainer_new(&v, NULL);
    ok(!t && strstr(nb_last_error(), "--valid"), "--valid as large as the training set is refused: %s", nb_last_error());
    nb_trainer_free(t);

    /* the library's loss refuses the same */
    nb_model_cfg mc = tiny(NB_ARCH_MLP);
    mc.kind = NB_CVAE, mc.nclasses = 2;
    nb_params *ps = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(2);
    nb_model m;
    nb_model_init(&m, &mc, ps, &r);
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_uniform(tp, &r, NB_F64, NB_SHAPE(2, 12), 0, 1), *y = nb_full(tp, NB_F64, NB_SHAPE(2, 2), 0.5);
    nb_loss_opts o = opts(NB_OBJ_IWAE);
    o.rng = &r;
    nb_loss_terms lt;
    ok(nb_model_loss(tp, &m, &(nb_batch){x, x, y}, &o, &lt) == NB_ERR_ARG && strstr(nb_last_error(), "conditional"),
       "nb_model_loss refuses iwae on a CVAE: %s", nb_last_error());
    nb_tape_free(tp);
    nb_params_free(ps);
}

int main(void)
{
    test_gradients();
    test_values();
    test_training();
    test_config();
    test_kl_cycle();
    snprintf(tmp, sizeof tmp, "/tmp/nb_zoo_obj_dir_XXXXXX");
    if (mkdtemp(tmp)) test_trainer();
    return tap_done();
}
