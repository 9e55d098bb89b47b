/* models/train.c — the training loop every app shares: epochs over shuffled minibatches,
 * evaluation, progress through callbacks, metrics.csv, atomic checkpoints, resume, and the non-finite guard.
 *
 * Reproducibility: every random draw of step s (ε, corruption, dynamic binarisation) comes from
 * the stream fork(seed, s), and the data order of epoch e from fork(seed, e); nothing else is
 * random. So (parameters, optimizer state, seed, step) is the whole state of a run, a resumed
 * run continues bit for bit, and a run gives the same bits for the same seed and thread count.
 *
 * Data-parallel (nb_trainer_new_dist): every rank computes its shard of each batch, with the
 * step's stream shared out by example (nb_rng_shard), so a rank draws what one process draws
 * for those examples. Each step then makes three collectives on every rank, whatever happened:
 * the gradient all-reduce, the loss sums, the agreement on the outcome; each epoch a few more.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "models/internal.h"
#include "tensor/error.h"
#include "tensor/file.h"

struct nb_trainer {
    nb_train_cfg cfg;
    nb_dataset train_all, test_all, train, test, valid; /* valid: the last cfg.valid training images */
    nb_params *ps;
    nb_model model;
    nb_optim *optim;
    nb_tape *tp;
    int epoch;    /* completed */
    int64_t step; /* optimizer steps taken */
    FILE *csv;    /* rank 0 only */
    nb_dist *dist;
    /* VQ-VAE: each code's use this epoch ([0, K)) and since the last restart ([K, 2K)), and the
     * encoder's outputs of the last step (rows × Dc) */
    int64_t *usage;
    double *last_ze;
    int64_t last_rows, last_cap;
    double best;  /* the lowest validation bound so far (inf before the first) */
};

/* Rank 0 writes the files and calls the hooks. */
static int lead(const nb_trainer *t) { return nb_dist_rank(t->dist) == 0; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Streams of the run, never overlapping: one per step, one per evaluation. */
enum { STREAM_STEP = 0, STREAM_EVAL = 1, STREAM_RESET = 2 };
static nb_rng stream(uint64_t seed, int kind, uint64_t i)
{
    nb_rng root = nb_rng_seed(seed);
    nb_rng k = nb_rng_fork(&root, (uint64_t)kind);
    return nb_rng_fork(&k, i);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

#define CKPT_FORMAT "nabla-checkpoint-1"

static const char *optim_key(char *buf, size_t size, const nb_optim *o, int k, const nb_tensor *p)
{
    snprintf(buf, size, "optim.%s.%s", nb_optim_state_name(o, k), p->name);
    return buf;
}

/* ranks: how many ranks wrote it; a run resumes only on as many */
static nb_status ckpt_save(const char *path, nb_params *ps, nb_optim *o, const nb_train_cfg *cfg,
                           int epoch, int64_t step, int ranks, double best)
{
    const int np = nb_params_count(ps), ns = o ? nb_optim_state_count(o) : 0;
    const int n = np * (1 + ns);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const nb_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    char (*keys)[300] = calloc((size_t)(np * ns) + 1, sizeof *keys);
    char *json = nb_train_cfg_json(cfg);
    nb_status st = NB_OK;
    if (!names || !ts || !keys || !json) {
        st = nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < np; i++) names[i] = nb_params_at(ps, i)->name, ts[i] = nb_params_at(ps, i);
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < np; i++) {
            const int j = np + k * np + i;
            names[j] = optim_key(keys[k * np + i], sizeof keys[0], o, k, nb_params_at(ps, i));
            ts[j] = nb_optim_state(o, k, i);
        }
    char ep[32], sp[32], os[32], sd[32], rk[32], bs[40];
    snprintf(bs, sizeof bs, "%.17g", best);
    snprintf(ep, sizeof ep, "%d", epoch);
    snprintf(rk, sizeof rk, "%d", ranks);
    snprintf(sp, sizeof sp, "%lld", (long long)step);
    snprintf(os, sizeof os, "%lld", (long long)(o ? nb_optim_steps(o) : 0));
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)cfg->seed);
    /* the best validation bound, so that a resumed run keeps best.safetensors only for a better one */
    const char *mk[] = {"format", "epoch", "step", "optim_steps", "seed", "config", "ranks", "best_valid"};
    const char *mv[] = {CKPT_FORMAT, ep, sp, os, sd, json, rk, bs};
    st = nb_st_save(path, n, names, ts, isfinite(best) ? 8 : 7, mk, mv);
out:
    free(names), free(ts), free(keys), free(json);
    return st;
}

nb_status nb_checkpoint_save(const char *path, nb_params *ps, nb_optim *o, const nb_train_cfg *cfg,
                             int epoch, int64_t step)
{
    return ckpt_save(path, ps, o, cfg, epoch, step, 1, INFINITY);
}

