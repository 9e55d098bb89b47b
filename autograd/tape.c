/* autograd/tape.c — the tape: records, errors, arena tensors and the reverse pass. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <threads.h>
#include <time.h>

#include "autograd/tape.h"

const nb_op nb_ops[NB_OP_COUNT] = {
#define NB_OP(id, name, impl) [NB_OP_##id] = {#name, nb_fwd_##impl, nb_bwd_##impl},
#include "autograd/ops.def"
#undef NB_OP
};

enum { FIRST_CHUNK = 1 << 20 };

/* ---- profile: per op, forward and backward time (NB_PROFILE=1) ---------------------------- */

static struct {
    int on;
    int64_t calls[NB_OP_COUNT], bwd_calls[NB_OP_COUNT];
    double fwd[NB_OP_COUNT], bwd[NB_OP_COUNT];
} prof;
static once_flag prof_once = ONCE_FLAG_INIT;

static void prof_init(void)
{
    const char *e = getenv("NB_PROFILE");
    prof.on = e && *e && strcmp(e, "0");
}

static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int profiling(void)
{
    call_once(&prof_once, prof_init);
    return prof.on;
}

void nb_profile_enable(int on)
{
    call_once(&prof_once, prof_init);
    prof.on = on != 0;
}

int nb_profile_enabled(void) { return profiling(); }

void nb_profile_reset(void)
{
    const int on = profiling();
    memset(&prof, 0, sizeof prof);
    prof.on = on;
}

void nb_profile_print(FILE *f)
{
    int order[NB_OP_COUNT], n = 0;
    double total = 0;
    for (int i = 0; i < NB_OP_COUNT; i++)
        if (prof.calls[i] || prof.bwd_calls[i]) order[n++] = i, total += prof.fwd[i] + prof.bwd[i];
    for (int i = 0; i < n; i++) /* largest first; a handful of rows */
        for (int j = i + 1; j < n; j++)
            if (prof.fwd[order[j]] + prof.bwd[order[j]] > prof.fwd[order[i]] + prof.bwd[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    fprintf(f, "%-18s %10s %12s %12s %12s %7s\n", "op", "calls", "forward ms", "backward ms", "total ms", "share");
    for (int i = 0; i < n; i++) {
        const int k = order[i];
        fprintf(f, "%-18s %10lld %12.2f %12.2f %12.2f %6.1f%%\n", nb_ops[k].name, (long long)prof.calls[k],
                1e3 * prof.fwd[k], 1e3 * prof.bwd[k], 1e3 * (prof.fwd[k] + prof.bwd[k]),
                total > 0 ? 100 * (prof.fwd[k] + prof.bwd[k]) / total : 0);
    }
    fprintf(f, "%-18s %10s %12s %12s %12.2f\n", "all ops", "", "", "", 1e3 * total);
}

nb_tape *nb_tape_new(void)
{
    nb_tape *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    nb_arena_init(&tp->arena, FIRST_CHUNK);
    tp->grad_on = 1;
    return tp;
}

struct nb_cache_entry {
    nb_cache_entry *next;
    void *obj;
    void (*destroy)(void *);
    size_t len;
    unsigned char key[];
};

void *nb__cache_find(nb_tape *tp, const void *key, size_t len)
{
    for (nb_cache_entry *e = tp->cache; e; e = e->next)
        if (e->len == len && !memcmp(e->key, key, len)) return e->obj;
    return NULL;
}

int nb__cache_add(nb_tape *tp, const void *key, size_t len, void *obj, void (*destroy)(void *))
{
    nb_cache_entry *e = malloc(sizeof *e + len);
    if (!e) {
        destroy(obj);
        return 0;
    }
    e->obj = obj, e->destroy = destroy, e->len = len;
    memcpy(e->key, key, len);
    e->next = tp->cache;
    tp->cache = e;
    return 1;
}

void nb_tape_free(nb_tape *tp)
{
    if (!tp) return;
    for (nb_cache_entry *e = tp->cache, *next; e; e = next) {
        next = e->next;
        e->destroy(e->obj);
        free(e);
    }
    nb_arena_free(&tp->arena);
    free(tp->nodes);
    free(tp);
}

void nb_tape_reset(nb_tape *tp)
{
    nb_arena_reset(&tp->arena);
    tp->n_nodes = 0;
    tp->backward_done = 0;
    tp->status = NB_OK;
    tp->msg[0] = 0;
}

int nb_tape_set_grad(nb_tape *tp, int on)
{
    int old = tp->grad_on;
    tp->grad_on = on != 0;
    return old;
}

nb_status nb_tape_status(const nb_tape *tp) { return tp->status; }
const char *nb_tape_error(const nb_tape *tp) { return tp->msg; }
int nb_tape_size(const nb_tape *tp) { return tp->n_nodes; }
size_t nb_tape_arena_bytes(const nb_tape *tp) { return nb_arena_capacity(&tp->arena); }

nb_status nb_tape_fail(nb_tape *tp, nb_status st, const char *fmt, ...)
{
    if (tp->status) return st;
    tp->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tp->msg, sizeof tp->msg, fmt, ap);
    va_end(ap);
    return st;
}

int nb__inputs(nb_tape *tp, const char *op, int n, nb_tensor *const *in)
{
    if (tp->status) return 0;
    for (int i = 0; i < n; i++)
        if (!in[i]) {
            nb__fail(tp, NB_ERR_ARG, "nb_%s: input %d is NULL", op, i + 1);
            return 0;
        }
    for (int i = 1; i < n; i++)
        if (in[i]->dtype != in[0]->dtype) {
            nb__fail(tp, NB_ERR_DTYPE, "nb_%s: dtypes %s and %s differ", op,
                     nb_dtype_name(in[0]->dtype), nb_dtype_name(in[i]->dtype));
            return 0;
        }
    return 1;
}

void *nb__alloc(nb_tape *tp, size_t bytes)
{
    void *p = nb_arena_alloc(&tp->arena, bytes);
    if (!p) nb__fail(tp, NB_ERR_NOMEM, "out of memory allocating %zu bytes in the tape arena", bytes);
    return p;
}

nb_tensor *nb__tensor(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, int alloc)
{
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nb__fail(tp, NB_ERR_SHAPE, "tensor: %d dims (at most %d)", ndim, NB_MAX_DIMS);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            nb__fail(tp, NB_ERR_SHAPE, "tensor: negative size %lld in dim %d",
                     (long long)shape[i], i);
            return NULL;
        }
        n *= shape[i];
    }
    nb_tensor *t = nb__alloc(tp, sizeof *t);
    if (!t) return NULL;
    nb_tensor_wrap(t, dt, ndim, shape, NULL);
    if (alloc && !(t->data = nb__alloc(tp, (size_t)n * nb_dtype_size(dt)))) return NULL;
    return t;
}

