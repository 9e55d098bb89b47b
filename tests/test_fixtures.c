/* tests/test_fixtures.c — nabla against PyTorch's numbers, from tests/fixtures (written by
 * scripts/make_fixtures.py with torch 1.13). Layers, activations and losses run in f32 against
 * references computed in f64 from the same inputs; optimizers run in f64 on both sides. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

static nb_safetensors *open_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", FIXTURES, name);
    nb_safetensors *f = NULL;
    if (nb_st_open(&f, path)) {
        ok(0, "%s: %s", name, nb_last_error());
        return NULL;
    }
    return f;
}

/* A fixture tensor copied onto tp as a leaf of dtype dt (requires_grad when grad). */
static nb_tensor *load(nb_tape *tp, const nb_safetensors *f, const char *name, nb_dtype dt, int grad)
{
    nb_tensor v;
    if (nb_st_get(f, name, &v)) return NULL;
    nb_tensor *t = nb_empty(tp, dt, v.ndim, v.shape);
    for (int64_t i = 0; t && i < nb_numel(&v); i++) nb_set(t, i, nb_get(&v, i));
    return grad ? nb_requires_grad(t) : t;
}

/* max |got - want| / max |want| over a fixture reference */
static double rel(const nb_safetensors *f, const char *name, const nb_tensor *got)
{
    nb_tensor want;
    if (!got || nb_st_get(f, name, &want) || nb_numel(&want) != nb_numel(got)) return INFINITY;
    double e = 0, s = 0;
    for (int64_t i = 0; i < nb_numel(&want); i++) {
        e = fmax(e, fabs(nb_get(got, i) - nb_get(&want, i)));
        s = fmax(s, fabs(nb_get(&want, i)));
    }
    return e / fmax(s, 1e-300);
}

static int cfg_int(const nb_safetensors *f, const char *key, int def)
{
    cJSON *o = cJSON_Parse(nb_st_meta(f, "config") ? nb_st_meta(f, "config") : "{}");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int r = cJSON_IsNumber(v) ? v->valueint : cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
    cJSON_Delete(o);
    return r;
}

#define TOL_F32 2e-6 /* f32 compute against an f64 reference, relative to the largest value */

static void check_backward(nb_tape *tp, const nb_safetensors *f, nb_tensor *y, const char *label,
                           int n, const char *const *grads, nb_tensor *const *inputs)
{
    nb_tensor *gy = load(tp, f, "gy", NB_F32, 0);
    nb_status st = nb_backward_from(tp, y, gy);
    for (int i = 0; i < n; i++) {
        double e = st || !inputs[i]->grad ? INFINITY : rel(f, grads[i], inputs[i]->grad);
        ok(e < TOL_F32, "%s: %s matches PyTorch (rel %.1e)", label, grads[i], e);
    }
}

static void test_linear(void)
{
    const char *names[2] = {"linear", "linear_nobias"};
    for (int k = 0; k < 2; k++) {
        nb_safetensors *f = open_fixture(names[k]);
        if (!f) continue;
        nb_tape *tp = nb_tape_new();
        nb_tensor *x = load(tp, f, "x", NB_F32, 1), *w = load(tp, f, "weight", NB_F32, 1);
        nb_tensor *b = k == 0 ? load(tp, f, "bias", NB_F32, 1) : NULL;
        nb_tensor *y = nb_linear(tp, x, w, b);
        ok(rel(f, "y", y) < TOL_F32, "%s: y matches PyTorch (rel %.1e)", names[k], rel(f, "y", y));
        check_backward(tp, f, y, names[k], k == 0 ? 3 : 2, (const char *[]){"gx", "gweight", "gbias"},
                       (nb_tensor *[]){x, w, b});
        nb_tape_free(tp);
        nb_st_close(f);
    }
}

