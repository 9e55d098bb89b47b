/* nn/optim.c — SGD, Adam, AdamW, Adagrad over the flat parameter block.
 *
 * A step is one pass over flat memory per update (the vectorised kernels of tensor/kern_tmpl.c),
 * split into fixed-size chunks across threads: the result does not depend on the thread count.
 * The state (momentum, moments, sums) lives in flat blocks laid out like the parameters.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nabla/nn.h"
#include "tensor/error.h"

enum { CHUNK = 1 << 16, MAX_STATE = 2 };

struct nb_optim {
    nb_params *ps;
    nb_optim_cfg cfg;
    int nparams, nstate;
    int64_t n, steps;
    double grad_norm;
    void *state[MAX_STATE];
    nb_tensor *views; /* nstate × nparams tensors over the state blocks */
};

nb_optim_cfg nb_optim_defaults(nb_optim_kind kind, double lr)
{
    nb_optim_cfg c = {.kind = kind, .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (kind == NB_ADAMW) c.weight_decay = 1e-2;
    if (kind == NB_ADAGRAD) c.eps = 1e-10;
    return c;
}

static const char *state_names[][MAX_STATE] = {
    [NB_SGD] = {"momentum_buffer"},
    [NB_ADAM] = {"exp_avg", "exp_avg_sq"},
    [NB_ADAMW] = {"exp_avg", "exp_avg_sq"},
    [NB_ADAGRAD] = {"sum"},
};

static nb_status check_cfg(const nb_optim_cfg *c)
{
    if (c->kind < NB_SGD || c->kind > NB_ADAGRAD) return nb_error(NB_ERR_ARG, "optimizer: unknown kind %d", (int)c->kind);
    const double vals[] = {c->lr, c->weight_decay, c->momentum, c->dampening, c->beta1, c->beta2,
                           c->eps, c->lr_decay, c->initial_accumulator, c->clip_norm};
    static const char *names[] = {"learning rate", "weight decay", "momentum", "dampening",
                                  "beta1", "beta2", "eps", "lr decay", "initial accumulator",
                                  "clip norm"};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (!(vals[i] >= 0) || !isfinite(vals[i]))
            return nb_error(NB_ERR_ARG, "optimizer: %s %g must be finite and not negative", names[i], vals[i]);
    if ((c->kind == NB_ADAM || c->kind == NB_ADAMW) &&
        !(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        return nb_error(NB_ERR_ARG, "optimizer: betas (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
    if (c->kind == NB_SGD && c->nesterov && !(c->momentum > 0 && c->dampening == 0))
        return nb_error(NB_ERR_ARG, "optimizer: Nesterov momentum needs momentum > 0 and no dampening");
    return NB_OK;
}

nb_optim *nb_optim_new(nb_params *ps, nb_optim_cfg cfg)
{
    if (!ps) {
        nb_error(NB_ERR_ARG, "nb_optim_new: the parameter store is NULL");
        return NULL;
    }
    if (check_cfg(&cfg)) return NULL;
    nb_optim *o = calloc(1, sizeof *o);
    if (!o) goto nomem;
    o->ps = ps;
    o->cfg = cfg;
    o->nparams = nb_params_count(ps);
    nb_params_flat(ps, NULL, NULL, &o->n);
    o->nstate = cfg.kind == NB_SGD ? (cfg.momentum != 0) : cfg.kind == NB_ADAGRAD ? 1 : 2;
    const size_t es = nb_dtype_size(nb_params_dtype(ps));
    o->views = calloc((size_t)(o->nstate * o->nparams) + 1, sizeof *o->views);
    if (!o->views) goto nomem;
    void *data;
    nb_params_flat(ps, &data, NULL, NULL);
    for (int k = 0; k < o->nstate; k++) {
        if (!(o->state[k] = calloc((size_t)o->n + 1, es))) goto nomem;
        for (int i = 0; i < o->nparams; i++) { /* same offsets as the parameters */
            const nb_tensor *p = nb_params_at(ps, i);
            nb_tensor *v = &o->views[k * o->nparams + i];
            nb_tensor_wrap(v, p->dtype, p->ndim, p->shape,
                           (char *)o->state[k] + ((char *)p->data - (char *)data));
            v->name = p->name;
        }
    }
    if (cfg.kind == NB_ADAGRAD) { /* the padding too: it keeps every value finite */
        nb_tensor all;
        nb_tensor_wrap(&all, nb_params_dtype(ps), 1, (const int64_t[]){o->n}, o->state[0]);
        nb_fill(&all, cfg.initial_accumulator);
    }
    return o;
nomem:
    nb_optim_free(o);
    nb_error(NB_ERR_NOMEM, "optimizer: out of memory for its state");
    return NULL;
}

void nb_optim_free(nb_optim *o)
{
    if (!o) return;
    for (int k = 0; k < MAX_STATE; k++) free(o->state[k]);
    free(o->views);
    free(o);
}

nb_status nb_optim_set_lr(nb_optim *o, double lr)
{
    if (!o) return nb_error(NB_ERR_ARG, "nb_optim_set_lr: the optimizer is NULL");
    if (!(lr >= 0) || !isfinite(lr))
        return nb_error(NB_ERR_ARG, "nb_optim_set_lr: learning rate %g must be finite and not negative", lr);
    o->cfg.lr = lr;
    return NB_OK;
}

double nb_optim_lr(const nb_optim *o) { return o ? o->cfg.lr : 0; }
int64_t nb_optim_steps(const nb_optim *o) { return o ? o->steps : 0; }

nb_status nb_optim_set_steps(nb_optim *o, int64_t steps)
{
    if (!o || steps < 0) return nb_error(NB_ERR_ARG, "nb_optim_set_steps: %s", o ? "negative steps" : "the optimizer is NULL");
    o->steps = steps;
    return NB_OK;
}

double nb_optim_grad_norm(const nb_optim *o) { return o ? o->grad_norm : 0; }
int nb_optim_state_count(const nb_optim *o) { return o ? o->nstate : 0; }

nb_tensor *nb_optim_state(nb_optim *o, int k, int param)
{
    if (!o || k < 0 || k >= o->nstate || param < 0 || param >= o->nparams) return NULL;
    return &o->views[k * o->nparams + param];
}

const char *nb_optim_state_name(const nb_optim *o, int k)
{
    return o && k >= 0 && k < o->nstate ? state_names[o->cfg.kind][k] : NULL;
}

/* Σ g² over the flat gradient block, in fixed chunks combined in order. */
static double grad_sumsq(const nb_kernel_table *k, const void *g, int64_t n, size_t es)
{
    const int64_t nchunk = (n + CHUNK - 1) / CHUNK;
    double part[256], total = 0;
    for (int64_t c0 = 0; c0 < nchunk; c0 += 256) {
        const int64_t m = nchunk - c0 < 256 ? nchunk - c0 : 256;
        memset(part, 0, sizeof part);
#pragma omp parallel for schedule(static) if (m > 1)
        for (int64_t c = 0; c < m; c++) {
            int64_t i0 = (c0 + c) * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
            k->sumsq(len, (const char *)g + i0 * (int64_t)es, &part[c]);
        }
        for (int64_t c = 0; c < m; c++) total += part[c];
    }
    return total;
}

static nb_status report_nonfinite(nb_optim *o)
{
    for (int i = 0; i < o->nparams; i++) {
        const nb_tensor *p = nb_params_at(o->ps, i);
        for (int64_t j = 0, n = nb_numel(p); j < n; j++) {
            double v = nb_get(p->grad, j);
            if (!isfinite(v))
                return nb_error(NB_ERR_NAN, "non-finite gradient %g in '%s' at flat index %lld "
                                "(step %lld)", v, p->name, (long long)j, (long long)o->steps + 1);
        }
    }
    return nb_error(NB_ERR_NAN, "non-finite gradient norm (step %lld)", (long long)o->steps + 1);
}

nb_status nb_optim_step(nb_optim *o)
{
    if (!o) return nb_error(NB_ERR_ARG, "nb_optim_step: the optimizer is NULL");
    if (nb_params_count(o->ps) != o->nparams)
        return nb_error(NB_ERR_STATE, "optimizer: %d parameters were registered after it was "
                        "created", nb_params_count(o->ps) - o->nparams);
    void *p, *g;
    nb_params_flat(o->ps, &p, &g, NULL);
    const nb_dtype dt = nb_params_dtype(o->ps);
    const nb_kernel_table *k = nb_kernels(dt);
    const size_t es = nb_dtype_size(dt);
    o->grad_norm = sqrt(grad_sumsq(k, g, o->n, es));
    if (!isfinite(o->grad_norm)) return report_nonfinite(o);

    nb_tensor flat_g;
    nb_tensor_wrap(&flat_g, dt, 1, (const int64_t[]){o->n}, g);
    if (o->cfg.clip_norm > 0) { /* torch.nn.utils.clip_grad_norm_ */
        const double coef = o->cfg.clip_norm / (o->grad_norm + 1e-6);
        if (coef < 1) nb_ew(NB_EW_SCALE, &flat_g, &flat_g, NULL, NULL, coef, 0);
    }

    const nb_optim_cfg *c = &o->cfg;
    const int64_t t = o->steps + 1;
    nb_optim_args a = {.lr = c->lr, .weight_decay = c->weight_decay, .momentum = c->momentum,
                       .dampening = c->dampening, .beta1 = c->beta1, .beta2 = c->beta2,
                       .eps = c->eps, .nesterov = c->nesterov, .first = o->steps == 0,
                       .decoupled = c->kind == NB_ADAMW, .keep_grad = c->clear_grad != 0};
    if (c->kind == NB_ADAM || c->kind == NB_ADAMW) {
        a.step_size = c->lr / (1 - pow(c->beta1, (double)t));
        a.bc2_sqrt = sqrt(1 - pow(c->beta2, (double)t));
    } else if (c->kind == NB_ADAGRAD) {
        a.step_size = c->lr / (1 + (double)(t - 1) * c->lr_decay);
    }
    /* Subnormals flushed to zero: a moment or momentum that decays under zero gradients (the
     * weights of pixels black in the whole batch, a dead unit's) crosses the subnormal range over
     * ~150 steps, and their arithmetic made Adam 30% slower once a fifth of the MLP VAE's first
     * moments were there (Zen 5). Such a state value moves a parameter by under 1e-30: after 5
     * epochs of that VAE every parameter has the same bits with or without the flush. */
    const int64_t nchunk = (o->n + CHUNK - 1) / CHUNK;
#pragma omp parallel if (nchunk > 1)
    {
        const unsigned fp = nb_flush_begin();
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < nchunk; ch++) {
            const int64_t i0 = ch * CHUNK, len = o->n - i0 < CHUNK ? o->n - i0 : CHUNK;
            const int64_t off = i0 * (int64_t)es;
            char *pp = (char *)p + off, *s0 = o->state[0] ? (char *)o->state[0] + off : NULL;
            char *gg = (char *)g + off;
            switch (c->kind) {
            case NB_SGD: k->sgd(len, pp, gg, s0, &a); break;
            case NB_ADAM:
            case NB_ADAMW: k->adam(len, pp, gg, s0, (char *)o->state[1] + off, &a); break;
            case NB_ADAGRAD: k->adagrad(len, pp, gg, s0, &a); break;
            }
        }
        nb_flush_end(fp);
    }
    o->steps = t;
    if (c->clear_grad) nb_params_clear_grad(o->ps); /* else the kernels zeroed them */
    return NB_OK;
}

double nb_lr_at(nb_lr_schedule s, double base_lr, int epoch)
{
    switch (s.kind) {
    case NB_LR_STEP: return base_lr * pow(s.gamma, s.step_size > 0 ? epoch / s.step_size : 0);
    case NB_LR_EXPONENTIAL: return base_lr * pow(s.gamma, epoch);
    default: return base_lr;
    }
}
