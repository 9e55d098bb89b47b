/* apps/app.c — see app.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void help(const char *cmd, const char *summary, const app_flag *flags, int nflags, int config_keys)
{
    printf("usage: nabla %s [options]\n\n%s\n\n", cmd, summary);
    if (nflags) {
        printf("%s options:\n", cmd);
        for (int i = 0; i < nflags; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", flags[i].name, flags[i].is_switch ? "" : " X");
            printf("  --%-14s %s%s%s%s%s\n", name, flags[i].help, flags[i].def ? " [" : "",
                   flags[i].def ? flags[i].def : "", flags[i].def ? "]" : "", flags[i].repeat ? " (repeatable)" : "");
        }
        printf("\n");
    }
    printf("common options:\n  --preset NAME   pytorch-examples | aevb | conv | dae | cvae\n"
           "  --config FILE   a JSON object of the keys below\n  --help          this text\n");
    if (config_keys) {
        printf("\nconfiguration keys (--key value):\n");
        nb_train_keys_help(stdout);
    }
}

int app_parse(int argc, char **argv, const char *cmd, const char *summary, app_flag *flags,
              int nflags, nb_train_cfg *cfg, int config_keys)
{
    *cfg = nb_train_defaults();
    const char *preset = NULL, *config = NULL;
    /* pass 1: help, preset and config file, which the other flags override */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(cmd, summary, flags, nflags, config_keys);
            return -1;
        }
        for (int k = 0; k < 2; k++) { /* --preset X, --preset=X, and the same for --config */
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
        if (!strcmp(name, "preset") || !strcmp(name, "config")) { /* applied in pass 1 */
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
        } else if (!config_keys || nb_train_set(cfg, name, value)) {
            return app_usage(cmd, "%s", config_keys ? nb_last_error() : "unknown option");
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

int app_write_images(const char *cmd, const char *dir, const char *name, int n, const nb_tensor *const *ts,
                     const int *rows, int cols, int channels, int height, int width)
{
    char path[600];
    if (app_out_path(dir, name, path, sizeof path) ||
        img_write_stack(path, n, ts, rows, cols, channels, height, width, 2, 255, 2))
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

const char *app_checkpoint(const app_flag *flags, int nflags, const nb_train_cfg *cfg, char *buf,
                           size_t size)
{
    for (int i = 0; i < nflags; i++) /* its default in --help is a description, not a path */
        if (!strcmp(flags[i].name, "checkpoint") && flags[i].count) return flags[i].value[0];
    snprintf(buf, size, "%s/checkpoint.safetensors", cfg->out);
    return buf;
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