static nb_status ckpt_open(const char *path, nb_safetensors **f)
{
    if (nb_st_open(f, path)) return NB_ERR_IO;
    const char *fmt = nb_st_meta(*f, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT)) {
        /* the message first: fmt lives in the file's header, which closing frees */
        nb_status st = nb_error(NB_ERR_FORMAT, "%s: not a nabla checkpoint (format '%.40s'; "
                                "nabla writes '%s')", path, fmt ? fmt : "none", CKPT_FORMAT);
        nb_st_close(*f);
        *f = NULL;
        return st;
    }
    return NB_OK;
}

static int64_t meta_int(const nb_safetensors *f, const char *key)
{
    const char *v = nb_st_meta(f, key);
    return v ? strtoll(v, NULL, 10) : -1;
}

/* ranks: the ranks that wrote it (1 for checkpoints from before there were ranks); best: the best
 * validation bound (inf when none) */
static nb_status ckpt_config(const char *path, nb_train_cfg *cfg, int *epoch, int64_t *step, int *ranks,
                             double *best)
{
    nb_safetensors *f;
    nb_status st = ckpt_open(path, &f);
    if (st) return st;
    const char *json = nb_st_meta(f, "config");
    *cfg = nb_train_defaults();
    st = json ? nb__train_cfg_from_json(cfg, json, path)
              : nb_error(NB_ERR_FORMAT, "%s: checkpoint has no configuration", path);
    if (epoch) *epoch = (int)meta_int(f, "epoch");
    if (step) *step = meta_int(f, "step");
    if (!st && ((epoch && *epoch < 0) || (step && *step < 0)))
        st = nb_error(NB_ERR_FORMAT, "%s: checkpoint has no epoch or step", path);
    if (ranks) *ranks = nb_st_meta(f, "ranks") ? (int)meta_int(f, "ranks") : 1;
    if (best) *best = nb_st_meta(f, "best_valid") ? strtod(nb_st_meta(f, "best_valid"), NULL) : INFINITY;
    if (!st && ranks && *ranks < 1) st = nb_error(NB_ERR_FORMAT, "%s: checkpoint written by %d ranks", path, *ranks);
    nb_st_close(f);
    return st;
}

nb_status nb_checkpoint_config(const char *path, nb_train_cfg *cfg, int *epoch, int64_t *step)
{
    return ckpt_config(path, cfg, epoch, step, NULL, NULL);
}

nb_status nb_checkpoint_load(const char *path, nb_params *ps, nb_optim *o)
{
    nb_safetensors *f;
    nb_status st = ckpt_open(path, &f);
    if (st) return st;
    if ((st = nb_params_load_from(ps, f))) goto out;
    if (o) {
        const int np = nb_params_count(ps);
        for (int k = 0; k < nb_optim_state_count(o) && !st; k++)
            for (int i = 0; i < np && !st; i++) {
                char key[300];
                nb_tensor saved, *dst = nb_optim_state(o, k, i);
                optim_key(key, sizeof key, o, k, nb_params_at(ps, i));
                if (nb_st_get(f, key, &saved) || !nb_same_shape(&saved, dst) || saved.dtype != dst->dtype)
                    st = nb_error(NB_ERR_FORMAT, "%s: optimizer state '%s' missing or of the wrong shape "
                                  "(was the optimizer changed?)", path, key);
                else
                    nb_copy_out(&saved, dst->data, nb_numel(dst));
            }
        if (!st && nb_optim_set_steps(o, meta_int(f, "optim_steps")))
            st = nb_error(NB_ERR_FORMAT, "%s: the optimizer step count is missing or negative", path);
    }
out:
    nb_st_close(f);
    return st;
}

/* ---- set-up -------------------------------------------------------------------------------- */

void nb_trainer_free(nb_trainer *t)
{
    if (!t) return;
    if (t->csv) fclose(t->csv);
    nb_tape_free(t->tp);
    nb_optim_free(t->optim);
    nb_params_free(t->ps);
    nb_dataset_free(&t->train_all);
    nb_dataset_free(&t->test_all);
    free(t->usage), free(t->last_ze);
    free(t);
}

/* The objectives other than the ELBO: on a VAE, with the weights they use, and on one rank when
 * their loss couples the batch. */
