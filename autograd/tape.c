/* autograd/tape.c — the tape: records, errors, arena tensors and the reverse pass. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <threads.h>
#include <time.h>

#include "autograd/tape.h"

#include "tensor/error.h"

static const nb_op_def *const builtin_ops[] = {
#define NB_OP(name) &nb__op_##name,
#include "autograd/ops.def"
#undef NB_OP
};

const nb_op_def *const *nb_autograd_ops(int *n)
{
    if (n) *n = (int)(sizeof builtin_ops / sizeof builtin_ops[0]);
    return builtin_ops;
}

enum { FIRST_CHUNK = 1 << 20, HDR_BLOCK = 256, PROF_MAX_OPS = 512 };

/* ---- profile: per op, forward and backward time (NB_PROFILE=1) ---------------------------- */

typedef struct prof_row {
    const nb_op_def *op;
    int64_t calls, bwd_calls;
    double fwd, bwd;
} prof_row;

static struct {
    int on, n;
    prof_row row[PROF_MAX_OPS];
} prof;
static once_flag prof_once = ONCE_FLAG_INIT;
static mtx_t prof_lock;

static void prof_init(void)
{
    const char *e = getenv("NB_PROFILE");
    prof.on = e && *e && strcmp(e, "0");
    mtx_init(&prof_lock, mtx_plain);
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

/* Adds one call of op (forward or backward) taking dt seconds. Ops are found by their
 * descriptor, so ops defined outside the library are profiled like the built-in ones. */
static void prof_add(const nb_op_def *op, int backward, double dt)
{
    mtx_lock(&prof_lock);
    int k = 0;
    while (k < prof.n && prof.row[k].op != op) k++;
    if (k == prof.n && prof.n < PROF_MAX_OPS) prof.row[prof.n++].op = op;
    if (k < prof.n) {
        prof_row *r = &prof.row[k];
        if (backward)
            r->bwd += dt, r->bwd_calls++;
        else
            r->fwd += dt, r->calls++;
    }
    mtx_unlock(&prof_lock);
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
    mtx_lock(&prof_lock);
    memset(prof.row, 0, sizeof prof.row);
    prof.n = 0;
    mtx_unlock(&prof_lock);
    prof.on = on;
}

void nb_profile_print(FILE *f)
{
    if (!f) return;
    profiling();
    mtx_lock(&prof_lock);
    int order[PROF_MAX_OPS], n = prof.n;
    double total = 0;
    for (int i = 0; i < n; i++) order[i] = i, total += prof.row[i].fwd + prof.row[i].bwd;
    for (int i = 0; i < n; i++) /* largest first; a few dozen rows */
        for (int j = i + 1; j < n; j++)
            if (prof.row[order[j]].fwd + prof.row[order[j]].bwd >
                prof.row[order[i]].fwd + prof.row[order[i]].bwd) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    fprintf(f, "%-18s %10s %12s %12s %12s %7s\n", "op", "calls", "forward ms", "backward ms", "total ms", "share");
    for (int i = 0; i < n; i++) {
        const prof_row *r = &prof.row[order[i]];
        fprintf(f, "%-18s %10lld %12.2f %12.2f %12.2f %6.1f%%\n", r->op->name, (long long)r->calls,
                1e3 * r->fwd, 1e3 * r->bwd, 1e3 * (r->fwd + r->bwd),
                total > 0 ? 100 * (r->fwd + r->bwd) / total : 0);
    }
    fprintf(f, "%-18s %10s %12s %12s %12.2f\n", "all ops", "", "", "", 1e3 * total);
    mtx_unlock(&prof_lock);
}

/* ---- tensor headers: two pools of fixed blocks, alternating by step ------------------------ */

struct nb_hdr_block {
    nb_hdr_block *next;
    nb_tensor t[HDR_BLOCK];
};

/* Blocks of freed tapes wait here for the next tape instead of going back to malloc: a tensor
 * kept past nb_tape_free then still reads as stale rather than as freed memory. */
static nb_hdr_block *spare_blocks;
static mtx_t spare_lock;
static once_flag spare_once = ONCE_FLAG_INIT;

static void spare_init(void) { mtx_init(&spare_lock, mtx_plain); }

static nb_hdr_block *block_new(void)
{
    call_once(&spare_once, spare_init);
    mtx_lock(&spare_lock);
    nb_hdr_block *b = spare_blocks;
    if (b) spare_blocks = b->next;
    mtx_unlock(&spare_lock);
    if (!b && !(b = malloc(sizeof *b))) return NULL;
    b->next = NULL;
    return b;
}

static nb_tensor *hdr_take(nb_hdr_pool *p)
{
    if (!p->cur || p->used == HDR_BLOCK) {
        nb_hdr_block *next = p->cur ? p->cur->next : p->head;
        if (!next) {
            if (!(next = block_new())) return NULL;
            if (p->cur)
                p->cur->next = next;
            else
                p->head = next;
        }
        p->cur = next;
        p->used = 0;
    }
    return &p->cur->t[p->used++];
}

/* Marks every header of the pool stale and rewinds it: a tensor kept from two steps ago is
 * refused until its header is handed out again. */
static void hdr_rewind(nb_hdr_pool *p)
{
    for (nb_hdr_block *b = p->head; b; b = b->next) {
        const int used = b == p->cur ? p->used : HDR_BLOCK;
        for (int i = 0; i < used; i++) b->t[i].gen = NB_GEN_STALE;
        if (b == p->cur) break;
    }
    p->cur = NULL;
    p->used = 0;
}

static void hdr_free(nb_hdr_pool *p)
{
    hdr_rewind(p);
    if (!p->head) return;
    nb_hdr_block *last = p->head;
    while (last->next) last = last->next;
    call_once(&spare_once, spare_init);
    mtx_lock(&spare_lock);
    last->next = spare_blocks;
    spare_blocks = p->head;
    mtx_unlock(&spare_lock);
    p->head = p->cur = NULL;
}

/* Every live tape, so that a tensor of another tape can be told current or stale: a tensor
 * is current while its generation is some live tape's. Most inputs are of the tape they are
 * used on and never take the lock. */
static _Atomic uint64_t gen_counter;
static mtx_t live_lock;
static once_flag live_once = ONCE_FLAG_INIT;
static nb_tape *live_head;

static void live_init(void) { mtx_init(&live_lock, mtx_plain); }

static uint64_t next_gen(void) { return atomic_fetch_add(&gen_counter, 1) + 1; }

static int gen_is_live(uint64_t gen)
{
    call_once(&live_once, live_init);
    mtx_lock(&live_lock);
    const nb_tape *t = live_head;
    while (t && t->gen != gen) t = t->live_next;
    mtx_unlock(&live_lock);
    return t != NULL;
}

/* ---- the tape ------------------------------------------------------------------------------ */

nb_tape *nb_tape_new(void)
{
    nb_tape *tp = calloc(1, sizeof *tp);
    if (!tp) {
        nb_error(NB_ERR_NOMEM, "nb_tape_new: out of memory");
        return NULL;
    }
    nb_arena_init(&tp->arena, FIRST_CHUNK);
    nb_arena_init(&tp->scratch, FIRST_CHUNK);
    tp->grad_on = 1;
    call_once(&live_once, live_init);
    mtx_lock(&live_lock);
    tp->gen = next_gen();
    tp->live_next = live_head;
    live_head = tp;
    mtx_unlock(&live_lock);
    return tp;
}

struct nb_cache_entry {
    nb_cache_entry *next;
    void *obj;
    void (*destroy)(void *);
    size_t len;
    unsigned char key[];
};

void *nb_tape_cache_find(nb_tape *tp, const void *key, size_t len)
{
    if (!tp || !key) return NULL;
    for (nb_cache_entry *e = tp->cache; e; e = e->next)
        if (e->len == len && !memcmp(e->key, key, len)) return e->obj;
    return NULL;
}

nb_status nb_tape_cache_add(nb_tape *tp, const void *key, size_t len, void *obj,
                            void (*destroy)(void *))
{
    if (!tp || !key || !destroy) {
        if (destroy) destroy(obj);
        return tp ? nb__fail(tp, NB_ERR_ARG, "nb_tape_cache_add: key or destroy is NULL")
                  : nb_error(NB_ERR_ARG, "nb_tape_cache_add: the tape is NULL");
    }
    nb_cache_entry *e = malloc(sizeof *e + len);
    if (!e) {
        destroy(obj);
        return nb__fail(tp, NB_ERR_NOMEM, "nb_tape_cache_add: out of memory");
    }
    e->obj = obj, e->destroy = destroy, e->len = len;
    memcpy(e->key, key, len);
    e->next = tp->cache;
    tp->cache = e;
    return NB_OK;
}

void nb_tape_free(nb_tape *tp)
{
    if (!tp) return;
    mtx_lock(&live_lock);
    nb_tape **p = &live_head;
    while (*p && *p != tp) p = &(*p)->live_next;
    if (*p) *p = tp->live_next;
    mtx_unlock(&live_lock);
    for (nb_cache_entry *e = tp->cache, *next; e; e = next) {
        next = e->next;
        e->destroy(e->obj);
        free(e);
    }
    nb_arena_free(&tp->arena);
    nb_arena_free(&tp->scratch);
    hdr_free(&tp->hdr[0]);
    hdr_free(&tp->hdr[1]);
    free(tp->nodes);
    free(tp);
}

void nb_tape_reset(nb_tape *tp)
{
    if (!tp) return;
    nb_arena_reset(&tp->arena);
    tp->steps++;
    mtx_lock(&live_lock);
    tp->gen = next_gen();
    mtx_unlock(&live_lock);
    hdr_rewind(&tp->hdr[tp->steps & 1]);
    tp->n_nodes = 0;
    tp->backward_done = 0;
    tp->status = NB_OK;
    tp->msg[0] = 0;
}

int nb_tape_set_grad(nb_tape *tp, int on)
{
    if (!tp) return 0;
    int old = tp->grad_on;
    tp->grad_on = on != 0;
    return old;
}

nb_status nb_tape_set_precision(nb_tape *tp, nb_precision p)
{
    if (!tp) return nb_error(NB_ERR_ARG, "nb_tape_set_precision: the tape is NULL");
    if (p != NB_PREC_F32 && p != NB_PREC_BF16)
        return nb_error(NB_ERR_ARG, "nb_tape_set_precision: unknown precision %d", (int)p);
    if (p == NB_PREC_BF16 && !nb_cpu_bf16())
        return nb_error(NB_ERR_BACKEND, "bf16 precision: this CPU has no bf16 arithmetic (AVX512-BF16 or "
                        "AMX-BF16; oneDNN sees %s); use f32", getenv("ONEDNN_MAX_CPU_ISA") ? "a capped ISA" : "none");
    tp->precision = p;
    return NB_OK;
}

nb_precision nb_tape_precision(const nb_tape *tp) { return tp ? tp->precision : NB_PREC_F32; }

nb_status nb_tape_status(const nb_tape *tp) { return tp ? tp->status : NB_ERR_ARG; }
const char *nb_tape_error(const nb_tape *tp) { return tp ? tp->msg : "the tape is NULL"; }
int nb_tape_size(const nb_tape *tp) { return tp ? tp->n_nodes : 0; }
size_t nb_tape_arena_bytes(const nb_tape *tp)
{
    return tp ? nb_arena_capacity(&tp->arena) + nb_arena_capacity(&tp->scratch) : 0;
}

const nb_node *nb_tape_node(const nb_tape *tp, int i)
{
    return tp && i >= 0 && i < tp->n_nodes ? &tp->nodes[i] : NULL;
}

nb_status nb_tape_fail(nb_tape *tp, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!tp) {
        char msg[512];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return nb_error(st, "%s", msg);
    }
    if (!tp->status) {
        tp->status = st;
        vsnprintf(tp->msg, sizeof tp->msg, fmt, ap);
        nb_error(st, "%s", tp->msg); /* one place to read any error: nb_last_error */
    }
    va_end(ap);
    return st;
}

