/* models/config.c — one table of configuration keys: the command line, --config files, presets,
 * config.json and checkpoints all go through it, so a key means the same everywhere. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/internal.h"
#include "tensor/error.h"

nb_train_cfg nb_train_defaults(void)
{
    nb_train_cfg c;
    memset(&c, 0, sizeof c);
    c.model = nb_model_defaults();
    c.optim = nb_optim_defaults(NB_ADAM, 1e-3);
    c.schedule.kind = NB_LR_CONSTANT;
    snprintf(c.data, sizeof c.data, "/usr/share/datasets/fashion-mnist");
    snprintf(c.out, sizeof c.out, "out");
    snprintf(c.preset, sizeof c.preset, "pytorch-examples");
    c.binarize = NB_BIN_NONE;
    c.batch = 128, c.eval_batch = 500, c.epochs = 10, c.seed = 1, c.beta = 1, c.progress = -1;
    c.objective = NB_OBJ_ELBO, c.samples = 5, c.tc_beta = 6, c.collapse = 0.5;
    c.vq_restart = 100;
    return c;
}

typedef enum { T_INT, T_INT64, T_U64, T_DOUBLE, T_STRING, T_ENUM, T_HIDDEN, T_CORRUPT, T_SCHEDULE } key_type;

typedef struct key_def {
    const char *key;
    key_type type;
    size_t off;
    const char *const *names; /* T_ENUM: value names, index = enum value */
    const char *help;
    double lo, hi;            /* numbers: the range accepted (checked before any arithmetic) */
} key_def;

static const char *const model_names[] = {"ae", "dae", "vae", "cvae", "vqvae", "vamp", "hvae", NULL};
static const char *const arch_names[] = {"mlp", "conv", NULL};
static const char *const act_names[] = {"relu", "tanh", "leaky-relu", "elu", "gelu", "identity", NULL};
static const char *const decoder_names[] = {"bernoulli", "gaussian", "gaussian-shared", "gaussian-pixel",
                                            "gaussian-head", NULL};
static const char *const output_names[] = {"sigmoid", "identity", NULL};
static const char *const optim_names[] = {"sgd", "adam", "adamw", "adagrad", NULL};
static const char *const bin_names[] = {"none", "threshold", "dynamic", NULL};
static const char *const precision_names[] = {"f32", "bf16", NULL};
static const char *const objective_names[] = {"elbo", "iwae", "tcvae", "wae", "infovae", NULL};