static nb_status check_objective(const nb_train_cfg *c, int ranks)
{
    const nb_objective o = c->objective;
    const char *name = nb_objective_name(o);
    if ((int)o < NB_OBJ_ELBO || o > NB_OBJ_INFOVAE) return nb_error(NB_ERR_ARG, "--objective: unknown value %d", (int)o);
    if (o == NB_OBJ_ELBO) return NB_OK;
    if (c->model.kind != NB_VAE)
        return nb_error(NB_ERR_ARG, "--objective %s applies to a VAE (--model vae); --model %s trains on its own "
                        "loss", name, (const char *[]){"ae", "dae", "vae", "cvae", "vqvae", "vamp", "hvae"}[c->model.kind]);
    if (c->free_bits > 0) return nb_error(NB_ERR_ARG, "--objective %s: --free-bits applies to the ELBO's KL only", name);
    /* β weighs the KL of the ELBO and of InfoVAE; the others have no such term to schedule */
    if (o != NB_OBJ_INFOVAE && (c->beta != 1 || c->kl_warmup > 0 || c->kl_cycle > 0))
        return nb_error(NB_ERR_ARG, "--objective %s has no KL term for --beta, --kl-warmup or --kl-cycle to "
                        "weigh%s", name, o == NB_OBJ_TCVAE ? " (its weight is --tc-beta)" : "");
    if (nb_objective_couples_batch(o) && ranks > 1)
        return nb_error(NB_ERR_ARG, "--objective %s on %d ranks: its loss is pairwise over the whole batch (%s), "
                        "which no rank holds; train it in one process", name, ranks,
                        o == NB_OBJ_TCVAE ? "the aggregate posterior q(z) from every code of it" : "the MMD between all its codes and the prior's samples");
    return NB_OK;
}

static nb_status check_cfg(const nb_train_cfg *c, int ranks)
{
    if (c->batch < 1) return nb_error(NB_ERR_ARG, "--batch must be at least 1");
    if (c->eval_batch < 1) return nb_error(NB_ERR_ARG, "--eval-batch must be at least 1");
    if (c->model.latent < 1) return nb_error(NB_ERR_ARG, "--latent must be at least 1");
    if (c->model.kind == NB_DAE && c->corrupt.n == 0)
        return nb_error(NB_ERR_ARG, "a denoising AE needs --corrupt (e.g. dropout:0.5)");
    if (!(c->beta >= 0)) return nb_error(NB_ERR_ARG, "--beta must be >= 0");
    if (c->free_bits > 0 && ranks > 1)
        return nb_error(NB_ERR_ARG, "--free-bits on %d ranks: its hinge is on the whole batch's mean KL per "
                        "dimension, which no rank holds; train it in one process", ranks);
    if (c->kl_warmup > 0 && c->kl_cycle > 0)
        return nb_error(NB_ERR_ARG, "--kl-warmup and --kl-cycle both schedule beta: choose one");
    return check_objective(c, ranks);
}

/* "0 (6000), 1 (6000), ..." for the non-empty classes, into buf. */
static const char *class_counts(char *buf, size_t size, const int64_t *count, int k)
{
    size_t n = 0;
    buf[0] = 0;
    for (int c = 0, shown = 0; c < k && n < size; c++)
        if (count[c]) {
            n += (size_t)snprintf(buf + n, size - n, shown++ ? ", %d (%lld)" : "%d (%lld)", c, (long long)count[c]);
            if (shown == 12 && n < size) {
                snprintf(buf + n, size - n, ", ...");
                break;
            }
        }
    return buf;
}

/* The labels a conditional model learns from must agree with the ones it is tested on: every
 * test class must occur in training, and every class index below the count must occur
 * somewhere (labels 0 and 200 alone are a labelling error, not a 201-class problem). A resumed
 * model must have as many classes as the data. Returns the class count, or -1 with the error. */
static int check_labels(const nb_dataset *train, const nb_dataset *test, const char *dir, int model_classes)
{
    if (!train->labels || !test->labels) {
        nb_error(NB_ERR_ARG, "%s: a conditional VAE needs labels for the %s images", dir,
                 !train->labels ? "training" : "test");
        return -1;
    }
    int64_t ntr[256] = {0}, nte[256] = {0};
    int k = 0;
    for (int64_t i = 0; i < train->n; i++) ntr[train->labels[i]]++, k = train->labels[i] >= k ? train->labels[i] + 1 : k;
    for (int64_t i = 0; i < test->n; i++) nte[test->labels[i]]++;
    char tr[400], te[400];
    for (int c = 0; c < 256; c++)
        if (nte[c] && !ntr[c]) {
            nb_error(NB_ERR_FORMAT, "%s: class %d has %lld test images but no training images (training "
                     "classes: %s; test classes: %s)", dir, c, (long long)nte[c], class_counts(tr, sizeof tr, ntr, 256),
                     class_counts(te, sizeof te, nte, 256));
            return -1;
        }
    for (int c = 0; c < k; c++)
        if (!ntr[c] && !nte[c]) {
            nb_error(NB_ERR_FORMAT, "%s: labels run to %d, but class %d has no image: labels must number "
                     "the classes 0, 1, 2, ... (training classes: %s)", dir, k - 1, c,
                     class_counts(tr, sizeof tr, ntr, 256));
            return -1;
        }
    if (model_classes > 0 && model_classes != k) {
        nb_error(NB_ERR_FORMAT, "%s: the checkpoint's model has %d classes, the data %d", dir, model_classes, k);
        return -1;
    }
    return k;
}