int nb__current(nb_tape *tp, const char *op, const nb_tensor *t, int which)
{
    if (!t->gen || t->gen == tp->gen || (t->gen != NB_GEN_STALE && gen_is_live(t->gen))) return 1;
    char what[32] = "the tensor";
    if (which) snprintf(what, sizeof what, "input %d", which);
    nb__fail(tp, NB_ERR_STATE, "nb_%s: %s is from a step that has ended (its tape was reset or "
             "freed since it was made); its memory has been reused", op, what);
    return 0;
}

int nb__inputs(nb_tape *tp, const char *op, int n, nb_tensor *const *in)
{
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_%s: the tape is NULL", op);
        return 0;
    }
    if (tp->status) return 0;
    for (int i = 0; i < n; i++)
        if (!in[i]) {
            nb__fail(tp, NB_ERR_ARG, "nb_%s: input %d is NULL", op, i + 1);
            return 0;
        }
    for (int i = 0; i < n; i++)
        if (!nb__current(tp, op, in[i], i + 1)) return 0;
    for (int i = 1; i < n; i++)
        if (in[i]->dtype != in[0]->dtype) {
            nb__fail(tp, NB_ERR_DTYPE, "nb_%s: dtypes %s and %s differ", op,
                     nb_dtype_name(in[0]->dtype), nb_dtype_name(in[i]->dtype));
            return 0;
        }
    return 1;
}

