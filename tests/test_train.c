/* tests/test_train.c — the training loop: every model trains on 512 images and its test loss
 * falls; a resumed run is bit-identical to an uninterrupted one; two runs with one seed agree
 * bit for bit; the non-finite guard stops a diverging run and keeps the last good checkpoint; a
 * failed checkpoint write leaves the old one intact; configurations survive a round trip. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

static const char *data_dir = "/usr/share/datasets/fashion-mnist";
static char tmp[256];

static nb_train_cfg small(const char *out)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.data, sizeof c.data, "%s", data_dir);
    snprintf(c.out, sizeof c.out, "%s/%s", tmp, out);
    c.train_size = 512, c.test_size = 256, c.batch = 32, c.epochs = 1, c.progress = 0;
    c.optim.lr = 3e-3;
    return c;
}

static double test_loss(const nb_trainer *t)
{
    nb_eval e;
    nb_model_evaluate(nb_trainer_model(t), nb_trainer_data(t, 1), 256, NB_BIN_NONE, &nb_trainer_cfg(t)->corrupt, 5, &e);
    return e.elbo_loss;
}

/* Trains one epoch; returns the test loss before and after through *before, *after. */
static int train_one(const char *label, nb_train_cfg c, double *before, double *after)
{
    nb_trainer *t = nb_trainer_new(&c, NULL);
    if (!t) return ok(0, "%s: set-up: %s", label, nb_last_error());
    *before = test_loss(t);
    nb_status st = nb_trainer_run(t, NULL);
    *after = test_loss(t);
    nb_trainer_free(t);
    return st ? ok(0, "%s: %s", label, nb_last_error()) : 1;
}

static void test_every_model_learns(void)
{
    struct { const char *label; const char *kv[8]; double drop; } cs[] = {
        {"AE (MLP, BCE)", {"model", "ae"}, 0.2},
        {"DAE (MLP, squared error, dropout 0.5)", {"model", "dae", "decoder", "gaussian", "corrupt", "dropout:0.5"}, 0.2},
        {"VAE (MLP, Bernoulli)", {"model", "vae"}, 0.2},
        {"VAE (MLP, Gaussian fixed sigma)", {"model", "vae", "decoder", "gaussian", "sigma", "0.3"}, 0.2},
        /* the variance starts at the data's and Adam moves its log by about lr per step: a smaller drop */
        {"VAE (MLP, learned shared variance)", {"model", "vae", "decoder", "gaussian-shared"}, 0.05},
        {"VAE (MLP, learned per-pixel variance)", {"model", "vae", "decoder", "gaussian-pixel", "logvar-min", "-6"}, 0.05},
        {"VAE (MLP, log-variance head)", {"model", "vae", "decoder", "gaussian-head", "logvar-min", "-6"}, 0.05},
        {"linear AE (no hidden layer)", {"model", "ae", "decoder", "gaussian", "hidden", "none", "act", "identity"}, 0.2},
        {"CVAE (MLP)", {"model", "cvae"}, 0.2},
        {"VAE (conv)", {"model", "vae", "arch", "conv"}, 0.1},
        {"CVAE (conv)", {"model", "cvae", "arch", "conv"}, 0.1},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        char out[32];
        snprintf(out, sizeof out, "learn%zu", k);
        nb_train_cfg c = small(out);
        for (int i = 0; i < 8 && cs[k].kv[i]; i += 2) nb_train_set(&c, cs[k].kv[i], cs[k].kv[i + 1]);
        if (!strcmp(cs[k].kv[1], "vae") && c.model.decoder == NB_DEC_GAUSSIAN_PIXEL) nb_train_set(&c, "logvar-max", "6");
        double before = NAN, after = NAN;
        if (!train_one(cs[k].label, c, &before, &after)) continue;
        /* a wrong gradient would raise the loss or leave it where it was */
        const double bound = before - cs[k].drop * fabs(before);
        ok(isfinite(after) && after < bound, "%s: one epoch on 512 images: test loss %.2f -> %.2f (must be < %.2f)",
           cs[k].label, before, after, bound);
    }
    /* the steps ran with subnormals flushed; the caller's own mode is back */
    volatile float tiny = 1e-38f;
    tiny *= 0.5f;
    ok(tiny != 0, "after training, the caller still computes subnormals (%g)", (double)tiny);
}

