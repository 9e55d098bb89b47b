/* tests/test_reliability.c — no crash, no hang, no lost work, no silent nonsense:
 *   - numbers from flags, config files and checkpoints are range-checked, non-finite ones refused;
 *   - a checkpoint of another format is refused (no use after free), a corrupt one names its tensor;
 *   - label sets that disagree (train against test, data against model) are refused with counts;
 *   - losses stay finite where the maths is, and the NaN guard names the step and the tensor;
 *   - a save killed at any moment leaves the previous checkpoint loadable and verified;
 *   - a full file system (a small tmpfs, where one can be mounted) loses nothing.
 * Regression tests for each bug found by fuzzing and review live here too. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

static char tmp[] = "/tmp/nb_reliability_XXXXXX";
static const char *fashion = "/usr/share/datasets/fashion-mnist";

static const char *in_tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static int has(const char *s) { return strstr(nb_last_error(), s) != NULL; }

/* ---- numbers ---------------------------------------------------------------------------------- */

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    const int ok_ = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok_;
}

static void test_numbers(void)
{
    nb_train_cfg c = nb_train_defaults();
    ok(nb_train_set(&c, "lr", "inf") == NB_ERR_ARG && has("--lr inf") && has("finite"),
       "--lr inf is refused by name: %s", nb_last_error());
    ok(nb_train_set(&c, "beta", "nan") == NB_ERR_ARG && has("--beta nan"), "--beta nan is refused: %s", nb_last_error());
    ok(nb_train_set(&c, "lr", "1e309") == NB_ERR_ARG, "--lr 1e309 (inf once parsed) is refused: %s", nb_last_error());
    ok(nb_train_set(&c, "conv-channels", "1073741824") == NB_ERR_ARG && has("1 to 1024") && c.model.conv2 == 64,
       "conv-channels 2^30 is refused before doubling it: %s", nb_last_error());
    ok(nb_train_set(&c, "lr", "-0.1") == NB_ERR_ARG && has("from 0 to") && nb_train_set(&c, "momentum", "1.5") == NB_ERR_ARG,
       "a negative learning rate and a momentum of 1.5 are out of range: %s", nb_last_error());
    ok(nb_train_set(&c, "latent", "-3") == NB_ERR_ARG && nb_train_set(&c, "batch", "0") == NB_ERR_ARG,
       "a negative latent size and an empty batch are refused: %s", nb_last_error());
    ok(nb_train_set(&c, "seed", "18446744073709551615") == NB_OK && c.seed == UINT64_MAX &&
           nb_train_set(&c, "seed", "-1") == NB_ERR_ARG,
       "seeds take every 64-bit value and no negative one");
    /* found by fuzzing: a seed above 2^53 did not survive config.json (JSON numbers are doubles) */
    nb_train_set(&c, "seed", "11068937977120804084");
    char *json = nb_train_cfg_json(&c);
    nb_train_cfg seeded = nb_train_defaults();
    const char *sp = in_tmp("seed.json");
    const int loaded = json && write_text(sp, json) && !nb_train_load_config(&seeded, sp);
    ok(loaded && seeded.seed == 11068937977120804084ull, "a 64-bit seed survives config.json (%llu)",
       (unsigned long long)seeded.seed);
    free(json);
    write_text(sp, "{\"seed\": 11068937977120804084}");
    ok(nb_train_load_config(&seeded, sp) == NB_ERR_FORMAT && has("not exact"),
       "a seed beyond 2^53 written as a JSON number is refused, not rounded: %s", nb_last_error());
    const char *path = in_tmp("huge.json");
    write_text(path, "{\"lr\": 1e309}");
    ok(nb_train_load_config(&c, path) == NB_ERR_ARG && has("lr") && has("finite"),
       "a JSON number of 1e309 is refused: %s", nb_last_error());
    write_text(path, "{\"conv-channels\": 1073741824}");
    ok(nb_train_load_config(&c, path) == NB_ERR_ARG && has("conv-channels"), "conv-channels 2^30 in a config file: %s",
       nb_last_error());

    /* a checkpoint whose configuration says channels = height = width = 2^30 */
    nb_train_cfg big = nb_train_defaults();
    big.model.channels = big.model.height = big.model.width = 1 << 30;
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "w", NB_SHAPE(2));
    const char *ck = in_tmp("huge.safetensors");
    nb_checkpoint_save(ck, ps, NULL, &big, 1, 1);
    nb_train_cfg back;
    ok(nb_checkpoint_config(ck, &back, NULL, NULL) == NB_ERR_ARG && has("channels") && has("0 to 64"),
       "a checkpoint asking for 2^30-sized images is refused when read: %s", nb_last_error());
    nb_model m;
    nb_rng r = nb_rng_seed(1);
    ok(nb_model_init(&m, &big.model, ps, &r) == NB_ERR_ARG && has("images of 1073741824x"),
       "and by the model itself, with the reason: %s", nb_last_error());
    nb_model_cfg hid = nb_model_defaults();
    hid.channels = 1, hid.height = hid.width = 28, hid.hidden[0] = 1 << 25;
    ok(nb_model_init(&m, &hid, ps, &r) == NB_ERR_ARG && has("hidden layer 0"),
       "a 2^25-unit hidden layer is refused: %s", nb_last_error());
    nb_params_free(ps);
}