static void test_conv(int transposed)
{
    const char *cases = transposed ? "abcdef" : "abcde";
    for (const char *c = cases; *c; c++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%c", transposed ? "conv_transpose2d" : "conv2d", *c);
        nb_safetensors *f = open_fixture(name);
        if (!f) continue;
        const int s = cfg_int(f, "stride", 1), p = cfg_int(f, "padding", 0), d = cfg_int(f, "dilation", 1);
        const int op = cfg_int(f, "output_padding", 0), bias = cfg_int(f, "bias", 1);
        nb_conv_cfg cfg = {{s, s}, {p, p}, {op, op}, {d, d}};
        nb_tape *tp = nb_tape_new();
        nb_tensor *x = load(tp, f, "x", NB_F32, 1), *w = load(tp, f, "weight", NB_F32, 1);
        nb_tensor *b = bias ? load(tp, f, "bias", NB_F32, 1) : NULL;
        nb_tensor *y = transposed ? nb_conv_transpose2d(tp, x, w, b, cfg) : nb_conv2d(tp, x, w, b, cfg);
        char label[160];
        snprintf(label, sizeof label, "%s (stride %d, padding %d, output padding %d, dilation %d%s)", name, s, p, op,
                 d, bias ? "" : ", no bias");
        ok(rel(f, "y", y) < TOL_F32, "%s: y matches PyTorch (rel %.1e) %s", label, rel(f, "y", y), nb_tape_error(tp));
        check_backward(tp, f, y, label, bias ? 3 : 2, (const char *[]){"gx", "gweight", "gbias"},
                       (nb_tensor *[]){x, w, b});
        nb_tape_free(tp);
        nb_st_close(f);
    }
}

/* The ops models are built from, value and gradient, in f32 against PyTorch's f64. */
static void test_ops(void)
{
    nb_safetensors *f = open_fixture("ops");
    if (!f) return;
    const char *names[] = {"abs", "pow", "maximum", "minimum", "amax1", "amin0", "mean_all",
                           "softmax1", "log_softmax0", "index_select0", "gather1", "normal_log_prob"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        nb_tape *tp = nb_tape_new();
        nb_tensor *x = load(tp, f, "x", NB_F32, 1), *p = load(tp, f, "p", NB_F32, 1);
        nb_tensor *a = load(tp, f, "a", NB_F32, 1), *b = load(tp, f, "b", NB_F32, 1);
        nb_tensor *m = load(tp, f, "mean", NB_F32, 1), *lv = load(tp, f, "logvar", NB_F32, 1);
        nb_tensor *y = NULL, *in[3] = {x};
        int nin = 1;
        switch (k) {
        case 0: y = nb_abs(tp, x); break;
        case 1: y = nb_pow(tp, p, 2.7), in[0] = p; break;
        case 2: y = nb_maximum(tp, a, b), in[0] = a, in[1] = b, nin = 2; break;
        case 3: y = nb_minimum(tp, a, b), in[0] = a, in[1] = b, nin = 2; break;
        case 4: y = nb_max(tp, a, NB_AXES(1), 0), in[0] = a; break;
        case 5: y = nb_min(tp, a, NB_AXES(0), 0), in[0] = a; break;
        case 6: y = nb_mean_all(tp, x); break;
        case 7: y = nb_softmax(tp, x, 1); break;
        case 8: y = nb_log_softmax(tp, x, 0); break;
        case 9: y = nb_index_select(tp, x, 0, load(tp, f, "idx", NB_F32, 0)); break;
        case 10: y = nb_gather(tp, x, 1, load(tp, f, "gidx", NB_F32, 0)); break;
        default: y = nb_normal_log_prob(tp, x, m, lv), in[1] = m, in[2] = lv, nin = 3; break;
        }
        char yn[64], gyn[64], gn[64];
        snprintf(yn, sizeof yn, "y_%s", names[k]);
        snprintf(gyn, sizeof gyn, "gy_%s", names[k]);
        const nb_status st = nb_backward_from(tp, y, load(tp, f, gyn, NB_F32, 0));
        double worst = st ? INFINITY : 0;
        for (int i = 0; i < nin; i++) {
            snprintf(gn, sizeof gn, "g%d_%s", i, names[k]);
            worst = fmax(worst, in[i]->grad ? rel(f, gn, in[i]->grad) : INFINITY);
        }
        ok(rel(f, yn, y) < TOL_F32 && worst < TOL_F32, "%s: value and gradients match PyTorch (rel %.1e, %.1e)%s%s",
           names[k], rel(f, yn, y), worst, st ? ": " : "", st ? nb_tape_error(tp) : "");
        nb_tape_free(tp);
    }
    nb_tape *tp = nb_tape_new();
    nb_tensor *a = load(tp, f, "a", NB_F32, 0);
    ok(rel(f, "argmax1", nb_argmax(tp, a, 1, 0)) == 0 && rel(f, "argmin0", nb_argmin(tp, a, 0, 0)) == 0,
       "argmax and argmin: the same indices as PyTorch");
    nb_tape_free(tp);
    nb_st_close(f);
}