int nb_op_check(nb_tape *tp, const char *name, int n, nb_tensor *const *in)
{
    if (n < 0 || n > NB_OP_MAX_IN || (n && !in)) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_%s: %d inputs", name ? name : "op_check", n);
        return 0;
    }
    return nb__inputs(tp, name ? name : "op_check", n, in);
}

void *nb_op_alloc(nb_tape *tp, size_t bytes)
{
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_op_alloc: the tape is NULL");
        return NULL;
    }
    void *p = nb_arena_alloc(&tp->arena, bytes);
    if (!p) nb__fail(tp, NB_ERR_NOMEM, "out of memory allocating %zu bytes in the tape arena", bytes);
    return p;
}

void *nb_op_scratch(nb_tape *tp, size_t bytes)
{
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_op_scratch: the tape is NULL");
        return NULL;
    }
    void *p = nb_arena_alloc(&tp->scratch, bytes);
    if (!p) nb__fail(tp, NB_ERR_NOMEM, "out of memory allocating %zu bytes of scratch", bytes);
    return p;
}

/* Brackets one forward or backward call: the scratch memory it took is free again after it. */
static void call_begin(nb_tape *tp) { tp->depth++; }
static void call_end(nb_tape *tp)
{
    if (--tp->depth == 0) nb_arena_reset(&tp->scratch);
}