static int same_params(const char *a, const char *b)
{
    nb_safetensors *fa, *fb;
    if (nb_st_open(&fa, a)) return 0;
    if (nb_st_open(&fb, b)) {
        nb_st_close(fa);
        return 0;
    }
    int same = nb_st_count(fa) == nb_st_count(fb);
    for (int i = 0; same && i < nb_st_count(fa); i++) {
        nb_tensor x, y;
        const char *name = nb_st_name(fa, i);
        same = !nb_st_get(fa, name, &x) && !nb_st_get(fb, name, &y) && nb_same_shape(&x, &y) &&
               !memcmp(x.data, y.data, (size_t)nb_numel(&x) * nb_dtype_size(x.dtype));
    }
    nb_st_close(fa);
    nb_st_close(fb);
    return same;
}

static int run(nb_train_cfg c, const char *resume)
{
    nb_trainer *t = nb_trainer_new(&c, resume);
    if (!t) return 0;
    nb_status st = nb_trainer_run(t, NULL);
    nb_trainer_free(t);
    return st == NB_OK;
}

static void test_resume_and_determinism(void)
{
    char a[600], b[600], c2[600], keep[600];
    nb_train_cfg full = small("full"), part = small("part"), again = small("again");
    full.epochs = again.epochs = 2, part.epochs = 1;
    nb_train_set(&full, "kl-warmup", "2"), nb_train_set(&part, "kl-warmup", "2"), nb_train_set(&again, "kl-warmup", "2");
    snprintf(a, sizeof a, "%s/checkpoint.safetensors", full.out);
    snprintf(b, sizeof b, "%s/checkpoint.safetensors", part.out);
    snprintf(c2, sizeof c2, "%s/checkpoint.safetensors", again.out);
    snprintf(keep, sizeof keep, "%s/after1.safetensors", part.out);
    int ok_runs = run(full, NULL) && run(part, NULL);
    /* resume the 1-epoch run for a second epoch (the checkpoint keeps its configuration) */
    if (ok_runs) ok_runs = !rename(b, keep);
    part.epochs = 2;
    ok_runs = ok_runs && run(part, keep);
    ok(ok_runs && same_params(a, b), "a run resumed after epoch 1 ends bit-identical to an uninterrupted one (%s)",
       ok_runs ? "parameters and optimizer state compared" : nb_last_error());
    ok(run(again, NULL) && same_params(a, c2), "two runs with the same seed and threads are bit-identical");
    nb_train_cfg other = small("other");
    other.epochs = 2, other.seed = 2;
    nb_train_set(&other, "kl-warmup", "2");
    char o[600];
    snprintf(o, sizeof o, "%s/checkpoint.safetensors", other.out);
    ok(run(other, NULL) && !same_params(a, o), "another seed gives other parameters");
    int epoch = -1;
    int64_t step = -1;
    nb_train_cfg back;
    const int loaded = !nb_checkpoint_config(a, &back, &epoch, &step);
    ok(loaded && epoch == 2 && step == 32 && back.model.latent == 20 && back.kl_warmup == 2,
       "the checkpoint holds epoch %d, step %lld and the configuration", epoch, (long long)step);
}

/* The conv VAE three times with one seed: bit-identical, even when one run shares the machine
 * with busy loops (no choice inside the library may depend on timing). */
static void test_conv_determinism(void)
{
    char path[3][600];
    int ok_runs = 1;
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "conv%d", k);
        nb_train_cfg c = small(name);
        nb_train_preset(&c, "conv");
        snprintf(c.out, sizeof c.out, "%s/%s", tmp, name);
        c.train_size = 128, c.test_size = 64, c.batch = 32, c.progress = 0, c.threads = 2;
        nb_train_set(&c, "conv-channels", "8");
        snprintf(path[k], sizeof path[k], "%s/checkpoint.safetensors", c.out);
        pid_t busy[2] = {0, 0};
        for (int b = 0; k == 1 && b < 2; b++)
            if ((busy[b] = fork()) == 0)
                for (volatile unsigned long spin = 0;; spin++) {}
        ok_runs &= run(c, NULL);
        for (int b = 0; b < 2; b++)
            if (busy[b] > 0) kill(busy[b], SIGKILL), waitpid(busy[b], NULL, 0);
    }
    ok(ok_runs && same_params(path[0], path[1]) && same_params(path[0], path[2]),
       "three conv VAE runs with one seed, one beside two busy loops, are bit-identical (%s)",
       ok_runs ? "parameters and optimizer state compared" : nb_last_error());
}