static nb_status write_config(const nb_train_cfg *c)
{
    nb_status st = nb_mkdirs(c->out);
    if (st) return st;
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", c->out);
    char *json = nb_train_cfg_json(c);
    FILE *f = json ? fopen(path, "w") : NULL;
    int written = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) written = 0;
    free(json);
    return written ? NB_OK : nb_error(NB_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
}

/* What a rank sets up alone: the data, the model, the optimizer, the resumed state; rank 0 also
 * the output directory and config.json. */
static nb_status setup(nb_trainer *t, const nb_train_cfg *cfg_in, const char *resume)
{
    const int ranks = nb_dist_size(t->dist);
    nb_status st;
    t->cfg = *cfg_in;
    if (resume) { /* the checkpoint's configuration wins, except where to write and how long */
        nb_train_cfg saved;
        int wrote;
        if ((st = ckpt_config(resume, &saved, &t->epoch, &t->step, &wrote, &t->best))) return st;
        if (wrote != ranks)
            return nb_error(NB_ERR_ARG, "%s: written by a run on %d rank%s, resumed on %d: a run continues as it "
                            "began only on as many ranks (each rank's share of every batch and the order of the "
                            "gradient sums depend on their number); resume on %d, or start afresh", resume, wrote,
                            wrote == 1 ? "" : "s", ranks, wrote);
        snprintf(saved.out, sizeof saved.out, "%s", cfg_in->out);
        saved.epochs = cfg_in->epochs, saved.progress = cfg_in->progress, saved.threads = cfg_in->threads;
        t->cfg = saved;
    }
    nb_train_cfg *c = &t->cfg;
    if ((st = check_cfg(c, ranks))) return st;
    if (c->threads > 0) nb_set_threads(c->threads);
    else if (t->dist) nb_set_threads(nb_dist_threads(t->dist)); /* the node's cores, shared out */
    if ((st = nb_dataset_load(&t->train_all, c->data, "train")) || (st = nb_dataset_load(&t->test_all, c->data, "t10k")))
        return st;
    t->train = nb_dataset_view(&t->train_all, 0, c->train_size && c->train_size < t->train_all.n ? c->train_size : t->train_all.n);
    if (c->valid > 0) { /* the last images of the training set, never trained on */
        if (c->valid >= t->train.n)
            return nb_error(NB_ERR_ARG, "--valid %lld: the training set has %lld images, and some must be left to "
                            "train on", (long long)c->valid, (long long)t->train.n);
        t->valid = nb_dataset_view(&t->train, t->train.n - c->valid, c->valid);
        t->train = nb_dataset_view(&t->train, 0, t->train.n - c->valid);
    }
    if (c->mmd_lambda == 0) c->mmd_lambda = nb_mmd_lambda_default(c->objective); /* resolved in config.json */
    t->test = nb_dataset_view(&t->test_all, 0, c->test_size && c->test_size < t->test_all.n ? c->test_size : t->test_all.n);
    c->model.channels = t->train.channels, c->model.height = t->train.rows, c->model.width = t->train.cols;
    if (c->model.kind == NB_CVAE) {
        const int k = check_labels(&t->train, &t->test, c->data, resume ? c->model.nclasses : 0);
        if (k < 0) return NB_ERR_FORMAT;
        c->model.nclasses = k;
    }
    nb_rng init = stream(c->seed, STREAM_STEP, UINT64_MAX); /* disjoint from every step's stream */
    if (!(t->ps = nb_params_new(NB_F32))) return NB_ERR_NOMEM;
    if ((st = nb_model_init(&t->model, &c->model, t->ps, &init))) return st;
    /* a learned decoder variance starts at the data's (nb_model_init_logvar says why) */
    if (!resume && (st = nb_model_init_logvar(&t->model, &t->train))) return st;
    /* a VQ-VAE's codes start at encoder outputs (nb_vq_init_codebook says why) */
    if (!resume && (st = nb_vq_init_codebook(&t->model, &t->train, &init))) return st;
    nb_optim_cfg oc = c->optim;
    oc.clear_grad = 1; /* only the optimizer and the all-reduce read the gradients, through the store */
    if (!(t->optim = nb_optim_new(t->ps, oc))) return NB_ERR_ARG;
    if (resume && (st = nb_checkpoint_load(resume, t->ps, t->optim))) return st;
    if (!(t->tp = nb_tape_new())) return nb_error(NB_ERR_NOMEM, "trainer: out of memory");
    if (c->model.kind == NB_VQVAE && !(t->usage = calloc(2 * (size_t)c->model.codebook, sizeof *t->usage)))
        return nb_error(NB_ERR_NOMEM, "trainer: out of memory");
    if ((st = nb_tape_set_precision(t->tp, c->precision))) return st;
    return lead(t) ? write_config(c) : NB_OK;
}