static int push_node(nb_tape *tp, const nb_node *n)
{
    if (tp->n_nodes == tp->cap_nodes) {
        int cap = tp->cap_nodes ? 2 * tp->cap_nodes : 256;
        nb_node *p = realloc(tp->nodes, (size_t)cap * sizeof *p);
        if (!p) return 0;
        tp->nodes = p;
        tp->cap_nodes = cap;
    }
    tp->nodes[tp->n_nodes++] = *n;
    return 1;
}

nb_tensor *nb__apply(nb_tape *tp, nb_node *n, int ndim, const int64_t *shape, int view)
{
    const nb_op *op = &nb_ops[n->op];
    nb_tensor *out = nb__tensor(tp, n->in[0]->dtype, ndim, shape, !view);
    if (!out) return NULL;
    n->out = out;
    const double t0 = profiling() ? prof_now() : 0;
    nb_status st = op->forward(tp, n);
    if (t0) prof.fwd[n->op] += prof_now() - t0, prof.calls[n->op]++;
    if (st) {
        nb__fail(tp, st, "nb_%s: %s", op->name, nb_status_str(st)); /* unless it said more */
        return NULL;
    }
    int needs_grad = 0;
    for (int i = 0; i < n->nin; i++) needs_grad |= (n->in[i]->flags & NB_REQUIRES_GRAD) != 0;
    if (needs_grad && tp->grad_on) {
        if (!push_node(tp, n)) {
            nb__fail(tp, NB_ERR_NOMEM, "%s: out of memory growing the tape", op->name);
            return NULL;
        }
        out->flags |= NB_REQUIRES_GRAD;
    }
    return out;
}

nb_tensor *nb__grad(nb_tape *tp, nb_tensor *t)
{
    if (!(t->flags & NB_REQUIRES_GRAD)) return NULL;
    if (!t->grad) {
        nb_tensor *g = nb__tensor(tp, t->dtype, t->ndim, t->shape, 1);
        if (!g) return NULL;
        nb_fill(g, 0.0);
        t->grad = g;
    }
    return t->grad;
}

nb_tensor nb__unreduce(const nb_tensor *g, const nb_tensor *in, uint32_t mask)
{
    nb_tensor v = *g;
    v.ndim = in->ndim;
    int j = 0;
    const int keepdim = g->ndim == in->ndim;
    for (int d = 0; d < in->ndim; d++) {
        v.shape[d] = in->shape[d];
        if (mask >> d & 1) {
            v.stride[d] = 0;
            j += keepdim;
        } else {
            v.stride[d] = g->stride[j++];
        }
    }
    return v;
}

int nb__axes(nb_tape *tp, const char *op, const nb_tensor *a, int naxes, const int *axes,
             uint32_t *mask)
{
    *mask = 0;
    if (naxes == 0) {
        *mask = (1u << a->ndim) - 1;
        return 1;
    }
    for (int i = 0; i < naxes; i++) {
        int ax = axes[i] < 0 ? axes[i] + a->ndim : axes[i];
        if (ax < 0 || ax >= a->ndim) {
            nb__fail(tp, NB_ERR_ARG, "nb_%s: axis %d out of range for shape %s", op, axes[i],
                     NB_SHP(a));
            return 0;
        }
        *mask |= 1u << ax;
    }
    return 1;
}

