/* apps/app.c — see app.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/app.h"
#include "apps/image.h"
#include "tensor/error.h"
#include "tensor/file.h"

int app_fail(const char *cmd, const char *what)
{
    fprintf(stderr, "nabla %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "", nb_last_error());
    return APP_FAIL;
}

int app_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nabla %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see nabla %s --help)\n", cmd);
    va_end(ap);
    return APP_USAGE;
}

static app_flag *find_flag(app_flag *flags, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(flags[i].name, name)) return &flags[i];
    return NULL;
}

/* 1 when key is among keys (NULL: every key). */
static int takes_key(const char *const *keys, const char *key)
{
    if (!keys) return 1;
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key)) return 1;
    return 0;
}

/* Only what this command reads: its own flags, then the configuration keys it takes (one of its
 * flags of the same name replaces the key). */
static void help(const char *cmd, const char *summary, const app_flag *flags, int nflags, const char *const *keys)
{
    printf("usage: nabla %s [options]\n\n%s\n\n", cmd, summary);
    printf("%s options:\n", cmd);
    for (int i = 0; i < nflags; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", flags[i].name, flags[i].is_switch ? "" : " X");
        printf("  --%-14s %s%s%s%s%s\n", name, flags[i].help, flags[i].def ? " [" : "",
               flags[i].def ? flags[i].def : "", flags[i].def ? "]" : "", flags[i].repeat ? " (repeatable)" : "");
    }
    const char *key, *what;
    char def[600];
    for (int k = 0; (key = nb_train_key_info(k, &what, def, sizeof def)); k++)
        if (takes_key(keys, key) && !find_flag((app_flag *)flags, nflags, key)) {
            char name[64];
            snprintf(name, sizeof name, "%s X", key);
            /* a command that reads a trained model reads its data unless told otherwise */
            printf("  --%-14s %s [%s]\n", name, what, keys && !strcmp(key, "data") ? "the model's training data" : def);
        }
    if (!keys)
        printf("  --preset X       pytorch-examples | aevb | conv | dae | cvae | iwae | pythae-vae (before the keys above)\n"
               "  --config X       a JSON object of the keys above (after --preset, before the flags)\n");
    printf("  --help           this text\n");
}

int app_parse(int argc, char **argv, const char *cmd, const char *summary, app_flag *flags,
              int nflags, nb_train_cfg *cfg, const char *const *keys)
{
    *cfg = nb_train_defaults();
    const char *preset = NULL, *config = NULL;
    /* pass 1: help, preset and config file, which the other flags override */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(cmd, summary, flags, nflags, keys);
            return -1;
        }
        for (int k = 0; k < 2 && !keys; k++) { /* --preset X, --preset=X, and the same for --config */
            const char *name = k ? "--config" : "--preset";
            const size_t len = strlen(name);
            const char **slot = k ? &config : &preset;
            if (!strcmp(argv[i], name)) {
                if (i + 1 == argc) return app_usage(cmd, "%s needs a value", name);
                *slot = argv[i + 1];
            } else if (!strncmp(argv[i], name, len) && argv[i][len] == '=') {
                *slot = argv[i] + len + 1;
            }
        }
    }
    if (preset && nb_train_preset(cfg, preset)) return app_usage(cmd, "%s", nb_last_error());
    if (config && nb_train_load_config(cfg, config)) return app_usage(cmd, "%s", nb_last_error());
    /* pass 2: everything else */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) return app_usage(cmd, "unexpected argument '%s'", a);
        char name[64];
        const char *eq = strchr(a + 2, '='), *value = NULL;
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        if (!keys && (!strcmp(name, "preset") || !strcmp(name, "config"))) { /* applied in pass 1 */
            i += !eq;
            continue;
        }
        app_flag *f = find_flag(flags, nflags, name);
        if (f && f->is_switch) {
            if (eq) return app_usage(cmd, "--%s takes no value", name);
            f->count = 1;
            continue;
        }
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return app_usage(cmd, "--%s needs a value", name);
        if (f) {
            if (f->count == (f->repeat ? APP_MAX_REPEAT : 1)) {
                if (!f->repeat) return app_usage(cmd, "--%s given twice", name);
                return app_usage(cmd, "--%s given more than %d times", name, APP_MAX_REPEAT);
            }
            f->value[f->count++] = value;
        } else if (!takes_key(keys, name)) {
            nb_train_cfg probe = *cfg;
            if (!nb_train_set(&probe, name, value) || strncmp(nb_last_error(), "unknown option", 14))
                return app_usage(cmd, "--%s does not apply here: the model's own configuration is used", name);
            return app_usage(cmd, "unknown option '--%s'", name);
        } else if (nb_train_set(cfg, name, value)) {
            return app_usage(cmd, "%s", nb_last_error());
        }
    }
    return APP_OK;
}