/* The ranks train one model only if they agree on it: the configuration (but for where the data
 * and the output are, the threads and the progress lines) and where the run stands. */
static nb_status same_run(nb_trainer *t)
{
    nb_train_cfg c = t->cfg;
    memset(c.data, 0, sizeof c.data), memset(c.out, 0, sizeof c.out);
    c.threads = 0, c.progress = 0;
    char *json = nb_train_cfg_json(&c);
    nb_status st = nb_dist_agree(t->dist, json ? NB_OK : nb_error(NB_ERR_NOMEM, "trainer: out of memory"));
    if (!st) st = nb_dist_same(t->dist, json, strlen(json), "the configuration (every key but data, out, threads, progress)");
    const int64_t at[2] = {t->epoch, t->step};
    if (!st) st = nb_dist_same(t->dist, at, sizeof at, "the epoch and step to resume from");
    free(json);
    return st;
}

nb_trainer *nb_trainer_new(const nb_train_cfg *cfg, const char *resume)
{
    return nb_trainer_new_dist(cfg, resume, NULL);
}

nb_trainer *nb_trainer_new_dist(const nb_train_cfg *cfg, const char *resume, nb_dist *d)
{
    nb_trainer *t = calloc(1, sizeof *t);
    nb_status st = t ? NB_OK : nb_error(NB_ERR_NOMEM, "trainer: out of memory");
    if (t) {
        t->dist = d, t->best = INFINITY;
        st = cfg ? setup(t, cfg, resume) : nb_error(NB_ERR_ARG, "nb_trainer_new: the configuration is NULL");
    }
    /* from here on every rank takes the same path: a rank that failed alone stops the others */
    if (!(st = nb_dist_agree(d, st)) && !(st = same_run(t)))
        st = nb_dist_broadcast_params(d, t->ps, 0); /* one start, even on hosts whose kernels differ */
    if (!st) return t;
    nb_trainer_free(t);
    return NULL;
}

const nb_model *nb_trainer_model(const nb_trainer *t) { return &t->model; }
const nb_dataset *nb_trainer_data(const nb_trainer *t, int test) { return test ? &t->test : &t->train; }
const nb_train_cfg *nb_trainer_cfg(const nb_trainer *t) { return &t->cfg; }

/* ---- the loop ------------------------------------------------------------------------------ */

/* The non-finite guard's message: the step, and where the NaN was born. A parameter that holds
 * one is named first (it poisons every op after it); else the first op whose output holds one. */
static nb_status nonfinite(nb_trainer *t, const char *what)
{
    char where[300];
    snprintf(where, sizeof where, "%s", what);
    int found = 0;
    for (int i = 0; i < nb_params_count(t->ps) && !found; i++) {
        const nb_tensor *p = nb_params_at(t->ps, i);
        for (int64_t j = 0, n = nb_numel(p); j < n && !found; j++)
            if (!isfinite(nb_get(p, j))) {
                snprintf(where, sizeof where, "parameter '%s' holds %g at index %lld", p->name, nb_get(p, j),
                         (long long)j);
                found = 1;
            }
    }
    if (!found && nb_tape_find_nonfinite(t->tp, where, sizeof where) < 0) snprintf(where, sizeof where, "%s", what);
    return nb_error(NB_ERR_NAN, "step %lld (epoch %d): non-finite loss: %s; stopped, the last good "
                    "checkpoint is kept", (long long)t->step + 1, t->epoch + 1, where);
}

/* A VQ-VAE step's codes into the epoch's usage, and its encoder outputs kept for the reset. */
static nb_status note_codes(nb_trainer *t, const nb_loss_terms *terms)
{
    const int64_t n = nb_numel(terms->codes), vals = nb_numel(terms->z_e);
    const int64_t K = t->cfg.model.codebook;
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = (int64_t)nb_get(terms->codes, i);
        t->usage[k]++, t->usage[K + k]++;
    }
    if (vals > t->last_cap) {
        double *p = realloc(t->last_ze, (size_t)vals * sizeof *p);
        if (!p) return nb_error(NB_ERR_NOMEM, "trainer: out of memory");
        t->last_ze = p, t->last_cap = vals;
    }
    for (int64_t i = 0; i < vals; i++) t->last_ze[i] = nb_get(terms->z_e, i);
    t->last_rows = n;
    return NB_OK;
}

/* usage[0, n) summed over the ranks, in place. */
static nb_status sum_usage(nb_trainer *t, int64_t *usage, int n)
{
    double *u = malloc((size_t)n * sizeof *u);
    nb_status st = u ? NB_OK : nb_error(NB_ERR_NOMEM, "trainer: out of memory");
    for (int j = 0; u && j < n; j++) u[j] = (double)usage[j];
    if (!(st = nb_dist_agree(t->dist, st))) st = nb_dist_sum(t->dist, u, n);
    for (int j = 0; !st && j < n; j++) usage[j] = (int64_t)u[j];
    free(u);
    return st;
}