static void test_activations(void)
{
    nb_safetensors *f = open_fixture("activations");
    if (!f) return;
    const char *names[] = {"leaky_relu", "elu", "gelu", "softplus", "logsigmoid", "sigmoid", "tanh", "relu"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        nb_tape *tp = nb_tape_new();
        nb_tensor *x = load(tp, f, "x", NB_F32, 1), *y = NULL;
        switch (k) {
        case 0: y = nb_leaky_relu(tp, x, 0.2); break;
        case 1: y = nb_elu(tp, x, 1.0); break;
        case 2: y = nb_gelu(tp, x); break;
        case 3: y = nb_softplus(tp, x); break;
        case 4: y = nb_log_sigmoid(tp, x); break;
        case 5: y = nb_sigmoid(tp, x); break;
        case 6: y = nb_tanh(tp, x); break;
        default: y = nb_relu(tp, x); break;
        }
        char yn[64], gn[64];
        snprintf(yn, sizeof yn, "y_%s", names[k]);
        snprintf(gn, sizeof gn, "gx_%s", names[k]);
        nb_backward_from(tp, y, load(tp, f, "gy", NB_F32, 0));
        ok(rel(f, yn, y) < TOL_F32 && rel(f, gn, x->grad) < TOL_F32, "%s: value and gradient match PyTorch (rel %.1e, %.1e)",
           names[k], rel(f, yn, y), rel(f, gn, x->grad));
        nb_tape_free(tp);
    }
    nb_st_close(f);
}

static void test_losses(void)
{
    nb_safetensors *f = open_fixture("losses");
    if (!f) return;
    const char *reds[3] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) { /* values for every reduction */
        nb_tape *tp = nb_tape_new();
        nb_tensor *l = load(tp, f, "l", NB_F32, 0), *t = load(tp, f, "t", NB_F32, 0);
        nb_tensor *p = load(tp, f, "p", NB_F32, 0), *q = load(tp, f, "q", NB_F32, 0);
        nb_tensor *mu = load(tp, f, "mu", NB_F32, 0), *lvk = load(tp, f, "lvk", NB_F32, 0);
        char a[64], b[64], c[64];
        snprintf(a, sizeof a, "y_bce_%s", reds[r]);
        snprintf(b, sizeof b, "y_mse_%s", reds[r]);
        snprintf(c, sizeof c, "y_kl_%s", reds[r]);
        const double e1 = rel(f, a, nb_bce_logits(tp, l, t, (nb_reduce)r)), e2 = rel(f, b, nb_mse(tp, p, q, (nb_reduce)r));
        const double e3 = rel(f, c, nb_kl_normal(tp, mu, lvk, (nb_reduce)r));
        ok(e1 < TOL_F32 && e2 < TOL_F32 && e3 < TOL_F32, "bce, mse, kl with reduction %s match PyTorch (rel %.1e %.1e %.1e)",
           reds[r], e1, e2, e3);
        nb_tape_free(tp);
    }
    /* gradients of the mean losses (and the per-example BCE) */
    nb_tape *tp = nb_tape_new();
    nb_tensor *l = load(tp, f, "l", NB_F32, 1), *t = load(tp, f, "t", NB_F32, 1);
    nb_backward(tp, nb_bce_logits(tp, l, t, NB_REDUCE_MEAN));
    ok(rel(f, "gl_bce", l->grad) < TOL_F32 && rel(f, "gt_bce", t->grad) < TOL_F32, "bce gradients match PyTorch");
    nb_tape_reset(tp);
    l = load(tp, f, "l", NB_F32, 1), t = load(tp, f, "t", NB_F32, 0);
    nb_backward_from(tp, nb_bce_logits(tp, l, t, NB_REDUCE_NONE), load(tp, f, "gy_none", NB_F32, 0));
    ok(rel(f, "gl_bce_none", l->grad) < TOL_F32, "per-example bce gradient matches PyTorch");
    nb_tape_reset(tp);
    nb_tensor *p = load(tp, f, "p", NB_F32, 1), *q = load(tp, f, "q", NB_F32, 1);
    nb_backward(tp, nb_mse(tp, p, q, NB_REDUCE_MEAN));
    ok(rel(f, "gp_mse", p->grad) < TOL_F32 && rel(f, "gq_mse", q->grad) < TOL_F32, "mse gradients match PyTorch");
    nb_tape_reset(tp);
    nb_tensor *mu = load(tp, f, "mu", NB_F32, 1), *lvk = load(tp, f, "lvk", NB_F32, 1);
    nb_backward(tp, nb_kl_normal(tp, mu, lvk, NB_REDUCE_MEAN));
    ok(rel(f, "gmu_kl", mu->grad) < TOL_F32 && rel(f, "glv_kl", lvk->grad) < TOL_F32, "kl gradients match PyTorch");
    const char *vars[3] = {"elem", "shared", "pixel"};
    for (int v = 0; v < 3; v++) {
        char lvn[32], n[4][64];
        snprintf(lvn, sizeof lvn, "lv_%s", vars[v]);
        snprintf(n[0], 64, "y_gnll_%s_sum", vars[v]);
        snprintf(n[1], 64, "y_gnll_%s_mean", vars[v]);
        snprintf(n[2], 64, "gx_gnll_%s", vars[v]);
        snprintf(n[3], 64, "glv_gnll_%s", vars[v]);
        nb_tape_reset(tp);
        nb_tensor *x = load(tp, f, "x", NB_F32, 1), *m = load(tp, f, "m", NB_F32, 1), *lv = load(tp, f, lvn, NB_F32, 1);
        const double es = rel(f, n[0], nb_gaussian_nll(tp, x, m, lv, NB_REDUCE_SUM));
        nb_tensor *y = nb_gaussian_nll(tp, x, m, lv, NB_REDUCE_MEAN);
        const double em = rel(f, n[1], y);
        nb_backward(tp, y);
        char gm[64];
        snprintf(gm, sizeof gm, "gm_gnll_%s", vars[v]);
        const double gx = rel(f, n[2], x->grad), gmm = rel(f, gm, m->grad), glv = rel(f, n[3], lv->grad);
        ok(es < TOL_F32 && em < TOL_F32 && gx < TOL_F32 && gmm < TOL_F32 && glv < TOL_F32,
           "gaussian_nll, logvar %s: values and gradients match PyTorch (rel %.1e %.1e %.1e %.1e %.1e)", vars[v], es,
           em, gx, gmm, glv);
    }
    nb_tape_free(tp);
    nb_st_close(f);
}