static void keep_log(const nb_epoch_log *l, void *ctx) { *(nb_epoch_log *)ctx = *l; }

/* What the trainer reports: a denoiser tested on corrupted inputs, as it trained; beta rising
 * over the warm-up. */
static void test_epoch_log(void)
{
    nb_train_cfg c = small("dae");
    nb_train_set(&c, "model", "dae"), nb_train_set(&c, "corrupt", "dropout:0.5");
    nb_epoch_log log = {0};
    nb_trainer *t = nb_trainer_new(&c, NULL);
    const int ran = t && !nb_trainer_run(t, &(nb_train_hooks){.on_epoch = keep_log, .ctx = &log});
    nb_eval clean = {0};
    if (ran) nb_model_evaluate(nb_trainer_model(t), nb_trainer_data(t, 1), 256, NB_BIN_NONE, NULL, 1, &clean);
    /* (clean inputs are no easier: the model never saw them, and their ink is twice as dense) */
    ok(ran && log.epoch == 1 && fabs(log.test.recon - clean.recon) > 0.02 * clean.recon,
       "a denoiser's test loss is on corrupted inputs, as it trained: %.2f, against %.2f on clean ones",
       log.test.recon, clean.recon);
    nb_trainer_free(t);

    nb_train_cfg w = small("warm");
    nb_train_set(&w, "kl-warmup", "2");
    t = nb_trainer_new(&w, NULL);
    const int warm = t && !nb_trainer_run(t, &(nb_train_hooks){.on_epoch = keep_log, .ctx = &log});
    ok(warm && log.beta > 0.4 && log.beta < 0.55, "after 1 of 2 warm-up epochs beta is about 0.5 (%.3f)", log.beta);
    nb_trainer_free(t);
}

static void test_nan_guard(void)
{
    /* epoch 1 trains normally; the schedule then multiplies the rate by 1e12 and it diverges */
    nb_train_cfg c = small("nan");
    c.epochs = 3;
    nb_train_set(&c, "lr-schedule", "exp:1e12");
    nb_trainer *t = nb_trainer_new(&c, NULL);
    nb_status st = t ? nb_trainer_run(t, NULL) : NB_ERR_ARG;
    const char *msg = nb_last_error();
    ok(st == NB_ERR_NAN && strstr(msg, "step") && (strstr(msg, "nb_") || strstr(msg, "gradient")),
       "a diverging run stops with NB_ERR_NAN: %s", msg);
    nb_trainer_free(t);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", c.out);
    nb_train_cfg back;
    int epoch = -1;
    int finite = !nb_checkpoint_config(path, &back, &epoch, NULL);
    nb_safetensors *f;
    if (finite && !nb_st_open(&f, path)) {
        for (int i = 0; i < nb_st_count(f); i++) {
            nb_tensor x;
            nb_st_get(f, nb_st_name(f, i), &x);
            for (int64_t j = 0; j < nb_numel(&x); j++) finite &= isfinite(nb_get(&x, j)) != 0;
        }
        nb_st_close(f);
    }
    ok(finite && epoch >= 1, "the last good checkpoint (epoch %d) is kept, every value finite", epoch);
}

static void test_atomic_checkpoint(void)
{
    nb_train_cfg c = small("atomic");
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(1000, 100));
    nb_init_constant(w, 1.5);
    char path[400];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", tmp);
    int saved = !nb_checkpoint_save(path, ps, NULL, &c, 1, 10);
    nb_init_constant(w, 2.5);
    pid_t pid = fork();
    if (pid == 0) { /* a full disk: writes beyond 64 KB fail */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {65536, 65536};
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(nb_checkpoint_save(path, ps, NULL, &c, 2, 20) == NB_ERR_IO ? 0 : 1);
    }
    int status = 1;
    waitpid(pid, &status, 0);
    nb_init_constant(w, 0);
    int epoch = -1;
    nb_train_cfg back;
    int intact = !nb_checkpoint_config(path, &back, &epoch, NULL) && !nb_checkpoint_load(path, ps, NULL) &&
                 nb_get(w, 0) == 1.5 && epoch == 1;
    ok(saved && WIFEXITED(status) && WEXITSTATUS(status) == 0 && intact,
       "a checkpoint write that fails on a full disk reports NB_ERR_IO and leaves the old checkpoint intact");
    nb_params_free(ps);
}

