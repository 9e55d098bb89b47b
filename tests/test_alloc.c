/* tests/test_alloc.c — every allocation of nabla may fail, and each failure is a status and a
 * message: no crash, no leak (LeakSanitizer checks at exit in the sanitizer build).
 *
 * Linked with ld --wrap for malloc, calloc, realloc, aligned_alloc and strdup (-Dalloc_fail_test),
 * so that the library's own calls come here: when armed, the n-th one returns NULL. For each
 * operation (building a model and its optimizer, a training step, saving and loading a
 * checkpoint, loading a data set), n runs from 1 until the operation makes fewer than n
 * allocations, and every failed run must report an error in words.
 *
 * fsync and rename are wrapped too, to check the order a save needs: the temporary file is
 * synced before it is renamed over the target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tensor/error.h" /* to clear nb_last_error between runs */
#include "tests/tap.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_fsync(int fd);
int __wrap_rename(const char *from, const char *to);

static long fail_at, calls; /* fail the fail_at-th call after arming; 0: never */

static int fails(void) { return fail_at && ++calls == fail_at; }
void *__wrap_malloc(size_t n) { return fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fails() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fails() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fails() ? NULL : __real_aligned_alloc(align, n); }
char *__wrap_strdup(const char *s) { return fails() ? NULL : __real_strdup(s); }

/* what a save did, in order: 's' for fsync of a file, 'r' for a rename */
static char trail[64];
static int ntrail;
int __wrap_fsync(int fd)
{
    if (ntrail < (int)sizeof trail - 1) trail[ntrail++] = 's';
    return __real_fsync(fd);
}
int __wrap_rename(const char *from, const char *to)
{
    if (ntrail < (int)sizeof trail - 1) trail[ntrail++] = 'r';
    return __real_rename(from, to);
}

static void arm(long n) { fail_at = n, calls = 0; }
static long disarm(void)
{
    const long made = calls;
    fail_at = 0;
    return made;
}

static char tmp[] = "/tmp/nb_alloc_XXXXXX";
static char data_dir[300], ckpt[300];

/* ---- the operations: each returns 0 on success, else a status, cleaning up after itself ----- */

static nb_model_cfg small_cfg(nb_arch arch)
{
    nb_model_cfg c = nb_model_defaults();
    c.arch = arch, c.channels = 1, c.height = c.width = 8, c.hidden[0] = 6, c.latent = 2;
    c.conv1 = 2, c.conv2 = 4;
    return c;
}

static nb_status build(nb_arch arch)
{
    nb_params *ps = nb_params_new(NB_F32);
    if (!ps) return NB_ERR_NOMEM;
    nb_model m;
    nb_rng r = nb_rng_seed(1);
    const nb_model_cfg c = small_cfg(arch);
    nb_status st = nb_model_init(&m, &c, ps, &r);
    nb_optim *o = st ? NULL : nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 1e-3));
    if (!st && !o) st = NB_ERR_NOMEM;
    nb_optim_free(o);
    nb_params_free(ps);
    return st;
}

static nb_status build_mlp(void) { return build(NB_ARCH_MLP); }
static nb_status build_conv(void) { return build(NB_ARCH_CONV); }

static nb_params *step_ps;
static nb_model step_model;
static nb_optim *step_opt;

static nb_status train_step(void)
{
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(2);
    nb_tensor *x = nb_uniform(tp, &r, NB_F32, NB_SHAPE(4, 64), 0, 1);
    nb_loss_terms t;
    nb_loss_opts o = {.beta = 1, .rng = &r};
    nb_status st = nb_model_loss(tp, &step_model, &(nb_batch){x, x, NULL}, &o, &t);
    if (!st) st = nb_backward(tp, t.loss);
    if (!st) st = nb_optim_step(step_opt);
    if (!tp && !st) st = NB_ERR_NOMEM;
    nb_tape_free(tp);
    return st;
}

static nb_status save(void)
{
    nb_train_cfg c = nb_train_defaults();
    return nb_checkpoint_save(ckpt, step_ps, step_opt, &c, 1, 1);
}

static nb_status load(void)
{
    nb_train_cfg c;
    int epoch;
    int64_t step;
    nb_status st = nb_checkpoint_config(ckpt, &c, &epoch, &step);
    return st ? st : nb_checkpoint_load(ckpt, step_ps, step_opt);
}

static nb_status load_data(void)
{
    nb_dataset ds;
    nb_status st = nb_dataset_load(&ds, data_dir, "train");
    if (!st) nb_dataset_free(&ds);
    return st;
}

static void put_be32(FILE *f, uint32_t v)
{
    const unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static int write_data(void)
{
    char p[400];
    snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
    snprintf(p, sizeof p, "mkdir -p '%s'", data_dir);
    if (system(p)) return 0;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", data_dir);
    FILE *f = fopen(p, "wb");
    if (!f) return 0;
    put_be32(f, 0x803), put_be32(f, 5), put_be32(f, 8), put_be32(f, 8);
    for (int i = 0; i < 5 * 64; i++) fputc(i & 255, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", data_dir);
    if (!(f = fopen(p, "wb"))) return 0;
    put_be32(f, 0x801), put_be32(f, 5);
    for (int i = 0; i < 5; i++) fputc(i % 3, f);
    fclose(f);
    return 1;
}

/* Fails each allocation of op in turn; every failure must come back as a status with words. */
static void sweep(const char *what, nb_status (*op)(void))
{
    long n = 1, silent = 0, total = 0;
    char first_silent[200] = "";
    for (;; n++) {
        nb_error(NB_OK, "%s", ""); /* a stale message must not pass for this run's */
        arm(n);
        const nb_status st = op();
        const long made = disarm();
        if (made < n) { /* nothing failed this time: every allocation has been tried */
            total = made;
            ok(st == NB_OK, "%s: succeeds when nothing fails (%s)", what, st ? nb_last_error() : "ok");
            break;
        }
        if (st == NB_OK || !nb_last_error()[0]) {
            if (!silent++) snprintf(first_silent, sizeof first_silent, "allocation %ld: status %d, \"%s\"", n, st, nb_last_error());
        }
        if (n > 100000) break;
    }
    ok(silent == 0, "%s: each of its %ld allocations can fail, and every failure returns a status and a "
       "message%s%s", what, total, silent ? "; not: " : "", first_silent);
}

int main(void)
{
    if (!mkdtemp(tmp) || !write_data()) return 1;
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", tmp);
    /* the step, save and load sweeps share one model, built before arming */
    step_ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(3);
    nb_model_cfg c = small_cfg(NB_ARCH_MLP);
    if (nb_model_init(&step_model, &c, step_ps, &r) || !(step_opt = nb_optim_new(step_ps, nb_optim_defaults(NB_ADAM, 1e-3))))
        return 1;
    sweep("building an MLP VAE and its optimizer", build_mlp);
    sweep("building a conv VAE and its optimizer", build_conv);
    sweep("a training step", train_step);
    sweep("saving a checkpoint", save);
    if (save() == NB_OK) sweep("loading a checkpoint", load);
    sweep("loading a data set", load_data);

    ntrail = 0;
    const nb_status st = save();
    trail[ntrail] = 0;
    ok(!st && strchr(trail, 's') && strchr(trail, 'r') && strchr(trail, 's') < strchr(trail, 'r'),
       "a save syncs its temporary file before renaming it over the target (calls: %s)", trail);

    nb_optim_free(step_opt);
    nb_params_free(step_ps);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) tap_diag("could not remove %s", tmp);
    return tap_done();
}