const char *app_flag_str(const app_flag *flags, int nflags, const char *name)
{
    for (int i = 0; i < nflags; i++)
        if (!strcmp(flags[i].name, name)) return flags[i].count ? flags[i].value[0] : flags[i].def;
    return NULL;
}

long app_flag_long(const app_flag *flags, int nflags, const char *name, long def, int *bad)
{
    const char *v = app_flag_str(flags, nflags, name);
    if (!v) return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < 0) *bad = 1;
    return x;
}

double app_flag_double(const app_flag *flags, int nflags, const char *name, double def, int *bad)
{
    const char *v = app_flag_str(flags, nflags, name);
    if (!v) return def;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || x != x) *bad = 1;
    return x;
}

nb_status app_out_path(const char *dir, const char *name, char *buf, size_t size)
{
    nb_status st = nb_mkdirs(dir);
    if (st) return st;
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
        return nb_error(NB_ERR_ARG, "%s/%s: path too long", dir, name);
    return NB_OK;
}

int app_write_images(const char *cmd, const char *dir, const char *name, const img_text *text, int n,
                     const nb_tensor *const *ts, const int *rows, int cols, int channels, int height, int width)
{
    char path[600];
    if (app_out_path(dir, name, path, sizeof path) ||
        img_write_labelled(path, text, n, ts, rows, cols, channels, height, width, 2, 255, 2))
        return app_fail(cmd, NULL);
    printf("wrote %s\n", path);
    return APP_OK;
}

FILE *app_open_csv(const char *dir, const char *name, const char *header)
{
    char path[600];
    if (app_out_path(dir, name, path, sizeof path)) return NULL;
    FILE *f = fopen(path, "w");
    if (f)
        fprintf(f, "%s\n", header);
    else
        nb_error(NB_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

const char *app_last_run_file(char *buf, size_t size)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (state && state[0] == '/') snprintf(buf, size, "%s/nabla/last-run", state);
    else if (home && home[0]) snprintf(buf, size, "%s/.local/state/nabla/last-run", home);
    else return NULL;
    return buf;
}

void app_last_run_save(const char *dir)
{
    char file[600], abs[PATH_MAX], parent[600];
    if (!app_last_run_file(file, sizeof file) || !realpath(dir, abs)) return;
    snprintf(parent, sizeof parent, "%s", file);
    *strrchr(parent, '/') = 0;
    FILE *f = nb_mkdirs(parent) ? NULL : fopen(file, "w");
    if (!f) return; /* a convenience only: a read-only home changes nothing else */
    fprintf(f, "%s\n", abs);
    fclose(f);
}

/* The run directory recorded by the last `nabla train`, or NULL. */
static const char *last_run(char *buf, size_t size)
{
    char file[600];
    FILE *f = app_last_run_file(file, sizeof file) ? fopen(file, "r") : NULL;
    if (!f) return NULL;
    const int got = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (!got) return NULL;
    buf[strcspn(buf, "\n")] = 0;
    return buf[0] ? buf : NULL;
}

int app_resolve_run(const char *cmd, const app_flag *flags, int nflags, app_run *run)
{
    const char *out = NULL, *ckpt = NULL;
    for (int i = 0; i < nflags; i++) {
        if (!strcmp(flags[i].name, "out") && flags[i].count) out = flags[i].value[0];
        if (!strcmp(flags[i].name, "checkpoint") && flags[i].count) ckpt = flags[i].value[0];
    }
    char last[600];
    if (!out && !ckpt && !(out = last_run(last, sizeof last))) {
        char file[600];
        fprintf(stderr, "nabla %s: which model? Pass --out DIR, the directory of a `nabla train --out DIR` run "
                "(or --checkpoint FILE); no run of nabla train is recorded in %s\n", cmd,
                app_last_run_file(file, sizeof file) ? file : "$XDG_STATE_HOME or $HOME");
        return APP_USAGE;
    }
    if (ckpt) snprintf(run->checkpoint, sizeof run->checkpoint, "%s", ckpt);
    else snprintf(run->checkpoint, sizeof run->checkpoint, "%s/checkpoint.safetensors", out);
    if (!out) { /* beside the checkpoint */
        snprintf(run->out, sizeof run->out, "%s", ckpt);
        char *slash = strrchr(run->out, '/');
        if (slash) *slash = 0;
        else snprintf(run->out, sizeof run->out, ".");
    } else {
        snprintf(run->out, sizeof run->out, "%s", out);
    }
    if (access(run->checkpoint, R_OK)) {
        fprintf(stderr, "nabla %s: no model at %s (%s): train one with `nabla train --out DIR`, then pass "
                "--out DIR or --checkpoint FILE\n", cmd, run->checkpoint, strerror(errno));
        return APP_FAIL;
    }
    return APP_OK;
}

nb_status app_load_model(const char *path, app_model *am)
{
    memset(am, 0, sizeof *am);
    nb_status st = nb_checkpoint_config(path, &am->cfg, &am->epoch, NULL);
    if (st) return st;
    nb_rng r = nb_rng_seed(0); /* the values are replaced by the checkpoint's */
    if (!(am->ps = nb_params_new(NB_F32))) return nb_error(NB_ERR_NOMEM, "out of memory");
    if ((st = nb_model_init(&am->m, &am->cfg.model, am->ps, &r)) ||
        (st = nb_checkpoint_load(path, am->ps, NULL))) {
        app_free_model(am);
        return st;
    }
    return NB_OK;
}

void app_free_model(app_model *am)
{
    nb_params_free(am->ps);
    am->ps = NULL;
}

nb_tensor *app_onehot(nb_tape *tp, int64_t n, int nclasses, const int *labels)
{
    nb_tensor *y = nb_zeros(tp, NB_F32, NB_SHAPE(n, nclasses));
    for (int64_t i = 0; y && i < n; i++) nb_set(y, i * nclasses + labels[i] % nclasses, 1.0);
    return y;
}

nb_status app_images(nb_tape *tp, const app_model *am, const nb_dataset *ds, const int64_t *idx,
                     int64_t n, nb_tensor **x, nb_tensor **y)
{
    /* pictures show the data as it is: dynamic binarisation would redraw it on every call */
    const nb_binarize bin = am->cfg.binarize == NB_BIN_DYNAMIC ? NB_BIN_NONE : am->cfg.binarize;
    return nb_model_batch(tp, &am->m, ds, idx, n, bin, NULL, x, y);
}

/* The directory's last component, ignoring trailing slashes. */
static const char *base_name(const char *dir, char *buf, size_t size)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(buf, size, "%.*s", (int)(n - b), dir + b);
    return buf;
}