/* Every code unused since the last restart (on every rank) set to an encoder output of this
 * step, drawn from (seed, step) so that a resumed run restarts alike; rank 0 draws, the others
 * take its codebook. Restarts every vq_restart steps, not only at epoch ends: early on the
 * encoder's outputs move faster than the codes follow, and a code left behind is never chosen
 * again (conv VQ-VAE, codebook started from the data: restarted at epoch ends, 91 of 128 codes
 * unused in the second epoch; every 100 steps, none in the first three). */
static nb_status restart_codes(nb_trainer *t)
{
    const int K = t->cfg.model.codebook;
    int64_t *window = t->usage + K;
    nb_status st = sum_usage(t, window, K);
    if (st) return st;
    nb_rng r = stream(t->cfg.seed, STREAM_RESET, (uint64_t)t->step);
    if (lead(t) && t->last_rows > 0)
        st = nb_vq_reset_dead(&t->model, window, K, t->last_ze, NB_F64, t->last_rows, t->cfg.model.code_dim, &r, NULL);
    memset(window, 0, (size_t)K * sizeof *window);
    if (!(st = nb_dist_agree(t->dist, st))) st = nb_dist_broadcast_params(t->dist, t->ps, 0);
    return st;
}

/* The end of a VQ-VAE's epoch: the epoch's usage over the ranks and its perplexity (the dead
 * codes: those unused all epoch), then a restart. */
static nb_status end_codes(nb_trainer *t, nb_epoch_log *log)
{
    const int K = t->cfg.model.codebook;
    nb_status st = sum_usage(t, t->usage, K);
    if (st) return st;
    log->perplexity = nb_vq_perplexity(t->usage, K, &log->dead_codes);
    return restart_codes(t);
}

/* The run's objective as nb_model_loss takes it (N: the images trained on). */
static nb_loss_opts run_objective(const nb_trainer *t, double beta)
{
    const nb_train_cfg *c = &t->cfg;
    nb_loss_opts o = nb_loss_defaults();
    o.beta = beta, o.free_bits = c->free_bits, o.objective = c->objective, o.samples = c->samples;
    o.tc_beta = c->tc_beta, o.mmd_lambda = c->mmd_lambda, o.dataset_size = t->train.n;
    return o;
}

/* One rank's part of a step: forward and backward over its shard of the global batch idx[0..b),
 * the gradients left in the store, and sum[0..SUMS) = its share of the batch's mean loss, the
 * sums of its examples' reconstruction, KL and negative bound, and (tcvae, wae, infovae: one rank)
 * the batch's MI, TC, dwKL and MMD weighted by b. */
enum { SUMS = 8 };
static nb_status shard_step(nb_trainer *t, const int64_t *idx, int64_t b, double beta, double sum[SUMS])
{
    const nb_train_cfg *c = &t->cfg;
    const nb_model *m = &t->model;
    int64_t first, n;
    nb_dist_shard(t->dist, b, &first, &n);
    for (int k = 0; k < SUMS; k++) sum[k] = 0;
    if (n == 0) return NB_OK; /* fewer examples than ranks: this one adds nothing */
    nb_tape *tp = t->tp;
    nb_tape_reset(tp);
    /* the step's draws, keyed by (seed, step), and within the batch by example */
    nb_rng rng = stream(c->seed, STREAM_STEP, (uint64_t)t->step);
    nb_rng_shard(&rng, first, b);
    nb_tensor *x, *y;
    nb_status st = nb_model_batch(tp, m, &t->train, idx + first, n, c->binarize, &rng, &x, &y);
    if (st) return st;
    nb_batch batch = {x, x, y};
    if (c->corrupt.n) /* a DAE, or any model trained to denoise */
        batch.input = nb_corrupt(tp, &c->corrupt, x, c->model.channels, c->model.height, c->model.width, &rng);
    nb_loss_opts o = run_objective(t, beta);
    o.rng = &rng;
    nb_loss_terms terms;
    if (nb_model_loss(tp, m, &batch, &o, &terms) || nb_backward(tp, terms.loss))
        return nb_error(nb_tape_status(tp), "step %lld: %s", (long long)t->step + 1, nb_tape_error(tp));
    const double loss = nb_get(terms.loss, 0);
    if (!isfinite(loss)) return nonfinite(t, "the loss");
    if (terms.codes && (st = note_codes(t, &terms))) return st;
    for (int64_t k = 0; k < n; k++) {
        sum[1] += nb_get(terms.recon, k);
        if (terms.kl) sum[2] += nb_get(terms.kl, k);
        sum[3] += nb_get(terms.bound, k);
    }
    const nb_tensor *batch_terms[4] = {terms.mi, terms.tc, terms.dwkl, terms.mmd};
    for (int k = 0; k < 4; k++)
        if (batch_terms[k]) sum[4 + k] = (double)n * nb_get(batch_terms[k], 0);
    sum[0] = n == b ? loss : loss * (double)n / (double)b;
    return NB_OK;
}