#define OFF(f) offsetof(nb_train_cfg, f)
static const key_def keys[] = {
    {"model", T_ENUM, OFF(model.kind), model_names, "ae | dae | vae | cvae | vqvae | vamp | hvae", 0, 0},
    {"arch", T_ENUM, OFF(model.arch), arch_names, "mlp | conv", 0, 0},
    {"latent", T_INT, OFF(model.latent), NULL, "size of the code z", 1, 4096},
    {"hidden", T_HIDDEN, 0, NULL, "MLP hidden sizes, encoder order, e.g. 400 or 392,196; none: no hidden layer", 0, 0},
    {"conv-channels", T_INT, OFF(model.conv1), NULL, "channels of the first conv layer (the second has twice)", 1, 1024},
    {"act", T_ENUM, OFF(model.act), act_names, "relu | tanh | leaky-relu | elu | gelu | identity", 0, 0},
    {"decoder", T_ENUM, OFF(model.decoder), decoder_names,
     "bernoulli | gaussian | gaussian-shared | gaussian-pixel | gaussian-head (learned log-variance: one, per pixel, a head)", 0, 0},
    {"output", T_ENUM, OFF(model.output), output_names, "sigmoid | identity: the Gaussian decoder's mean from its last layer", 0, 0},
    {"sigma", T_DOUBLE, OFF(model.sigma), NULL, "fixed decoder standard deviation (decoder gaussian)", 1e-6, 1e6},
    {"init-std", T_DOUBLE, OFF(model.init_std), NULL, "weights and biases ~ N(0, this) instead of PyTorch's defaults (0: PyTorch)", 0, 100},
    {"logvar-min", T_DOUBLE, OFF(model.logvar_min), NULL, "clamp of a learned log-variance (off when min >= max)", -100, 100},
    {"logvar-max", T_DOUBLE, OFF(model.logvar_max), NULL, "clamp of a learned log-variance", -100, 100},
    {"codebook", T_INT, OFF(model.codebook), NULL, "vqvae: codes in the codebook (K)", 2, 65536},
    {"code-dim", T_INT, OFF(model.code_dim), NULL, "vqvae: values per code (Dc)", 1, 4096},
    {"codes", T_INT, OFF(model.codes), NULL, "vqvae (MLP): code positions per image (L; conv: the 7x7 grid)", 1, 4096},
    {"commitment", T_DOUBLE, OFF(model.commitment), NULL, "vqvae: weight of the commitment loss (beta_c)", 0, 1e6},
    {"vq-restart", T_INT, OFF(vq_restart), NULL, "vqvae: every N steps, codes unused since the last restart move to encoder outputs (0: at epoch ends only)", 0, 1e6},
    {"pseudo-inputs", T_INT, OFF(model.pseudo_inputs), NULL, "vamp: pseudo-inputs of the VampPrior (Kp)", 1, 100000},
    {"hvae-hidden1", T_INT, OFF(model.hvae_hidden1), NULL, "hvae: hidden size of q(z1|x) and p(x|z1)", 1, 65536},
    {"hvae-z1", T_INT, OFF(model.hvae_z1), NULL, "hvae: dims of z1", 1, 4096},
    {"hvae-hidden2", T_INT, OFF(model.hvae_hidden2), NULL, "hvae: hidden size of q(z2|z1) and p(z1|z2)", 1, 65536},
    {"hvae-z2", T_INT, OFF(model.hvae_z2), NULL, "hvae: dims of z2", 1, 4096},
    {"beta", T_DOUBLE, OFF(beta), NULL, "KL weight (1: the ELBO)", 0, 1e6},
    {"kl-warmup", T_INT, OFF(kl_warmup), NULL, "epochs over which beta rises linearly from 0", 0, 1e6},
    {"free-bits", T_DOUBLE, OFF(free_bits), NULL, "minimum KL per latent dimension, nats (0: off)", 0, 1e6},
    {"kl-cycle", T_INT, OFF(kl_cycle), NULL, "cyclical beta: in each cycle of N epochs it rises from 0 over the first half, then holds (0: off)", 0, 1e6},
    {"objective", T_ENUM, OFF(objective), objective_names, "elbo | iwae | tcvae | wae | infovae: what a VAE trains on", 0, 0},
    {"samples", T_INT, OFF(samples), NULL, "importance samples K per image (objective iwae)", 1, 4096},
    {"tc-beta", T_DOUBLE, OFF(tc_beta), NULL, "weight of the total correlation (objective tcvae; MI and dwKL weigh 1)", 0, 1e6},
    {"mmd-lambda", T_DOUBLE, OFF(mmd_lambda), NULL, "weight of the MMD (objectives wae, infovae; 0: 10 for wae, 1000 for infovae)", 0, 1e9},
    {"collapse", T_DOUBLE, OFF(collapse), NULL, "warn when the active latent dims fall below this fraction of them (0: never)", 0, 1},
    {"valid", T_INT64, OFF(valid), NULL, "the last N training images validate (not trained on); best.safetensors keeps the best (0: off)", 0, 1e12},
    {"corrupt", T_CORRUPT, 0, NULL, "DAE corruptions, e.g. gaussian:0.3,dropout:0.5,blur:4,block:16,saltpepper:0.1", 0, 0},
    {"optimizer", T_ENUM, OFF(optim.kind), optim_names, "sgd | adam | adamw | adagrad (resets its PyTorch defaults)", 0, 0},
    {"lr", T_DOUBLE, OFF(optim.lr), NULL, "learning rate", 0, 1e6},
    {"optim-eps", T_DOUBLE, OFF(optim.eps), NULL, "the optimizer's epsilon (Adam, AdamW, Adagrad; set after --optimizer)", 0, 1},
    {"weight-decay", T_DOUBLE, OFF(optim.weight_decay), NULL, "L2 weight decay (decoupled for adamw)", 0, 1e6},
    {"momentum", T_DOUBLE, OFF(optim.momentum), NULL, "SGD momentum", 0, 0.999999},
    {"nesterov", T_INT, OFF(optim.nesterov), NULL, "SGD Nesterov momentum (0 or 1)", 0, 1},
    {"clip", T_DOUBLE, OFF(optim.clip_norm), NULL, "clip the global gradient norm to this (0: off)", 0, 1e12},
    {"lr-schedule", T_SCHEDULE, 0, NULL, "none | step:EPOCHS:GAMMA | exp:GAMMA", 0, 0},
    {"batch", T_INT64, OFF(batch), NULL, "minibatch size", 1, 1e7},
    {"epochs", T_INT, OFF(epochs), NULL, "epochs to train", 0, 1e7},
    {"seed", T_U64, OFF(seed), NULL, "seed of every random draw", 0, 1.8446744073709552e19},
    {"threads", T_INT, OFF(threads), NULL, "threads (0: all cores)", 0, 4096},
    {"data", T_STRING, OFF(data), NULL, "directory of MNIST-style IDX files", 0, 0},
    {"out", T_STRING, OFF(out), NULL, "output directory", 0, 0},
    {"binarize", T_ENUM, OFF(binarize), bin_names, "none | threshold | dynamic", 0, 0},
    {"precision", T_ENUM, OFF(precision), precision_names,
     "f32 | bf16: Linear and conv products on bf16 inputs (AVX512-BF16 or AMX), f32 weights and loss", 0, 0},
    {"train-size", T_INT64, OFF(train_size), NULL, "use the first N training images (0: all)", 0, 1e12},
    {"test-size", T_INT64, OFF(test_size), NULL, "use the first N test images (0: all)", 0, 1e12},
    {"eval-batch", T_INT64, OFF(eval_batch), NULL, "batch size for evaluation", 1, 1e7},
    /* set from the data by training; kept so that a checkpoint rebuilds its model alone */
    {"channels", T_INT, OFF(model.channels), NULL, "image channels (taken from the data)", 0, 64},
    {"height", T_INT, OFF(model.height), NULL, "image height (taken from the data)", 0, 4096},
    {"width", T_INT, OFF(model.width), NULL, "image width (taken from the data)", 0, 4096},
    {"classes", T_INT, OFF(model.nclasses), NULL, "label classes of a CVAE (taken from the data)", 0, 256},
};
enum { NKEYS = sizeof keys / sizeof keys[0] };