static int contains_ci(const char *s, const char *word)
{
    for (; *s; s++) {
        size_t i = 0;
        while (word[i] && s[i] && (s[i] | 32) == word[i]) i++;
        if (!word[i]) return 1;
    }
    return 0;
}

const char *app_data_name(const char *dir, char *buf, size_t size)
{
    char base[256];
    base_name(dir, base, sizeof base);
    if (contains_ci(base, "fashion")) snprintf(buf, size, "Fashion-MNIST");
    else if (contains_ci(base, "mnist")) snprintf(buf, size, "MNIST");
    else snprintf(buf, size, "the images in %s", base);
    return buf;
}

const char *app_data_noun(const char *dir)
{
    char base[256];
    base_name(dir, base, sizeof base);
    return contains_ci(base, "fashion") ? "garment" : contains_ci(base, "mnist") ? "digit" : "image";
}

const char *app_class_name(const char *dir, int k, char *buf, size_t size)
{
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    char base[256];
    base_name(dir, base, sizeof base);
    if (k >= 0 && k < 10 && contains_ci(base, "fashion")) snprintf(buf, size, "%s", fashion[k]);
    else snprintf(buf, size, "%s%d", contains_ci(base, "mnist") ? "" : "class ", k);
    return buf;
}

const char *app_model_name(const nb_train_cfg *cfg, char *buf, size_t size)
{
    const nb_model_cfg *m = &cfg->model;
    static const char *const kinds[] = {"AE", "DAE", "VAE", "CVAE", "VQ-VAE", "VampPrior VAE", "two-layer VAE"};
    const int linear = m->arch == NB_ARCH_MLP && m->nhidden == 0 && m->act == NB_ACT_IDENTITY;
    const int beta = m->kind >= NB_VAE && m->kind != NB_VQVAE && cfg->beta != 1;
    char b[32] = "";
    if (beta) snprintf(b, sizeof b, " (β=%g)", cfg->beta);
    char d[64];
    if (m->kind == NB_VQVAE) snprintf(d, sizeof d, "K=%d Dc=%d", m->codebook, m->code_dim);
    else if (m->kind == NB_HVAE) snprintf(d, sizeof d, "d=%d+%d", m->hvae_z1, m->hvae_z2);
    else snprintf(d, sizeof d, "d=%d", m->latent);
    snprintf(buf, size, "%s%s%s%s %s%s", linear ? "linear " : "", m->arch == NB_ARCH_CONV ? "conv " : "",
             beta ? "β-" : "", kinds[m->kind], d, b);
    return buf;
}

int app_given(int argc, char **argv, const char *name)
{
    const size_t n = strlen(name);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, n) && (!argv[i][2 + n] || argv[i][2 + n] == '='))
            return 1;
    return 0;
}