static void test_optimizers(void)
{
    const struct { const char *name; nb_optim_kind kind; } cs[] = {
        {"sgd", NB_SGD}, {"sgd_momentum", NB_SGD}, {"sgd_nesterov", NB_SGD}, {"adam", NB_ADAM},
        {"adam_wd", NB_ADAM}, {"adamw", NB_ADAMW}, {"adagrad", NB_ADAGRAD}, {"adam_clip", NB_ADAM},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "optim_%s", cs[k].name);
        nb_safetensors *f = open_fixture(name);
        if (!f) continue;
        cJSON *o = cJSON_Parse(nb_st_meta(f, "config") ? nb_st_meta(f, "config") : "{}");
#define NUM(key, def) (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, key)) ? cJSON_GetObjectItemCaseSensitive(o, key)->valuedouble : (def))
        nb_optim_cfg c = nb_optim_defaults(cs[k].kind, NUM("lr", 0.1));
        c.weight_decay = NUM("weight_decay", 0);
        c.momentum = NUM("momentum", 0);
        c.dampening = NUM("dampening", 0);
        c.nesterov = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "nesterov"));
        c.eps = NUM("eps", c.eps);
        c.lr_decay = NUM("lr_decay", 0);
        c.initial_accumulator = NUM("initial_accumulator_value", 0);
        const cJSON *betas = cJSON_GetObjectItemCaseSensitive(o, "betas");
        if (cJSON_GetArraySize(betas) == 2)
            c.beta1 = cJSON_GetArrayItem(betas, 0)->valuedouble, c.beta2 = cJSON_GetArrayItem(betas, 1)->valuedouble;
        if (!strcmp(cs[k].name, "adam_clip")) c.clip_norm = 1.0;