static const key_def *find_key(const char *key)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].key, key)) return &keys[i];
    return NULL;
}

static int parse_int64(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno) return 0;
    *out = x;
    return 1;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return end != v && !*end && !errno;
}

static nb_status bad(const char *key, const char *value, const char *want)
{
    return nb_error(NB_ERR_ARG, "--%s %.60s: expected %s", key, value, want);
}

/* A number outside the key's range: the message gives the range as the user would type it. */
static nb_status out_of_range(const key_def *k, const char *value)
{
    return nb_error(NB_ERR_ARG, "--%s %.60s: expected %s from %.12g to %.12g", k->key, value,
                    k->type == T_DOUBLE ? "a finite number" : "an integer", k->lo, k->hi);
}

nb_status nb_train_set(nb_train_cfg *c, const char *key, const char *value)
{
    const key_def *k = find_key(key);
    if (!k) return nb_error(NB_ERR_ARG, "unknown option '%s'", key);
    char *p = (char *)c + k->off;
    int64_t i;
    double d;
    switch (k->type) {
    case T_INT:
    case T_INT64:
        if (!parse_int64(value, &i)) return bad(key, value, "an integer");
        if ((double)i < k->lo || (double)i > k->hi) return out_of_range(k, value);
        if (k->type == T_INT)
            *(int *)p = (int)i;
        else
            *(int64_t *)p = i;
        if (!strcmp(key, "conv-channels")) c->model.conv2 = 2 * (int)i; /* i <= 1024 */
        return NB_OK;
    case T_U64: {
        char *end;
        errno = 0;
        const unsigned long long u = strtoull(value, &end, 10);
        if (end == value || *end || errno || value[0] == '-') return bad(key, value, "a non-negative integer");
        *(uint64_t *)p = (uint64_t)u;
        return NB_OK;
    }
    case T_DOUBLE:
        /* strtod takes "inf" and "nan", and 1e309 overflows to inf: none of them is a setting */
        if (!parse_double(value, &d) || !isfinite(d)) return bad(key, value, "a finite number");
        if (d < k->lo || d > k->hi) return out_of_range(k, value);
        *(double *)p = d;
        return NB_OK;
    case T_STRING:
        if (strlen(value) >= sizeof c->data) return bad(key, value, "a shorter path");
        snprintf(p, sizeof c->data, "%s", value);
        return NB_OK;
    case T_ENUM:
        for (int e = 0; k->names[e]; e++)
            if (!strcmp(k->names[e], value)) {
                *(int *)p = e;
                if (!strcmp(key, "optimizer")) c->optim = nb_optim_defaults((nb_optim_kind)e, c->optim.lr);
                return NB_OK;
            }
        return bad(key, value, k->help);
    case T_HIDDEN: {
        int n = 0, sizes[NB_MAX_HIDDEN];
        char buf[128], *save = NULL;
        snprintf(buf, sizeof buf, "%s", strcmp(value, "none") ? value : "");
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == NB_MAX_HIDDEN || !parse_int64(t, &i) || i < 1 || i > 1 << 20)
                return bad(key, value, "1 to 4 positive sizes separated by commas, or 'none'");
            sizes[n++] = (int)i;
        }
        if (!n && strcmp(value, "none")) return bad(key, value, "sizes separated by commas, or 'none'");
        c->model.nhidden = n;
        memcpy(c->model.hidden, sizes, sizeof(int) * (size_t)n);
        return NB_OK;
    }
    case T_CORRUPT: return nb_corruption_parse(&c->corrupt, value);
    case T_SCHEDULE: {
        nb_lr_schedule s = {NB_LR_CONSTANT, 1, 0};
        int n = 0;
        if (!strcmp(value, "none")) {
            c->schedule = s;
            return NB_OK;
        }
        if (sscanf(value, "step:%d:%lf%n", &s.step_size, &s.gamma, &n) == 2 && !value[n] && s.step_size > 0) {
            s.kind = NB_LR_STEP;
        } else if (sscanf(value, "exp:%lf%n", &s.gamma, &n) == 1 && !value[n]) {
            s.kind = NB_LR_EXPONENTIAL;
        } else {
            return bad(key, value, "none, step:EPOCHS:GAMMA or exp:GAMMA");
        }
        c->schedule = s;
        return NB_OK;
    }
    }
    return NB_ERR_ARG;
}