nb_tensor *nb__tensor(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, int alloc)
{
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nb__fail(tp, NB_ERR_SHAPE, "tensor: %d dims (at most %d)", ndim, NB_MAX_DIMS);
        return NULL;
    }
    if (dt != NB_F32 && dt != NB_F64) {
        nb__fail(tp, NB_ERR_DTYPE, "tensor: unknown dtype %d", (int)dt);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            nb__fail(tp, NB_ERR_SHAPE, "tensor: negative size %lld in dim %d",
                     (long long)shape[i], i);
            return NULL;
        }
        if (shape[i] && n > INT64_MAX / 8 / shape[i]) {
            nb__fail(tp, NB_ERR_SHAPE, "tensor: %d dims of sizes up to %lld overflow a size",
                     ndim, (long long)shape[i]);
            return NULL;
        }
        n *= shape[i];
    }
    nb_tensor *t = hdr_take(&tp->hdr[tp->steps & 1]);
    if (!t) {
        nb__fail(tp, NB_ERR_NOMEM, "out of memory allocating a tensor header");
        return NULL;
    }
    nb_tensor_wrap(t, dt, ndim, shape, NULL);
    t->gen = tp->gen;
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

/* Broadcasts the inputs to one shape (failing with their shapes named), as recorded expands. */
static int broadcast_inputs(nb_tape *tp, const char *op, int n, nb_tensor **in)
{
    int nd = in[0]->ndim;
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0; d < nd; d++) shape[d] = in[0]->shape[d];
    for (int i = 1; i < n; i++) {
        int64_t s[NB_MAX_DIMS];
        int k = nb_broadcast_shape(nd, shape, in[i]->ndim, in[i]->shape, s);
        if (k < 0) {
            nb_tensor first;
            nb_tensor_wrap(&first, in[0]->dtype, nd, shape, NULL);
            nb__fail(tp, NB_ERR_SHAPE, "nb_%s: shapes %s and %s do not broadcast", op,
                     NB_SHP(i == 1 ? in[0] : &first), NB_SHP(in[i]));
            return 0;
        }
        nd = k;
        for (int d = 0; d < k; d++) shape[d] = s[d];
    }
    for (int i = 0; i < n; i++)
        if (!(in[i] = nb_expand(tp, in[i], nd, shape))) return 0;
    return 1;
}