/* ---- checkpoints -------------------------------------------------------------------------------- */

static void test_foreign_checkpoint(void)
{
    /* what PyTorch's safetensors.torch.save_file writes: metadata {"format": "pt"} */
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "enc.fc.0.weight", NB_SHAPE(4, 3));
    const char *path = in_tmp("torch.safetensors");
    nb_params_save(ps, path, 1, (const char *[]){"format"}, (const char *[]){"pt"});
    nb_train_cfg c;
    ok(nb_checkpoint_config(path, &c, NULL, NULL) == NB_ERR_FORMAT && has("not a nabla checkpoint") && has("'pt'"),
       "a PyTorch safetensors file given as a checkpoint: %s", nb_last_error());
    ok(nb_checkpoint_load(path, ps, NULL) == NB_ERR_FORMAT && has("'pt'"), "the same when loading parameters");
    nb_params_free(ps);
}

static void test_flipped_checkpoint(void)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.data, sizeof c.data, "%s", fashion);
    snprintf(c.out, sizeof c.out, "%s/flip", tmp);
    c.train_size = 128, c.test_size = 64, c.batch = 32, c.epochs = 1, c.progress = 0;
    nb_trainer *t = nb_trainer_new(&c, NULL);
    const int trained = t && !nb_trainer_run(t, NULL);
    nb_trainer_free(t);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", c.out);
    FILE *f = fopen(path, "r+b");
    long size = f && !fseek(f, 0, SEEK_END) ? ftell(f) : 0;
    int flipped = 0;
    if (f && size > 1000 && !fseek(f, size - 1000, SEEK_SET)) { /* inside the last tensor's data */
        int b = fgetc(f);
        flipped = b != EOF && !fseek(f, size - 1000, SEEK_SET) && fputc(b ^ 0x10, f) != EOF;
    }
    if (f) fclose(f);
    c.epochs = 2;
    t = trained && flipped ? nb_trainer_new(&c, path) : NULL;
    ok(trained && flipped && !t && has("fails its checksum") && has("the file is corrupt"),
       "resuming from a checkpoint with a flipped bit is refused, naming the tensor: %s", nb_last_error());
    nb_trainer_free(t);
}

/* A checkpoint writer killed with SIGKILL at many moments: the file on disk is always the
 * previous complete checkpoint or the next one, never a partial one. */