/* The shortest %g text that reads back as exactly v: 0.1, not 0.10000000000000001, and still
 * exact in config.json. */
static const char *shortest(char *buf, size_t size, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* The value of a key as nb_train_set would take it back. */
static void get_value(const nb_train_cfg *c, const key_def *k, char *buf, size_t size)
{
    const char *p = (const char *)c + k->off;
    char g[32];
    switch (k->type) {
    case T_INT: snprintf(buf, size, "%d", *(const int *)p); break;
    case T_INT64: snprintf(buf, size, "%lld", (long long)*(const int64_t *)p); break;
    case T_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case T_DOUBLE: shortest(buf, size, *(const double *)p); break;
    case T_STRING: snprintf(buf, size, "%s", p); break;
    case T_ENUM: snprintf(buf, size, "%s", k->names[*(const int *)p]); break;
    case T_HIDDEN: {
        size_t n = 0;
        snprintf(buf, size, "none");
        for (int i = 0; i < c->model.nhidden && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, i ? ",%d" : "%d", c->model.hidden[i]);
        break;
    }
    case T_CORRUPT: nb_corruption_str(&c->corrupt, buf, size); break;
    case T_SCHEDULE:
        if (c->schedule.kind == NB_LR_STEP)
            snprintf(buf, size, "step:%d:%s", c->schedule.step_size, shortest(g, sizeof g, c->schedule.gamma));
        else if (c->schedule.kind == NB_LR_EXPONENTIAL)
            snprintf(buf, size, "exp:%s", shortest(g, sizeof g, c->schedule.gamma));
        else
            snprintf(buf, size, "none");
        break;
    }
}

char *nb_train_cfg_json(const nb_train_cfg *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "preset", c->preset);
    for (int i = 0; i < NKEYS; i++) {
        char v[600];
        get_value(c, &keys[i], v, sizeof v);
        const key_type t = keys[i].type;
        /* JSON numbers are doubles: a 64-bit seed is exact only as a string */
        if (t == T_INT || t == T_INT64 || t == T_DOUBLE)
            cJSON_AddRawToObject(o, keys[i].key, v); /* exact, and a JSON number */
        else
            cJSON_AddStringToObject(o, keys[i].key, v);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static nb_status set_from_json(nb_train_cfg *c, const cJSON *o, const char *origin)
{
    if (!cJSON_IsObject(o)) return nb_error(NB_ERR_FORMAT, "%s: not a JSON object", origin);
    const cJSON *preset = cJSON_GetObjectItemCaseSensitive(o, "preset");
    if (cJSON_IsString(preset) && nb_train_preset(c, preset->valuestring)) return NB_ERR_ARG;
    for (const cJSON *it = o->child; it; it = it->next) {
        if (!strcmp(it->string, "preset")) continue;
        char v[600];
        if (cJSON_IsString(it))
            snprintf(v, sizeof v, "%s", it->valuestring);
        else if (cJSON_IsNumber(it)) {
            const key_def *k = find_key(it->string);
            if (k && (k->type == T_U64 || k->type == T_INT64) && fabs(it->valuedouble) > 9007199254740992.0)
                return nb_error(NB_ERR_FORMAT, "%s: '%s' = %.17g is not exact as a JSON number; write it as "
                                "a string", origin, it->string, it->valuedouble);
            snprintf(v, sizeof v, "%.17g", it->valuedouble);
        }
        else
            return nb_error(NB_ERR_FORMAT, "%s: '%s' must be a string or a number", origin, it->string);
        if (nb_train_set(c, it->string, v)) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            return nb_error(NB_ERR_ARG, "%s: %s", origin, msg);
        }
    }
    return NB_OK;
}

nb_status nb_train_load_config(nb_train_cfg *c, const char *path)
{
    if (!c || !path) return nb_error(NB_ERR_ARG, "nb_train_load_config: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return nb_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) { /* a FIFO or a terminal would block */
        fclose(f);
        return nb_error(NB_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size >= 1 << 20) {
        fclose(f);
        return nb_error(NB_ERR_FORMAT, "%s: %lld bytes; a configuration is at most 1 MB", path, (long long)sb.st_size);
    }
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) return nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    text[n] = 0;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) return nb_error(NB_ERR_FORMAT, "%s: not valid JSON", path);
    nb_status st = set_from_json(c, o, path);
    cJSON_Delete(o);
    return st;
}