nb_tensor *nb_op_apply(nb_tape *tp, const nb_op_def *op, nb_node *n)
{
    const char *name = op && op->name ? op->name : "op_apply";
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_%s: the tape is NULL", name);
        return NULL;
    }
    if (tp->status) return NULL;
    if (!op || !op->forward || !n || n->nin < 1 || n->nin > NB_OP_MAX_IN) {
        nb__fail(tp, NB_ERR_ARG, "nb_%s: %s", name,
                 !op ? "the op descriptor is NULL" : !op->forward ? "the op has no forward"
                 : !n ? "the node is NULL" : "an op takes 1 to 4 inputs");
        return NULL;
    }
    if (!nb__inputs(tp, name, n->nin, n->in)) return NULL;
    n->op = op;
    if (op->flags & NB_OP_BROADCAST && n->nin > 1 && !broadcast_inputs(tp, name, n->nin, n->in))
        return NULL;
    if (op->flags & NB_OP_CONTIGUOUS)
        for (int i = 0; i < n->nin; i++)
            if (!(n->in[i] = nb_contiguous(tp, n->in[i]))) return NULL;
    int nd = n->in[0]->ndim;
    int64_t shape[NB_MAX_DIMS] = {0};
    if (op->shape) {
        nb_status st = op->shape(tp, n, &nd, shape);
        if (st) {
            nb__fail(tp, st, "nb_%s: %s (shape rule)", name, nb_status_str(st));
            return NULL;
        }
    } else {
        memcpy(shape, n->in[0]->shape, sizeof shape);
    }
    nb_tensor *out = nb__tensor(tp, n->in[0]->dtype, nd, shape, !(op->flags & NB_OP_VIEW));
    if (!out) return NULL;
    n->out = out;
    const double t0 = profiling() ? prof_now() : 0;
    call_begin(tp);
    nb_status st = op->forward(tp, n);
    call_end(tp);
    if (t0) prof_add(op, 0, prof_now() - t0);
    if (st) {
        nb__fail(tp, st, "nb_%s: %s", name, nb_status_str(st)); /* unless it said more */
        return NULL;
    }
    if (tp->status) return NULL; /* forward recorded an error but returned ok */
    int needs_grad = 0;
    for (int i = 0; i < n->nin; i++) needs_grad |= (n->in[i]->flags & NB_REQUIRES_GRAD) != 0;
    if (needs_grad && tp->grad_on && op->backward) {
        if (!push_node(tp, n)) {
            nb__fail(tp, NB_ERR_NOMEM, "nb_%s: out of memory growing the tape", name);
            return NULL;
        }
        out->flags |= NB_REQUIRES_GRAD;
    }
    return out;
}