/* A whole step on every rank: its shard, the all-reduce of the weighted gradients (a failed
 * rank adds zeros), the update, the sums, then the agreement on the outcome. */
static nb_status step(nb_trainer *t, const int64_t *idx, int64_t b, double beta, double sum[SUMS])
{
    int64_t first, n;
    nb_dist_shard(t->dist, b, &first, &n);
    nb_status st = shard_step(t, idx, b, beta, sum);
    if (st) nb_params_zero_grad(t->ps);
    nb_status rs = nb_dist_allreduce_grads(t->dist, t->ps, (double)n / (double)b);
    if (!st) st = rs;
    if (!st && (st = nb_optim_step(t->optim))) { /* names the parameter holding a NaN gradient */
        char msg[600];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        st = nb_error(st, "step %lld (epoch %d): %s; stopped, the last good checkpoint is kept",
                      (long long)t->step + 1, t->epoch + 1, msg);
    }
    rs = nb_dist_sum(t->dist, sum, SUMS);
    return nb_dist_agree(t->dist, st ? st : rs);
}

static nb_status train_epoch(nb_trainer *t, nb_epoch_log *log, const nb_train_hooks *h)
{
    const nb_train_cfg *c = &t->cfg;
    nb_batcher bt;
    nb_status st = nb_batcher_init(&bt, &t->train, c->batch, 1, c->seed);
    if ((st = nb_dist_agree(t->dist, st ? nb_error(NB_ERR_NOMEM, "batcher: out of memory") : NB_OK))) {
        nb_batcher_free(&bt);
        return st;
    }
    nb_batcher_epoch(&bt, t->epoch); /* the order depends on (seed, epoch) only */
    const int64_t nbatch = (t->train.n + c->batch - 1) / c->batch;
    const double t0 = now_s();
    double total[SUMS] = {0};
    if (t->usage) memset(t->usage, 0, 2 * (size_t)c->model.codebook * sizeof *t->usage);
    int64_t seen = 0, b, i = 0;
    const int64_t *idx;
    while (!st && (b = nb_batcher_next(&bt, &idx)) > 0) {
        /* beta's warm-up or cycles, step by step */
        const double beta = nb_train_beta(c, t->step, nbatch);
        double sum[SUMS];
        nb_flush_denormal_begin(); /* see nabla/tensor.h: Intel's cores slow down on subnormals */
        st = step(t, idx, b, beta, sum);
        nb_flush_denormal_end();
        if (st) break;
        t->step++, i++;
        if (t->usage && c->vq_restart > 0 && i % c->vq_restart == 0 && i < nbatch && (st = restart_codes(t))) break;
        for (int k = 1; k < SUMS; k++) total[k] += sum[k];
        seen += b;
        log->beta = beta;
        if (h && h->on_step && lead(t)) {
            const double dt = now_s() - t0;
            const nb_step_log sl = {.epoch = t->epoch + 1, .epochs = c->epochs, .batch = i,
                                    .batches = nbatch, .step = t->step, .loss = sum[0],
                                    .mean_loss = total[3] / (double)seen,
                                    .images_per_s = (double)seen / dt,
                                    .eta_s = dt / (double)i * (double)(nbatch - i)};
            h->on_step(&sl, h->ctx);
        }
    }
    nb_batcher_free(&bt);
    if (!st && t->usage) st = end_codes(t, log);
    const double dt = now_s() - t0;
    const double n = (double)(seen ? seen : 1);
    log->train_loss = total[3] / n;
    log->train_recon = total[1] / n;
    log->train_kl = total[2] / n;
    log->train_mi = total[4] / n, log->train_tc = total[5] / n, log->train_dwkl = total[6] / n;
    log->train_mmd = total[7] / n;
    log->seconds = dt;
    log->images_per_s = (double)seen / dt;
    return st;
}

/* ",v" for a value that applies, "," for one that does not */
static void csv_opt(FILE *f, int applies, double v)
{
    if (applies) fprintf(f, ",%.6f", v);
    else fputc(',', f);
}