int nb_tape_find_nonfinite(const nb_tape *tp, char *msg, size_t size)
{
    for (int i = 0; i < tp->n_nodes; i++) {
        const nb_tensor *y = tp->nodes[i].out;
        for (int64_t j = 0, n = nb_numel(y); j < n; j++) {
            const double v = nb_get(y, j);
            if (!isfinite(v)) {
                snprintf(msg, size, "op #%d (nb_%s) output %s holds %g at element %lld", i,
                         nb_ops[tp->nodes[i].op].name, NB_SHP(y), v, (long long)j);
                return i;
            }
        }
    }
    if (size) msg[0] = 0;
    return -1;
}

/* ---- reverse pass ------------------------------------------------------------------------ */

nb_status nb_backward_from(nb_tape *tp, nb_tensor *y, const nb_tensor *seed)
{
    if (tp->status) return tp->status;
    if (!y || !seed) return nb__fail(tp, NB_ERR_ARG, "nb_backward: output or seed is NULL");
    if (tp->backward_done)
        return nb__fail(tp, NB_ERR_STATE, "nb_backward: called twice since nb_tape_reset");
    if (!(y->flags & NB_REQUIRES_GRAD))
        return nb__fail(tp, NB_ERR_ARG,
                        "nb_backward: the output depends on no tensor that requires a gradient "
                        "(parameters registered? recording on?)");
    if (!nb_same_shape(y, seed) || y->dtype != seed->dtype)
        return nb__fail(tp, NB_ERR_SHAPE, "nb_backward: seed %s %s does not match output %s %s",
                        nb_dtype_name(seed->dtype), NB_SHP(seed), nb_dtype_name(y->dtype),
                        NB_SHP(y));
    nb_tensor *g = nb__grad(tp, y);
    if (!g) return tp->status;
    nb_ew(NB_EW_ACC, g, seed, NULL, NULL, 0, 0);
    tp->backward_done = 1;
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        nb_node *n = &tp->nodes[i];
        if (!n->out->grad) continue; /* nothing flowed back to this op */
        const double t0 = profiling() ? prof_now() : 0;
        nb_ops[n->op].backward(tp, n);
        if (t0) prof.bwd[n->op] += prof_now() - t0, prof.bwd_calls[n->op]++;
        if (tp->status) return tp->status;
    }
    return NB_OK;
}

nb_status nb_backward(nb_tape *tp, nb_tensor *loss)
{
    if (tp->status) return tp->status;
    if (!loss) return nb__fail(tp, NB_ERR_ARG, "nb_backward: loss is NULL");
    if (nb_numel(loss) != 1)
        return nb__fail(tp, NB_ERR_SHAPE, "nb_backward: loss has shape %s; it must be a scalar "
                        "(use nb_backward_from for other outputs)", NB_SHP(loss));
    nb_tensor one;
    double v64 = 1.0;
    float v32 = 1.0f;
    nb_tensor_wrap(&one, loss->dtype, loss->ndim, loss->shape,
                   loss->dtype == NB_F64 ? (void *)&v64 : (void *)&v32);
    return nb_backward_from(tp, loss, &one);
}

/* ---- tensors in the arena ---------------------------------------------------------------- */

nb_tensor *nb_empty(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape)
{
    if (tp->status) return NULL;
    return nb__tensor(tp, dt, ndim, shape, 1);
}

nb_tensor *nb_full(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, double v)
{
    nb_tensor *t = nb_empty(tp, dt, ndim, shape);
    if (t) nb_fill(t, v);
    return t;
}

nb_tensor *nb_zeros(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape)
{
    return nb_full(tp, dt, ndim, shape, 0.0);
}

nb_tensor *nb_scalar(nb_tape *tp, nb_dtype dt, double v) { return nb_full(tp, dt, 0, NULL, v); }

nb_tensor *nb_tensor_from(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape,
                          const void *src)
{
    nb_tensor *t = nb_empty(tp, dt, ndim, shape);
    if (t) memcpy(t->data, src, (size_t)nb_numel(t) * nb_dtype_size(dt));
    return t;
}

nb_tensor *nb_uniform(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape,
                      double lo, double hi)
{
    nb_tensor *t = nb_empty(tp, dt, ndim, shape);
    if (t) nb_rng_uniform(rng, t, lo, hi);
    return t;
}

nb_tensor *nb_randn(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape)
{
    nb_tensor *t = nb_empty(tp, dt, ndim, shape);
    if (t) nb_rng_normal(rng, t, 0.0, 1.0);
    return t;
}

nb_tensor *nb_bernoulli(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape,
                        double p)
{
    nb_tensor *t = nb_empty(tp, dt, ndim, shape);
    if (t) nb_rng_bernoulli(rng, t, p);
    return t;
}

nb_tensor *nb_requires_grad(nb_tensor *t)
{
    if (t) t->flags |= NB_REQUIRES_GRAD;
    return t;
}

nb_tensor *nb_detach(nb_tape *tp, nb_tensor *t)
{
    if (!nb__inputs(tp, "detach", 1, &t)) return NULL;
    nb_tensor *v = nb__alloc(tp, sizeof *v);
    if (!v) return NULL;
    *v = *t;
    v->grad = NULL;
    v->flags = 0;
    v->name = NULL;
    return v;
}