nb_status nb_train_preset(nb_train_cfg *c, const char *name)
{
    enum { MAXKV = 32 };
    static const struct { const char *name; const char *kv[MAXKV]; } presets[] = {
        /* pytorch/examples vae/main.py: 784-400-20, ReLU, BCE summed, Adam 1e-3, batch 128 */
        {"pytorch-examples", {"model", "vae", "arch", "mlp", "hidden", "400", "latent", "20", "act", "relu",
                              "decoder", "bernoulli", "optimizer", "adam", "lr", "0.001", "batch", "128"}},
        /* Kingma & Welling 2013: 500 tanh hidden units, minibatch 100, Adagrad, N(0, 0.01) init */
        {"aevb", {"model", "vae", "arch", "mlp", "hidden", "500", "act", "tanh", "decoder", "bernoulli",
                  "optimizer", "adagrad", "lr", "0.02", "batch", "100", "init-std", "0.01"}},
        {"conv", {"model", "vae", "arch", "conv", "latent", "20", "act", "relu", "optimizer", "adam",
                  "lr", "0.001", "batch", "128"}},
        {"dae", {"model", "dae", "decoder", "gaussian", "corrupt", "dropout:0.5", "latent", "32"}},
        {"cvae", {"model", "cvae", "arch", "mlp", "hidden", "400", "latent", "20"}},
        /* Burda et al. 2015: 784-200-200-50 tanh, k = 5, batch 20, dynamic binarisation, Adam eps 1e-4 */
        {"iwae", {"model", "vae", "arch", "mlp", "hidden", "200,200", "latent", "50", "act", "tanh",
                  "decoder", "bernoulli", "objective", "iwae", "samples", "5", "batch", "20", "binarize",
                  "dynamic", "optimizer", "adam", "lr", "0.001", "optim-eps", "1e-4"}},
        /* pythae's MLP VAE: 784-512-16 ReLU, Bernoulli, batch 64, Adam 1e-3 */
        {"pythae-vae", {"model", "vae", "arch", "mlp", "hidden", "512", "latent", "16", "act", "relu",
                        "decoder", "bernoulli", "optimizer", "adam", "lr", "0.001", "batch", "64"}},
    };
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        if (strcmp(presets[p].name, name)) continue;
        for (int i = 0; i < MAXKV && presets[p].kv[i]; i += 2)
            if (nb_train_set(c, presets[p].kv[i], presets[p].kv[i + 1])) return NB_ERR_ARG;
        snprintf(c->preset, sizeof c->preset, "%s", name);
        return NB_OK;
    }
    return nb_error(NB_ERR_ARG, "unknown preset '%s' (pytorch-examples, aevb, conv, dae, cvae, iwae, pythae-vae)", name);
}