static void csv_row(FILE *f, const nb_epoch_log *l, nb_objective obj, nb_model_kind kind)
{
    fprintf(f, "%d,%lld,%.6g,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%d,%.3f,%.1f", l->epoch,
            (long long)l->step, l->beta, l->lr, l->train_loss, l->train_recon, l->train_kl,
            l->test.elbo_loss, l->test.recon, l->test.kl, l->test.mse, l->test.bits_per_dim,
            l->test.active_units, l->seconds, l->images_per_s);
    const int tc = obj == NB_OBJ_TCVAE, mmd = obj == NB_OBJ_WAE || obj == NB_OBJ_INFOVAE, valid = l->valid.n > 0;
    const int vq = kind == NB_VQVAE, hvae = kind == NB_HVAE;
    fprintf(f, ",%.6f", l->test.bound);
    csv_opt(f, tc, l->test.mi), csv_opt(f, tc, l->test.tc), csv_opt(f, tc, l->test.dwkl), csv_opt(f, mmd, l->test.mmd);
    csv_opt(f, tc, l->train_mi), csv_opt(f, tc, l->train_tc), csv_opt(f, tc, l->train_dwkl), csv_opt(f, mmd, l->train_mmd);
    csv_opt(f, vq, l->perplexity), csv_opt(f, vq, l->dead_codes), csv_opt(f, vq, l->test.perplexity);
    csv_opt(f, hvae, l->test.kl1), csv_opt(f, hvae, l->test.kl2), csv_opt(f, hvae, l->test.active1);
    csv_opt(f, hvae, l->test.active2);
    csv_opt(f, valid, l->valid.elbo_loss), csv_opt(f, valid, l->valid.bound);
    fputc('\n', f);
    fflush(f);
}

/* Rank 0 opens metrics.csv: a resumed run appends to it, a fresh one starts it. */
static nb_status open_csv(nb_trainer *t)
{
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", t->cfg.out);
    const int append = t->epoch > 0 && access(path, F_OK) == 0;
    if (!(t->csv = fopen(path, append ? "a" : "w"))) return nb_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (!append)
        fprintf(t->csv, "epoch,step,beta,lr,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,"
                        "test_mse,test_bits_per_dim,active_units,seconds,images_per_s,test_bound,test_mi,test_tc,"
                        "test_dwkl,test_mmd,train_mi,train_tc,train_dwkl,train_mmd,perplexity,dead_codes,test_perplexity,"
                        "test_kl1,test_kl2,active_z1,active_z2,valid_loss,valid_bound\n");
    return NB_OK;
}

/* The end of an epoch: evaluation of the test and validation sets (split across the ranks), the
 * check that the ranks still hold one model, and rank 0's metrics row and checkpoints; every rank
 * learns the outcome. */
static nb_status end_epoch(nb_trainer *t, nb_epoch_log *log)
{
    const nb_train_cfg *c = &t->cfg;
    nb_rng ev = stream(c->seed, STREAM_EVAL, (uint64_t)t->epoch);
    const nb_loss_opts obj = run_objective(t, 1);
    nb_status st = nb_model_evaluate_with(&t->model, &t->test, c->eval_batch, c->binarize, &c->corrupt, ev.key,
                                          t->dist, &obj, &log->test);
    if (!st && t->valid.n > 0) {
        nb_rng vs = nb_rng_fork(&ev, 1); /* its own draws, apart from the test set's */
        st = nb_model_evaluate_with(&t->model, &t->valid, c->eval_batch, c->binarize, &c->corrupt, vs.key,
                                    t->dist, &obj, &log->valid);
        if (!st && (log->best = log->valid.bound < t->best)) t->best = log->valid.bound;
    }
    void *p;
    int64_t n;
    nb_params_flat(t->ps, &p, NULL, &n);
    if (!st) st = nb_dist_same(t->dist, p, (size_t)n * nb_dtype_size(nb_params_dtype(t->ps)), "the parameters");
    if (st || !lead(t)) return st;
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", c->out);
    csv_row(t->csv, log, c->objective, c->model.kind);
    if ((st = ckpt_save(ckpt, t->ps, t->optim, c, t->epoch, t->step, nb_dist_size(t->dist), t->best)) || !log->best)
        return st;
    snprintf(ckpt, sizeof ckpt, "%s/best.safetensors", c->out);
    return ckpt_save(ckpt, t->ps, t->optim, c, t->epoch, t->step, nb_dist_size(t->dist), t->best);
}

nb_status nb_trainer_run(nb_trainer *t, const nb_train_hooks *hooks)
{
    if (!t) return nb_error(NB_ERR_ARG, "nb_trainer_run: the trainer is NULL");
    const nb_train_cfg *c = &t->cfg;
    nb_status st = nb_dist_agree(t->dist, lead(t) ? open_csv(t) : NB_OK);
    while (!st && t->epoch < c->epochs) {
        nb_epoch_log log = {0};
        log.lr = nb_lr_at(c->schedule, c->optim.lr, t->epoch);
        if ((st = nb_optim_set_lr(t->optim, log.lr)) || (st = train_epoch(t, &log, hooks))) break;
        t->epoch++;
        log.epoch = t->epoch;
        log.step = t->step;
        if ((st = nb_dist_agree(t->dist, end_epoch(t, &log)))) break;
        if (hooks && hooks->on_epoch && lead(t)) hooks->on_epoch(&log, hooks->ctx);
    }
    return st;
}