#undef NUM
        cJSON_Delete(o);
        nb_params *ps = nb_params_new(NB_F64);
        nb_tensor *p = nb_param(ps, "p", NB_SHAPE(7)), *q = nb_param(ps, "q", NB_SHAPE(2, 3)), v;
        nb_st_get(f, "p0", &v), nb_copy_out(&v, p->data, nb_numel(&v));
        nb_st_get(f, "q0", &v), nb_copy_out(&v, q->data, nb_numel(&v));
        nb_optim *opt = nb_optim_new(ps, c);
        double worst = 0, norm_err = 0;
        int failed = !opt;
        for (int step = 0; step < 5 && !failed; step++) {
            char gp[32], gq[32], pk[32], qk[32], nk[32];
            snprintf(gp, sizeof gp, "g_p_%d", step), snprintf(gq, sizeof gq, "g_q_%d", step);
            snprintf(pk, sizeof pk, "p_%d", step + 1), snprintf(qk, sizeof qk, "q_%d", step + 1);
            snprintf(nk, sizeof nk, "norm_%d", step);
            failed |= nb_st_get(f, gp, &v) != NB_OK;
            if (!failed) nb_copy_out(&v, p->grad->data, nb_numel(&v));
            failed |= nb_st_get(f, gq, &v) != NB_OK;
            if (!failed) nb_copy_out(&v, q->grad->data, nb_numel(&v));
            failed |= nb_optim_step(opt) != NB_OK;
            worst = fmax(worst, fmax(rel(f, pk, p), rel(f, qk, q)));
            if (!nb_st_get(f, nk, &v)) norm_err = fmax(norm_err, fabs(nb_optim_grad_norm(opt) - nb_get(&v, 0)) / nb_get(&v, 0));
        }
        ok(!failed && worst < 1e-12 && norm_err < 1e-12, "%s: 5 steps match torch.optim (rel %.1e)", cs[k].name, worst);
        nb_optim_free(opt);
        nb_params_free(ps);
        nb_st_close(f);
    }
    nb_safetensors *f = open_fixture("lr_schedule");
    if (!f) return;
    nb_tensor st, ex;
    double e = nb_st_get(f, "lr_step", &st) || nb_st_get(f, "lr_exp", &ex) ? INFINITY : 0;
    for (int ep = 0; e == 0 && ep < 10; ep++) {
        e = fmax(e, fabs(nb_lr_at((nb_lr_schedule){NB_LR_STEP, 0.5, 3}, 0.1, ep) - nb_get(&st, ep)) / 0.1);
        e = fmax(e, fabs(nb_lr_at((nb_lr_schedule){NB_LR_EXPONENTIAL, 0.9, 0}, 0.1, ep) - nb_get(&ex, ep)) / 0.1);
    }
    ok(e < 1e-14, "StepLR and ExponentialLR learning rates match PyTorch over 10 epochs (rel %.1e)", e);
    nb_st_close(f);
}

static void test_init_bounds(void)
{
    nb_safetensors *f = open_fixture("init_stats");
    if (!f) return;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_linear_layer lin;
    nb_conv_layer conv, deconv;
    nb_linear_init(&lin, ps, "l", 784, 400, 1, &r);
    nb_conv2d_init(&conv, ps, "c", 1, 32, 4, nb_conv(2, 1), 1, &r);
    nb_conv_transpose2d_init(&deconv, ps, "d", 64, 32, 4, nb_conv(2, 1), 1, &r);
    const struct { const char *layer; const nb_tensor *w, *b; } cs[] = {
        {"linear", lin.weight, lin.bias}, {"conv2d", conv.weight, conv.bias}, {"conv_transpose2d", deconv.weight, deconv.bias}};
    for (int k = 0; k < 3; k++) {
        char bw[64], bb[64], fi[64];
        snprintf(bw, sizeof bw, "bound_%s_weight", cs[k].layer);
        snprintf(bb, sizeof bb, "bound_%s_bias", cs[k].layer);
        snprintf(fi, sizeof fi, "fan_in_%s", cs[k].layer);
        nb_tensor vw, vb, vf;
        int64_t fan_in, fan_out;
        nb_fan(cs[k].w, &fan_in, &fan_out);
        double mw = 0, mb = 0;
        for (int64_t i = 0; i < nb_numel(cs[k].w); i++) mw = fmax(mw, fabs(nb_get(cs[k].w, i)));
        for (int64_t i = 0; i < nb_numel(cs[k].b); i++) mb = fmax(mb, fabs(nb_get(cs[k].b, i)));
        const int got = !nb_st_get(f, bw, &vw) && !nb_st_get(f, bb, &vb) && !nb_st_get(f, fi, &vf);
        ok(got && fan_in == (int64_t)nb_get(&vf, 0) && mw <= nb_get(&vw, 0) * (1 + 1e-6) && mw > 0.9 * nb_get(&vw, 0) &&
               mb <= nb_get(&vb, 0) * (1 + 1e-6) && mb > 0.5 * nb_get(&vb, 0),
           "%s: fan_in %lld and the init bounds %.5f / %.5f are PyTorch's (max |w| %.5f, |b| %.5f)", cs[k].layer,
           (long long)fan_in, got ? nb_get(&vw, 0) : 0, got ? nb_get(&vb, 0) : 0, mw, mb);
    }
    nb_params_free(ps);
    nb_st_close(f);
}

int main(void)
{
    test_linear();
    test_conv(0);
    test_conv(1);
    test_activations();
    test_ops();
    test_losses();
    test_optimizers();
    test_init_bounds();
    return tap_done();
}