int nb_op_needs_grad(const nb_tape *tp, const nb_node *n, int i)
{
    return tp && n && tp->grad_on && n->op && n->op->backward && i >= 0 && i < n->nin && n->in[i] &&
           (n->in[i]->flags & NB_REQUIRES_GRAD);
}

nb_tensor *nb__grad_fresh(nb_tape *tp, nb_tensor *t, int *fresh)
{
    *fresh = 0;
    if (!t || !(t->flags & NB_REQUIRES_GRAD)) return NULL;
    if (!t->grad) {
        if (!(t->grad = nb__tensor(tp, t->dtype, t->ndim, t->shape, 1))) return NULL;
        *fresh = 1;
    } else if (t->flags & NB_GRAD_CLEARED) { /* a parameter's, marked by nb_params_clear_grad */
        t->flags &= ~NB_GRAD_CLEARED;
        *fresh = 1;
    }
    return t->grad;
}

nb_tensor *nb__grad(nb_tape *tp, nb_tensor *t)
{
    int fresh;
    nb_tensor *g = nb__grad_fresh(tp, t, &fresh);
    if (g && fresh) nb_fill(g, 0.0);
    return g;
}

nb_tensor *nb_op_grad(nb_tape *tp, const nb_node *n, int i)
{
    if (!tp || !n || i < 0 || i >= n->nin) return NULL;
    return nb__grad(tp, n->in[i]);
}

nb_tensor *nb_op_grad_fresh(nb_tape *tp, const nb_node *n, int i, int *fresh)
{
    int f = 0;
    nb_tensor *g = tp && n && i >= 0 && i < n->nin ? nb__grad_fresh(tp, n->in[i], &f) : NULL;
    if (fresh) *fresh = g ? f : 0;
    else if (g && f) nb_fill(g, 0.0); /* no flag to report it through: as nb_op_grad */
    return g;
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
    if (naxes < 0 || naxes > a->ndim || !axes) {
        nb__fail(tp, NB_ERR_ARG, "nb_%s: %d axes for shape %s", op, naxes, NB_SHP(a));
        return 0;
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
    if (!tp) return -1;
    for (int i = 0; i < tp->n_nodes; i++) {
        const nb_tensor *y = tp->nodes[i].out;
        for (int64_t j = 0, n = nb_numel(y); j < n; j++) {
            const double v = nb_get(y, j);
            if (!isfinite(v)) {
                snprintf(msg, size, "op #%d (nb_%s) output %s holds %g at element %lld", i,
                         tp->nodes[i].op->name, NB_SHP(y), v, (long long)j);
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
    if (!tp) return nb_error(NB_ERR_ARG, "nb_backward: the tape is NULL");
    if (tp->status) return tp->status;
    if (!y || !seed) return nb__fail(tp, NB_ERR_ARG, "nb_backward: output or seed is NULL");
    if (!nb__current(tp, "backward", y, 0) || !nb__current(tp, "backward (seed)", seed, 0))
        return tp->status;
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
        call_begin(tp);
        nb_status st = n->op->backward(tp, n);
        call_end(tp);
        if (t0) prof_add(n->op, 1, prof_now() - t0);
        if (st && !tp->status) nb__fail(tp, st, "nb_%s: backward: %s", n->op->name, nb_status_str(st));
        if (tp->status) return tp->status;
    }
    return NB_OK;
}

nb_status nb_backward(nb_tape *tp, nb_tensor *loss)
{
    if (!tp) return nb_error(NB_ERR_ARG, "nb_backward: the tape is NULL");
    if (tp->status) return tp->status;
    if (!loss) return nb__fail(tp, NB_ERR_ARG, "nb_backward: loss is NULL");
    if (!nb__current(tp, "backward", loss, 0)) return tp->status;
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

/* A new arena tensor for the public constructor `name`, its arguments checked. */
static nb_tensor *make(nb_tape *tp, const char *name, nb_dtype dt, int ndim, const int64_t *shape)
{
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_%s: the tape is NULL", name);
        return NULL;
    }
    if (tp->status) return NULL;
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim && !shape)) {
        nb__fail(tp, NB_ERR_SHAPE, "nb_%s: %d dims%s (at most %d)", name, ndim,
                 ndim && !shape ? " and no shape" : "", NB_MAX_DIMS);
        return NULL;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            nb__fail(tp, NB_ERR_SHAPE, "nb_%s: negative size %lld in dim %d", name,
                     (long long)shape[d], d);
            return NULL;
        }
    return nb__tensor(tp, dt, ndim, shape, 1);
}

nb_tensor *nb_empty(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape)
{
    return make(tp, "empty", dt, ndim, shape);
}

static nb_tensor *filled(nb_tape *tp, const char *name, nb_dtype dt, int ndim,
                         const int64_t *shape, double v)
{
    nb_tensor *t = make(tp, name, dt, ndim, shape);
    if (t) nb_fill(t, v);
    return t;
}

nb_tensor *nb_full(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape, double v)
{
    return filled(tp, "full", dt, ndim, shape, v);
}

nb_tensor *nb_zeros(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape)
{
    return filled(tp, "zeros", dt, ndim, shape, 0.0);
}

nb_tensor *nb_scalar(nb_tape *tp, nb_dtype dt, double v) { return filled(tp, "scalar", dt, 0, NULL, v); }

nb_tensor *nb_tensor_from(nb_tape *tp, nb_dtype dt, int ndim, const int64_t *shape,
                          const void *src, int64_t n)
{
    if (tp && !src) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_tensor_from: the source is NULL");
        return NULL;
    }
    nb_tensor *t = make(tp, "tensor_from", dt, ndim, shape);
    if (t && nb_numel(t) != n) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_tensor_from: %lld values for shape %s (%lld elements)", (long long)n,
                     NB_SHP(t), (long long)nb_numel(t));
        return NULL;
    }
    if (t) memcpy(t->data, src, (size_t)nb_numel(t) * nb_dtype_size(dt));
    return t;
}