static void test_config(void)
{
    nb_train_cfg c = nb_train_defaults();
    const char *kv[] = {"model", "cvae", "arch", "conv", "hidden", "392,196", "beta", "0.25", "kl-warmup", "3",
                        "corrupt", "gaussian:0.3,block:16", "optimizer", "adamw", "lr", "0.0005",
                        "lr-schedule", "step:3:0.5", "seed", "42", "binarize", "dynamic"};
    int set = 1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i += 2) set &= !nb_train_set(&c, kv[i], kv[i + 1]);
    char *j1 = nb_train_cfg_json(&c), path[400];
    snprintf(path, sizeof path, "%s/cfg.json", tmp);
    FILE *f = fopen(path, "w");
    fputs(j1, f);
    fclose(f);
    nb_train_cfg d = nb_train_defaults();
    char *j2 = !nb_train_load_config(&d, path) ? nb_train_cfg_json(&d) : NULL;
    ok(set && j2 && !strcmp(j1, j2) && d.model.nhidden == 2 && d.model.hidden[1] == 196 && d.corrupt.n == 2,
       "a configuration survives JSON and back");
    ok(j1 && strstr(j1, "\"lr\":\t0.0005,") && strstr(j1, "\"sigma\":\t0.1,"),
       "numbers are written as typed, and exactly (0.1, not 0.10000000000000001)");
    free(j1), free(j2);
    nb_train_cfg l = nb_train_defaults();
    ok(!nb_train_set(&l, "hidden", "none") && l.model.nhidden == 0 && !nb_train_set(&l, "act", "identity") &&
       !nb_train_set(&l, "output", "identity") && !nb_train_set(&l, "decoder", "gaussian-head") &&
       l.model.act == NB_ACT_IDENTITY && l.model.output == NB_OUT_IDENTITY && l.model.decoder == NB_DEC_GAUSSIAN_HEAD,
       "--hidden none, --act identity, --output identity and --decoder gaussian-head");
    j1 = nb_train_cfg_json(&l);
    f = fopen(path, "w");
    fputs(j1, f);
    fclose(f);
    d = nb_train_defaults();
    ok(!nb_train_load_config(&d, path) && d.model.nhidden == 0 && d.model.output == NB_OUT_IDENTITY,
       "a linear AE's configuration survives JSON and back");
    free(j1);
    ok(nb_train_set(&c, "latnet", "3") && strstr(nb_last_error(), "unknown option 'latnet'"), "a misspelt key: %s", nb_last_error());
    ok(nb_train_set(&c, "latent", "many") && strstr(nb_last_error(), "--latent many"), "a bad value: %s", nb_last_error());
    ok(nb_train_set(&c, "decoder", "poisson") && strstr(nb_last_error(), "bernoulli"), "a bad choice lists the good ones: %s",
       nb_last_error());
    const char *help = NULL;
    char def[64];
    int found = 0, n = 0;
    for (const char *k; (k = nb_train_key_info(n, &help, def, sizeof def)); n++)
        found += (!strcmp(k, "sigma") && !strcmp(def, "0.1") && strstr(help, "standard deviation")) +
                 (!strcmp(k, "hidden") && !strcmp(def, "400"));
    ok(found == 2 && n > 30 && !nb_train_key_info(n, NULL, NULL, 0) && !nb_train_key_info(-1, NULL, NULL, 0),
       "nb_train_key_info lists %d keys with their help and defaults as typed (sigma 0.1)", n);
    ok(!nb_train_preset(&c, "aevb") && c.batch == 100 && c.model.act == NB_ACT_TANH && c.optim.kind == NB_ADAGRAD,
       "the aevb preset: 500 tanh units, batch 100, Adagrad");
}

int main(void)
{
    if (access(data_dir, R_OK)) {
        ok(1, "# SKIP %s not installed (scripts/setup.sh installs it)", data_dir);
        return tap_done();
    }
    snprintf(tmp, sizeof tmp, "/tmp/nb_train_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    test_config();
    test_every_model_learns();
    test_resume_and_determinism();
    test_nan_guard();
    test_epoch_log();
    test_conv_determinism();
    test_atomic_checkpoint();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) tap_diag("could not remove %s", tmp);
    return tap_done();
}