static void test_killed_saves(void)
{
    const char *path = in_tmp("killed.safetensors");
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(512, 1024)); /* 2 MB: a save takes a while */
    nb_train_cfg cfg = nb_train_defaults();
    nb_init_constant(w, 0);
    nb_checkpoint_save(path, ps, NULL, &cfg, 0, 0);
    int good = 0, kills = 0, steps_seen = 0;
    struct timespec seed_ts;
    clock_gettime(CLOCK_MONOTONIC, &seed_ts);
    unsigned seed = (unsigned)seed_ts.tv_nsec;
    for (int round = 0; round < 40; round++) {
        fflush(stdout);
        const pid_t pid = fork();
        if (pid == 0) { /* saves checkpoints with step k and every value k, forever */
            for (int k = 1;; k++) {
                nb_init_constant(w, k);
                if (nb_checkpoint_save(path, ps, NULL, &cfg, k, k)) _exit(1);
            }
        }
        usleep(2000 + (unsigned)(rand_r(&seed) % 40000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        /* the survivor must verify, and hold one checkpoint's values throughout */
        int epoch = -1;
        int64_t step = -1;
        nb_train_cfg back;
        nb_init_constant(w, -1);
        const int loads = !nb_checkpoint_config(path, &back, &epoch, &step) && !nb_checkpoint_load(path, ps, NULL);
        int same = loads;
        for (int64_t i = 0; same && i < nb_numel(w); i += 4099) same = nb_get(w, i) == (double)step;
        good += same;
        steps_seen += step > 0;
    }
    ok(kills == 40 && good == 40, "a checkpoint save killed at 40 random moments: the file verifies and is whole "
       "every time (%d of %d; %d times a newer checkpoint had landed)", good, kills, steps_seen);
    nb_params_free(ps);
}

/* A real full file system: a 256 KB tmpfs, where this process may mount one (root, and a kernel
 * that lets it); otherwise skipped with the reason. */
static void test_full_tmpfs(void)
{
    const char *mnt = in_tmp("small-fs");
    mkdir(mnt, 0700);
    if (mount("nb-test", mnt, "tmpfs", 0, "size=256k")) {
        ok(1, "# SKIP cannot mount a tmpfs here (%s): the RLIMIT_FSIZE test of test_train covers a full disk",
           strerror(errno));
        rmdir(mnt);
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", mnt);
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(100, 100)); /* 40 KB: the first save fits */
    nb_train_cfg cfg = nb_train_defaults();
    nb_init_constant(w, 1.5);
    const int first = !nb_checkpoint_save(path, ps, NULL, &cfg, 1, 1);
    nb_tensor *big = nb_param(ps, "big", NB_SHAPE(300, 300)); /* 360 KB: cannot fit */
    nb_init_constant(big, 2);
    const nb_status st = nb_checkpoint_save(path, ps, NULL, &cfg, 2, 2);
    const int said = st == NB_ERR_IO && (has("No space") || has("space"));
    nb_params *back = nb_params_new(NB_F32);
    nb_tensor *wb = nb_param(back, "w", NB_SHAPE(100, 100));
    int epoch = -1;
    nb_train_cfg bc;
    const int intact = !nb_checkpoint_config(path, &bc, &epoch, NULL) && !nb_checkpoint_load(path, back, NULL) &&
                       epoch == 1 && nb_get(wb, 0) == 1.5;
    int leftovers = 0;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp > /dev/null", mnt);
    leftovers = system(cmd) == 0;
    ok(first && said && intact && !leftovers, "a save onto a full tmpfs fails with ENOSPC named, keeps the "
       "previous checkpoint whole and leaves no temporary file (%s)", nb_last_error());
    nb_params_free(ps);
    nb_params_free(back);
    umount(mnt);
    rmdir(mnt);
}

/* ---- labels ---------------------------------------------------------------------------------------- */

static void put_be32(FILE *f, uint32_t v)
{
    const unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* An MNIST-style split of n 4x4 images with the given labels. */
static void write_split(const char *dir, const char *split, int n, const uint8_t *labels)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split);
    FILE *f = fopen(path, "wb");
    put_be32(f, 0x803), put_be32(f, (uint32_t)n), put_be32(f, 4), put_be32(f, 4);
    for (int i = 0; i < 16 * n; i++) fputc((i * 37) & 255, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
    f = fopen(path, "wb");
    put_be32(f, 0x801), put_be32(f, (uint32_t)n);
    fwrite(labels, 1, (size_t)n, f);
    fclose(f);
}

static nb_trainer *cvae_on(const char *dir)
{
    nb_train_cfg c = nb_train_defaults();
    nb_train_preset(&c, "cvae");
    snprintf(c.data, sizeof c.data, "%s", dir);
    snprintf(c.out, sizeof c.out, "%s/out", dir);
    c.epochs = 1, c.progress = 0, c.batch = 8;
    return nb_trainer_new(&c, NULL);
}

static void test_labels(void)
{
    uint8_t train[40], test[20];
    const char *dir = in_tmp("labels");
    mkdir(dir, 0700);
    for (int i = 0; i < 40; i++) train[i] = 200;
    for (int i = 0; i < 20; i++) test[i] = (uint8_t)(i % 10);
    write_split(dir, "train", 40, train), write_split(dir, "t10k", 20, test);
    nb_trainer *t = cvae_on(dir);
    ok(!t && has("class 0 has 2 test images but no training images") && has("200 (40)"),
       "training labels all 200 against test labels 0-9: refused with the counts: %s", nb_last_error());
    nb_trainer_free(t);

    for (int i = 0; i < 20; i++) test[i] = 200;
    write_split(dir, "t10k", 20, test);
    t = cvae_on(dir);
    ok(!t && has("labels run to 200, but class 0 has no image"), "labels 200 everywhere: not a 201-class problem: %s",
       nb_last_error());
    nb_trainer_free(t);

    for (int i = 0; i < 40; i++) train[i] = (uint8_t)(i % 4);
    for (int i = 0; i < 20; i++) test[i] = (uint8_t)(i % 5);
    write_split(dir, "train", 40, train), write_split(dir, "t10k", 20, test);
    t = cvae_on(dir);
    ok(!t && has("class 4 has 4 test images but no training images"), "a test class the training set lacks: %s",
       nb_last_error());
    nb_trainer_free(t);

    for (int i = 0; i < 20; i++) test[i] = (uint8_t)(i % 4);
    write_split(dir, "t10k", 20, test);
    t = cvae_on(dir);
    ok(t && nb_trainer_model(t)->cfg.nclasses == 4, "consistent labels 0-3: a 4-class CVAE (%s)", t ? "" : nb_last_error());
    const int trained = t && !nb_trainer_run(t, NULL);
    nb_trainer_free(t);

    /* its checkpoint resumed on data that now has five classes */
    for (int i = 0; i < 40; i++) train[i] = (uint8_t)(i % 5);
    for (int i = 0; i < 20; i++) test[i] = (uint8_t)(i % 5);
    write_split(dir, "train", 40, train), write_split(dir, "t10k", 20, test);
    nb_train_cfg c = nb_train_defaults();
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/out/checkpoint.safetensors", dir);
    t = trained ? nb_trainer_new(&c, ckpt) : NULL;
    ok(trained && !t && has("the checkpoint's model has 4 classes, the data 5"),
       "a 4-class checkpoint resumed on 5-class data is refused: %s", nb_last_error());
    nb_trainer_free(t);
}

/* ---- numerics ------------------------------------------------------------------------------------------ */

static int all_finite(const nb_tensor *t)
{
    for (int64_t i = 0; t && i < nb_numel(t); i++)
        if (!isfinite(nb_get(t, i))) return 0;
    return t != NULL;
}

/* A (1, n) tensor of dtype d holding v. */
static nb_tensor *row(nb_tape *tp, nb_dtype d, int n, const double *v)
{
    nb_tensor *t = nb_empty(tp, d, NB_SHAPE(1, n));
    for (int i = 0; t && i < n; i++) nb_set(t, i, v[i]);
    return t;
}

static void test_numerics(void)
{
    for (int dt = 0; dt < 2; dt++) {
        const nb_dtype d = dt ? NB_F64 : NB_F32;
        const char *name = nb_dtype_name(d);
        nb_tape *tp = nb_tape_new();
        nb_tensor *l = nb_requires_grad(row(tp, d, 4, (const double[]){-1000, 1000, -80, 80}));
        nb_tensor *bce = nb_bce_logits(tp, l, nb_full(tp, d, NB_SHAPE(1, 4), 0.5), NB_REDUCE_SUM);
        nb_backward(tp, bce);
        /* each term is |l|/2 + log(1 + e^-|l|): 500 + 500 + 40 + 40 */
        ok(all_finite(bce) && all_finite(l->grad) && fabs(nb_get(bce, 0) - 1080) < 1e-3,
           "%s: BCE at logits ±1000 and ±80 is finite (%g), with a finite gradient", name, nb_get(bce, 0));
        nb_tape_reset(tp);
        nb_tensor *lv = nb_requires_grad(row(tp, d, 2, (const double[]){-80, 80}));
        nb_tensor *kl = nb_kl_normal(tp, nb_zeros(tp, d, NB_SHAPE(1, 2)), lv, NB_REDUCE_SUM);
        nb_backward(tp, kl);
        ok(all_finite(kl) && all_finite(lv->grad), "%s: KL at log-variance ±80 is finite (%g)", name, nb_get(kl, 0));
        nb_tape_free(tp);
    }
    /* a learned variance pushed towards 0 stays finite with the clamp on */
    nb_model_cfg cfg = nb_model_defaults();
    cfg.channels = 1, cfg.height = 2, cfg.width = 3, cfg.hidden[0] = 4, cfg.latent = 2;
    cfg.decoder = NB_DEC_GAUSSIAN_PIXEL, cfg.logvar_min = -6, cfg.logvar_max = 6;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(3);
    nb_model m;
    nb_model_init(&m, &cfg, ps, &r);
    nb_init_constant(m.dec_logvar, -1e4); /* σ² = e^-10000: zero in any float */
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_full(tp, NB_F32, NB_SHAPE(2, 6), 0.3);
    nb_loss_terms t;
    nb_loss_opts o = {.beta = 1, .rng = &r};
    const nb_status st = nb_model_loss(tp, &m, &(nb_batch){x, x, NULL}, &o, &t) || nb_backward(tp, t.loss);
    ok(!st && all_finite(t.loss) && all_finite(m.dec_logvar->grad),
       "Gaussian NLL with σ → 0 is finite with the clamp on (%g)", t.loss ? nb_get(t.loss, 0) : NAN);
    nb_tape_free(tp);
    nb_params_free(ps);
}

/* A NaN injected into a parameter mid-run stops the run at the next step, naming the tensor. */
typedef struct inject {
    nb_trainer *t;
    int at;
} inject;

static void poison(const nb_step_log *l, void *ctx)
{
    inject *in = ctx;
    if (l->step == in->at) nb_set(nb_params_at(nb_trainer_model(in->t)->ps, 2), 5, NAN);
}

static void test_nan_injection(void)
{
    nb_train_cfg c = nb_train_defaults();
    snprintf(c.data, sizeof c.data, "%s", fashion);
    snprintf(c.out, sizeof c.out, "%s/nan", tmp);
    c.train_size = 256, c.test_size = 64, c.batch = 32, c.epochs = 1, c.progress = 0;
    inject in = {nb_trainer_new(&c, NULL), 3};
    const nb_status st = in.t ? nb_trainer_run(in.t, &(nb_train_hooks){.on_step = poison, .ctx = &in}) : NB_ERR_ARG;
    const char *name = in.t ? nb_params_at(nb_trainer_model(in.t)->ps, 2)->name : "?";
    ok(st == NB_ERR_NAN && has("step 4") && has(name) && has("nan"),
       "a NaN put into '%s' after step 3 stops step 4, naming it: %s", name, nb_last_error());
    nb_trainer_free(in.t);

    /* a NaN gradient: the optimizer refuses the step, names the parameter, changes nothing */
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "dec.w", NB_SHAPE(3, 3));
    nb_init_constant(w, 1);
    nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 0.1));
    nb_set(w->grad, 4, INFINITY);
    ok(nb_optim_step(opt) == NB_ERR_NAN && has("'dec.w'") && has("index 4") && nb_get(w, 0) == 1,
       "an infinite gradient: %s", nb_last_error());
    nb_optim_free(opt);
    nb_params_free(ps);

    /* a NaN in the data: nabla's data sets are bytes and cannot hold one, but a program feeding
     * its own floats can; the guard's locator names the op the NaN reached first */
    nb_model_cfg mc = nb_model_defaults();
    mc.kind = NB_VAE, mc.channels = 1, mc.height = 2, mc.width = 3, mc.nhidden = 1, mc.hidden[0] = 4, mc.latent = 2;
    nb_params *mp = nb_params_new(NB_F64);
    nb_rng r = nb_rng_seed(3);
    nb_model m;
    nb_tape *tp = nb_tape_new();
    double x[12];
    for (int i = 0; i < 12; i++) x[i] = 0.1 * i;
    x[7] = NAN; /* example 1, pixel 1 */
    nb_loss_terms lt;
    nb_status ms = nb_model_init(&m, &mc, mp, &r);
    nb_tensor *xt = ms ? NULL : nb_tensor_from(tp, NB_F64, NB_SHAPE(2, 6), x, 12);
    ms = ms ? ms : nb_model_loss(tp, &m, &(nb_batch){xt, xt, NULL}, &(nb_loss_opts){.beta = 1, .rng = &r}, &lt);
    char where[300] = "";
    const int at = ms ? -2 : nb_tape_find_nonfinite(tp, where, sizeof where);
    ok(at == 0 && strstr(where, "linear") && strstr(where, "(2,4)") && strstr(where, "element 4"),
       "a NaN in a batch of data is found where it entered, the encoder's first Linear: %s",
       ms ? nb_last_error() : where);
    nb_tape_free(tp);
    nb_params_free(mp);
}

int main(void)
{
    if (!mkdtemp(tmp)) return 1;
    test_numbers();
    test_foreign_checkpoint();
    test_labels();
    test_numerics();
    test_killed_saves();
    test_full_tmpfs();
    if (access(fashion, R_OK) == 0) {
        test_flipped_checkpoint();
        test_nan_injection();
    } else {
        ok(1, "# SKIP %s is not installed", fashion);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) tap_diag("could not remove %s", tmp);
    return tap_done();
}