/* 1 when a random tensor can be drawn: a tape without error, and a generator. */
static int random_args(nb_tape *tp, const char *op, const nb_rng *rng)
{
    if (!tp) {
        nb_error(NB_ERR_ARG, "nb_%s: the tape is NULL", op);
        return 0;
    }
    if (!rng && !tp->status) nb_tape_fail(tp, NB_ERR_ARG, "nb_%s: the generator is NULL", op);
    return !tp->status;
}

nb_tensor *nb_uniform(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape,
                      double lo, double hi)
{
    if (!random_args(tp, "uniform", rng)) return NULL;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_uniform: bounds [%g, %g) are not finite and ordered", lo, hi);
        return NULL;
    }
    nb_tensor *t = make(tp, "uniform", dt, ndim, shape);
    if (t) nb_rng_uniform(rng, t, lo, hi);
    return t;
}

nb_tensor *nb_randn(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape)
{
    if (!random_args(tp, "randn", rng)) return NULL;
    nb_tensor *t = make(tp, "randn", dt, ndim, shape);
    if (t) nb_rng_normal(rng, t, 0.0, 1.0);
    return t;
}

nb_tensor *nb_bernoulli(nb_tape *tp, nb_rng *rng, nb_dtype dt, int ndim, const int64_t *shape,
                        double p)
{
    if (!random_args(tp, "bernoulli", rng)) return NULL;
    if (!(p >= 0 && p <= 1)) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_bernoulli: probability %g is outside [0, 1]", p);
        return NULL;
    }
    nb_tensor *t = make(tp, "bernoulli", dt, ndim, shape);
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
    nb_tensor *v = nb__tensor(tp, t->dtype, 0, NULL, 0);
    if (!v) return NULL;
    const uint64_t gen = v->gen;
    *v = *t;
    v->gen = gen;
    v->grad = NULL;
    v->flags = 0;
    v->name = NULL;
    return v;
}