double nb_train_beta(const nb_train_cfg *c, int64_t step, int64_t steps_per_epoch)
{
    const double per_epoch = (double)(steps_per_epoch > 0 ? steps_per_epoch : 1);
    if (c->kl_cycle > 0) { /* Fu et al. 2019: rise over the first half of each cycle, then hold */
        const double cycle = (double)c->kl_cycle * per_epoch;
        const double at = fmod((double)step, cycle) / (0.5 * cycle);
        return c->beta * fmin(1.0, at);
    }
    const double ramp = c->kl_warmup > 0 ? (double)step / ((double)c->kl_warmup * per_epoch) : 1;
    return c->beta * fmin(1.0, ramp);
}

void nb_train_keys_help(FILE *f)
{
    const nb_train_cfg d = nb_train_defaults();
    for (int i = 0; i < NKEYS; i++) {
        char v[600];
        get_value(&d, &keys[i], v, sizeof v);
        fprintf(f, "  --%-14s %s [%s]\n", keys[i].key, keys[i].help, v);
    }
}

nb_status nb__train_cfg_from_json(nb_train_cfg *c, const char *text, const char *origin)
{
    cJSON *o = cJSON_Parse(text);
    if (!o) return nb_error(NB_ERR_FORMAT, "%s: configuration is not valid JSON", origin);
    nb_status st = set_from_json(c, o, origin);
    cJSON_Delete(o);
    return st;
}

const char *nb_train_key_info(int i, const char **help, char *def, size_t size)
{
    if (i < 0 || i >= NKEYS) return NULL;
    if (help) *help = keys[i].help;
    if (def && size) {
        const nb_train_cfg d = nb_train_defaults();
        get_value(&d, &keys[i], def, size);
    }
    return keys[i].key;
}
