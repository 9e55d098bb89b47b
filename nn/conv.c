/* nn/conv.c — Conv2d and ConvTranspose2d: oneDNN for f32, the loops of conv_ref.c for f64.
 *
 * oneDNN discipline: every descriptor is created with format `any` so that oneDNN picks its
 * blocked layouts (plain nchw makes deconvolution fall back to a reference kernel ~1000x
 * slower), and each argument is reordered between the caller's NCHW/PyTorch layout and the
 * primitive's only when the two differ. The forward primitive descriptor is the hint for the
 * backward ones. Everything for one shape is built once and kept in the tape's cache, which
 * destroys it with the tape: model code never pairs create and destroy calls.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "nn/conv_ref.h"
#include "nn/dnnl_mm.h"
#include "nn/internal.h"
#include "tensor/error.h"

/* ---- geometry ------------------------------------------------------------------------------ */

nb_conv_cfg nb_conv(int stride, int pad)
{
    return (nb_conv_cfg){{stride, stride}, {pad, pad}, {0, 0}, {1, 1}};
}

int64_t nb_conv_out_size(int64_t in, int k, int stride, int pad, int dilation)
{
    if (stride < 1 || pad < 0 || dilation < 1 || k < 1) return -1;
    int64_t span = in + 2 * (int64_t)pad - (int64_t)dilation * (k - 1) - 1;
    return span < 0 ? -1 : span / stride + 1;
}

int64_t nb_conv_transpose_out_size(int64_t in, int k, int stride, int pad, int out_pad,
                                   int dilation)
{
    if (stride < 1 || pad < 0 || dilation < 1 || k < 1 || out_pad < 0) return -1;
    /* PyTorch: output padding must be smaller than either stride or dilation */
    if (out_pad >= stride && out_pad >= dilation) return -1;
    int64_t out = (in - 1) * stride - 2 * (int64_t)pad + (int64_t)dilation * (k - 1) + out_pad + 1;
    return out < 1 ? -1 : out;
}

/* n->saved of a conv node */
typedef struct conv_aux {
    nb_conv_cfg cfg;
    uint64_t seq; /* which forward of its primitives this node ran */
    nb_conv_geom g; /* the plain convolution: for a transposed one, from its output to its input */
    struct conv_prims *prims; /* f32 only */
    int bf16;                 /* the tape's precision when the op was made */
    int relu;                 /* y = max(conv, 0), fused */
} conv_aux;

/* ---- oneDNN: engine, arguments, primitives ------------------------------------------------- */

/* the engine and stream nn's oneDNN ops share (nn/dnnl_mm.c), set by prims_for */
static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* One argument of a primitive, in the caller's layout (user) and the primitive's (prim). The
 * prim buffer comes from the tape's arena at each call: it lives for the step (the backward may
 * read the forward's) and costs no memory between steps or for passes that reuse another's. */
typedef struct dnn_arg {
    dnnl_memory_t user, prim;  /* prim == user when the layouts agree (and it is no ACC output) */
    dnnl_primitive_t reorder;  /* user→prim for inputs, prim→user for outputs; or NULL */
    dnnl_primitive_t put;      /* ARG_OUT_ACC: prim→user without the sum, for a first write */
    size_t bytes;              /* of a separate prim buffer */
    int blk;                   /* an output whose prim layout blocks channels by 16 or 8 and whose
                                * user layout is NCHW: that block (unblock() copies it out); else 0 */
} dnn_arg;

/* Outputs either overwrite the caller's buffer or, for gradients, add into it: the primitive
 * then always writes its own buffer, and a reorder with a sum post-op adds it in. */
typedef enum { ARG_IN, ARG_OUT, ARG_OUT_ACC } arg_mode;

static void arg_free(dnn_arg *a)
{
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->put) dnnl_primitive_destroy(a->put);
    if (a->prim && a->prim != a->user) dnnl_memory_destroy(a->prim);
    if (a->user) dnnl_memory_destroy(a->user);
    memset(a, 0, sizeof *a);
}

static dnnl_status_t arg_init(dnn_arg *a, const dnnl_memory_desc_t *user_md,
                              const dnnl_memory_desc_t *prim_md, arg_mode mode)
{
    dnnl_status_t st = dnnl_memory_create(&a->user, user_md, engine, DNNL_MEMORY_NONE);
    if (st || (mode != ARG_OUT_ACC && dnnl_memory_desc_equal(user_md, prim_md))) {
        a->prim = a->user;
        return st;
    }
    if ((st = dnnl_memory_create(&a->prim, prim_md, engine, DNNL_MEMORY_NONE))) return st;
    a->bytes = dnnl_memory_desc_get_size(prim_md);
    dnnl_memory_desc_t m;
    for (int i = 0; i < 2 && mode != ARG_IN && user_md->ndims == 4 && !a->blk; i++) {
        dnnl_memory_desc_init_by_tag(&m, 4, user_md->dims, dnnl_f32, i ? dnnl_nChw8c : dnnl_nChw16c);
        if (dnnl_memory_desc_equal(&m, prim_md)) {
            dnnl_memory_desc_init_by_tag(&m, 4, user_md->dims, dnnl_f32, dnnl_nchw);
            a->blk = dnnl_memory_desc_equal(&m, user_md) ? (i ? 8 : 16) : 0;
        }
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t sum = NULL;
    if (mode == ARG_OUT_ACC &&
        ((st = dnnl_primitive_attr_create(&attr)) || (st = dnnl_post_ops_create(&sum)) ||
         (st = dnnl_post_ops_append_sum(sum, 1.0f)) || (st = dnnl_primitive_attr_set_post_ops(attr, sum))))
        goto out;
    dnnl_primitive_desc_t pd;
    st = mode != ARG_IN ? dnnl_reorder_primitive_desc_create(&pd, prim_md, engine, user_md, engine, attr)
                        : dnnl_reorder_primitive_desc_create(&pd, user_md, engine, prim_md, engine, NULL);
    if (!st) {
        st = dnnl_primitive_create(&a->reorder, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    if (!st && mode == ARG_OUT_ACC &&
        !(st = dnnl_reorder_primitive_desc_create(&pd, prim_md, engine, user_md, engine, NULL))) {
        st = dnnl_primitive_create(&a->put, pd);
        dnnl_primitive_desc_destroy(pd);
    }
out:
    if (sum) dnnl_post_ops_destroy(sum);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Blocked channels (N, C/blk, H, W, blk) to NCHW: oneDNN 2.6's reorder took 1.0 ms for 128 x 32
 * x 14 x 14 at 1 thread (its reverse 0.55); this one reads each block from L1 a channel at a
 * time and writes each plane in order. */
static void unblock(float *dst, const float *src, const dnnl_dims_t dims, int blk)
{
    const int64_t N = dims[0], C = dims[1], HW = dims[2] * dims[3], CB = (C + blk - 1) / blk;
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
    for (int64_t i = 0; i < N * CB; i++) {
        const int64_t n = i / CB, cb = i % CB;
        const float *s = src + i * HW * blk;
        for (int64_t c = 0; c < blk && cb * blk + c < C; c++) {
            float *d = dst + (n * C + cb * blk + c) * HW;
            for (int64_t j = 0; j < HW; j++) d[j] = s[j * blk + c];
        }
    }
}

/* output: 0 for an input (user→prim), 1 for an output, 2 for an ACC output written first */
static dnnl_status_t run_reorder(dnn_arg *a, int output)
{
    if (a->blk && (output == 2 || (output == 1 && !a->put))) {
        void *from = NULL, *to = NULL;
        const dnnl_memory_desc_t *md = NULL;
        dnnl_status_t st = dnnl_memory_get_data_handle(a->prim, &from);
        if (!st) st = dnnl_memory_get_data_handle(a->user, &to);
        if (!st) st = dnnl_memory_get_memory_desc(a->user, &md);
        if (!st) unblock(to, from, md->dims, a->blk);
        return st;
    }
    dnnl_primitive_t r = output == 2 && a->put ? a->put : a->reorder;
    if (!r) return dnnl_success;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, output ? a->prim : a->user},
                               {DNNL_ARG_TO, output ? a->user : a->prim}};
    return dnnl_primitive_execute(r, stream, 2, args);
}

static const dnnl_memory_desc_t *prim_md_of(const dnn_arg *a)
{
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(a->prim, &md);
    return md;
}

/* One input of a call: its data, and where it may already be in the primitive's layout: an
 * argument of an earlier primitive that holds it reordered (the forward's source for
 * backward-weights, say), or a blocked copy (blk, below). Either is used when its layout is the
 * primitive's, and the reorder is skipped. */
typedef struct exec_in {
    int kind;
    dnn_arg *arg;
    const void *data;
    const dnn_arg *have;
    void *blk;
} exec_in;

/* One output: keep, to keep the primitive's buffer for the step (a blocked copy); first, for an
 * ACC output that nothing was added into yet (overwritten, not summed); defer, to leave the
 * reorder to the caller. */
typedef struct exec_out {
    int kind;
    dnn_arg *arg;
    void *data;
    int keep, first, defer;
} exec_out;

/* ---- blocked copies ------------------------------------------------------------------------
 * A convolution's output leaves its primitive in oneDNN's blocked layout and is reordered to the
 * caller's NCHW, and the next convolution reorders it back (conv VQ-VAE, 1 thread: 20 reorders
 * a step, a quarter of its convolutions' time). A step keeps the blocked buffer of each f32
 * convolution's output, and of an input gradient its backward wrote, found by the NCHW data: a
 * convolution reading that tensor in the same layout skips its reorder. An op's output is never
 * written after its op (its backward may read it), so a copy stays true for the step. A gradient
 * is kept only when one node reads the input: a second would add into it later. */
typedef struct blk_copy {
    const void *data;
    const dnnl_memory_desc_t *md; /* a primitive's argument's: it lives as long as the tape */
    void *buf;                    /* step memory */
} blk_copy;

typedef struct blk_table {
    uint64_t gen; /* the step the copies belong to */
    int n;
    blk_copy e[64];
} blk_table;

static const char blk_key[32] = "nn/conv.c: blocked copies";

static void blk_add(nb_tape *tp, uint64_t gen, const void *data, const dnn_arg *a)
{
    blk_table *t = nb_tape_cache_find(tp, blk_key, sizeof blk_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t))) return; /* an optimisation: no copies, no error */
        if (nb_tape_cache_add(tp, blk_key, sizeof blk_key, t, free)) return;
    }
    if (t->gen != gen) t->gen = gen, t->n = 0;
    void *buf = NULL;
    if (t->n == (int)(sizeof t->e / sizeof t->e[0]) || dnnl_memory_get_data_handle(a->prim, &buf) || !buf)
        return;
    t->e[t->n++] = (blk_copy){data, prim_md_of(a), buf};
}

/* The blocked copy of data in a's layout, or NULL. */
static void *blk_find(nb_tape *tp, uint64_t gen, const void *data, const dnn_arg *a)
{
    const blk_table *t = nb_tape_cache_find(tp, blk_key, sizeof blk_key);
    if (!t || t->gen != gen || a->prim == a->user) return NULL;
    const dnnl_memory_desc_t *md = prim_md_of(a);
    for (int i = t->n - 1; i >= 0; i--)
        if (t->e[i].data == data && dnnl_memory_desc_equal(t->e[i].md, md)) return t->e[i].buf;
    return NULL;
}

/* 1 when x is the input of one node of the tape: then its gradient is that node's alone. */
static int one_reader(const nb_tape *tp, const nb_tensor *x)
{
    int uses = 0;
    const nb_node *m;
    for (int i = 0; (m = nb_tape_node(tp, i)); i++)
        for (int k = 0; k < m->nin; k++) uses += m->in[k] == x;
    return uses == 1;
}

typedef struct conv_prims {
    int has_bias, bwd_tried;
    uint64_t fwd_seq; /* forwards run so far: a backward whose forward was the last one may reuse
                       * the forward's reordered source and weights */
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md; /* the caller's layouts */
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, bwd_data, bwd_wei;
    dnn_arg f_src, f_wei, f_bias, f_dst;
    dnn_arg d_ddst, d_wei, d_dsrc;
    dnn_arg w_src, w_ddst, w_dwei, w_dbias;
    /* each primitive's scratchpad: user-managed, so its memory comes from the step's arena
     * instead of staying with the primitive between steps */
    dnnl_memory_t f_scratch, d_scratch, w_scratch;
} conv_prims;

static void prims_free(void *p)
{
    conv_prims *c = p;
    dnn_arg *args[] = {&c->f_src, &c->f_wei, &c->f_bias, &c->f_dst, &c->d_ddst, &c->d_wei,
                       &c->d_dsrc, &c->w_src, &c->w_ddst, &c->w_dwei, &c->w_dbias};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) arg_free(args[i]);
    if (c->fwd) dnnl_primitive_destroy(c->fwd);
    if (c->bwd_data) dnnl_primitive_destroy(c->bwd_data);
    if (c->bwd_wei) dnnl_primitive_destroy(c->bwd_wei);
    if (c->fwd_pd) dnnl_primitive_desc_destroy(c->fwd_pd);
    dnnl_memory_t scratch[3] = {c->f_scratch, c->d_scratch, c->w_scratch};
    for (int i = 0; i < 3; i++)
        if (scratch[i]) dnnl_memory_destroy(scratch[i]);
    free(c);
}

/* An attribute with a user-managed scratchpad (and the forward's fused ReLU). */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int relu)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (!st) st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (!st && relu) {
        dnnl_post_ops_t po;
        if (!(st = dnnl_post_ops_create(&po))) {
            st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
            if (!st) st = dnnl_primitive_attr_set_post_ops(*attr, po);
            dnnl_post_ops_destroy(po);
        }
    }
    return st;
}

/* The memory object of a primitive's scratchpad, or NULL when it needs none. */
static dnnl_status_t scratch_init(dnnl_memory_t *m, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *m = NULL;
    if (!md || !dnnl_memory_desc_get_size(md)) return dnnl_success;
    dnnl_engine_t e;
    dnnl_stream_t s;
    nb__dnnl(&e, &s);
    return dnnl_memory_create(m, md, e, DNNL_MEMORY_NONE);
}

/* Shape of one call, as oneDNN sees it: src → dst through weights, transposed or not. */
typedef struct conv_shape {
    int transposed, has_bias;
    int bf16; /* the products' inputs (src, weights, diff_dst) in bf16, everything else f32 */
    int relu; /* a ReLU fused into the forward as a post-op */
    dnnl_dims_t src, wei, bias, dst, strides, dilates, pad_l, pad_r;
} conv_shape;

static conv_shape shape_of(const nb_node *n)
{
    const conv_aux *aux = n->saved;
    const nb_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    conv_shape s;
    memset(&s, 0, sizeof s); /* the struct is the cache key: no stray padding bytes */
    s.transposed = n->op == &nb__op_conv_transpose2d;
    s.has_bias = n->nin > 2;
    s.bf16 = aux->bf16;
    /* oneDNN 2.6 runs a deconvolution's eltwise post-op 6x slower than the deconvolution itself
     * (128x64x7x7 -> 32x14x14: 43 ms against 7 ms, 1 thread): there the ReLU is a pass of its own */
    s.relu = aux->relu && !s.transposed;
    for (int d = 0; d < 4; d++) s.src[d] = x->shape[d], s.dst[d] = y->shape[d];
    /* oneDNN weights are (out, in, kh, kw) for both; PyTorch's transposed ones are (in, out) */
    s.wei[0] = s.transposed ? w->shape[1] : w->shape[0];
    s.wei[1] = s.transposed ? w->shape[0] : w->shape[1];
    s.wei[2] = w->shape[2], s.wei[3] = w->shape[3];
    s.bias[0] = y->shape[1];
    for (int d = 0; d < 2; d++) {
        s.strides[d] = aux->cfg.stride[d];
        s.dilates[d] = aux->cfg.dilation[d] - 1; /* oneDNN counts the gaps */
        s.pad_l[d] = aux->cfg.pad[d];
        /* output padding adds rows at the far end: less padding to crop there */
        s.pad_r[d] = aux->cfg.pad[d] - (s.transposed ? aux->cfg.out_pad[d] : 0);
    }
    return s;
}

static void md(dnnl_memory_desc_t *m, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_init_by_tag(m, nd, dims, dnnl_f32, tag);
}

/* A layout-free descriptor for a primitive: bf16 for the products' inputs under bf16. The
 * arguments' reorders convert from and to the caller's f32 on the way. */
static void md_any(dnnl_memory_desc_t *m, const dnnl_dims_t dims, int bf16)
{
    dnnl_memory_desc_init_by_tag(m, 4, dims, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any);
}

#define Q(pd, what, i) dnnl_primitive_desc_query_md(pd, what, i)
#define TRY(call)                                                                             \
    do {                                                                                      \
        if ((st = (call)) != dnnl_success) goto fail;                                         \
    } while (0)

/* 1 when the plain-NCHW output is the better forward: when oneDNN's own layout pads the output
 * channels to at least twice their number (a vector of 16 for 1 channel). The rule, not a
 * timing, decides: the same shape gets the same primitive, and the same bits, on a busy machine. */
static int prefer_plain_output(dnnl_primitive_desc_t any, int64_t channels)
{
    const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(any, dnnl_query_dst_md, 0);
    return dst && dst->padded_dims[1] >= 2 * channels;
}

static conv_prims *prims_create(const conv_shape *s, dnnl_status_t *status)
{
    conv_prims *c = calloc(1, sizeof *c);
    if (!c) {
        *status = dnnl_out_of_memory;
        return NULL;
    }
    dnnl_status_t st = dnnl_success;
    c->has_bias = s->has_bias;
    md(&c->src_md, 4, s->src, dnnl_nchw);
    md(&c->dst_md, 4, s->dst, dnnl_nchw);
    md(&c->wei_md, 4, s->wei, s->transposed ? dnnl_iohw : dnnl_oihw);
    md(&c->bias_md, 1, s->bias, dnnl_x);
    dnnl_memory_desc_t src_any, wei_any, dst_any;
    md_any(&src_any, s->src, s->bf16);
    md_any(&wei_any, s->wei, s->bf16);
    md_any(&dst_any, s->dst, 0);
    /* Two candidates for the forward: every layout left to oneDNN, and the output in plain NCHW.
     * The first is usually best, but with few output channels its blocked layout pads them to a
     * full vector (a transposed convolution to 1 channel ran 8x slower than a GEMM-based one). */
    dnnl_primitive_desc_t pd[2] = {NULL, NULL};
    dnnl_primitive_attr_t attr = NULL;
    TRY(make_attr(&attr, s->relu));
    for (int k = 0; k < 2; k++) {
        dnnl_convolution_desc_t d;
        const dnnl_memory_desc_t *dst = k ? &c->dst_md : &dst_any;
        /* a transposed convolution adds its bias after the primitive (fwd_conv says why) */
        const dnnl_memory_desc_t *bias = s->has_bias && !s->transposed ? &c->bias_md : NULL;
        st = s->transposed
                 ? dnnl_dilated_deconvolution_forward_desc_init(&d, dnnl_forward_training,
                       dnnl_deconvolution_direct, &src_any, &wei_any, bias, dst, s->strides, s->dilates,
                       s->pad_l, s->pad_r)
                 : dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_training,
                       dnnl_convolution_direct, &src_any, &wei_any, bias, dst, s->strides, s->dilates,
                       s->pad_l, s->pad_r);
        if (st || dnnl_primitive_desc_create(&pd[k], &d, attr, engine, NULL)) pd[k] = NULL;
    }
    if (!pd[0] && !pd[1]) TRY(dnnl_unimplemented);
    const int pick = !pd[0] ? 1 : !pd[1] ? 0 : prefer_plain_output(pd[0], s->dst[1]);
    c->fwd_pd = pd[pick];
    if (pd[1 - pick]) dnnl_primitive_desc_destroy(pd[1 - pick]);
    TRY(dnnl_primitive_create(&c->fwd, c->fwd_pd));
    TRY(arg_init(&c->f_src, &c->src_md, Q(c->fwd_pd, dnnl_query_src_md, 0), ARG_IN));
    TRY(arg_init(&c->f_wei, &c->wei_md, Q(c->fwd_pd, dnnl_query_weights_md, 0), ARG_IN));
    if (s->has_bias && !s->transposed)
        TRY(arg_init(&c->f_bias, &c->bias_md, Q(c->fwd_pd, dnnl_query_weights_md, 1), ARG_IN));
    TRY(arg_init(&c->f_dst, &c->dst_md, Q(c->fwd_pd, dnnl_query_dst_md, 0), ARG_OUT));
    TRY(scratch_init(&c->f_scratch, c->fwd_pd));
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_success) return c;
    *status = st;
    prims_free(c);
    return NULL;
}

/* Backward primitives, built on first use (inference never needs them). */
static dnnl_status_t prims_backward(conv_prims *c, const conv_shape *s)
{
    dnnl_status_t st = dnnl_success;
    /* data: the input's gradient f32 from bf16 weights and output gradient; weights: their
     * gradient f32 from bf16 input and output gradient */
    dnnl_memory_desc_t src_in, src_out, wei_in, wei_out, dst_in;
    md_any(&src_in, s->src, s->bf16), md_any(&src_out, s->src, 0);
    md_any(&wei_in, s->wei, s->bf16), md_any(&wei_out, s->wei, 0);
    md_any(&dst_in, s->dst, s->bf16);
    const dnnl_memory_desc_t *bias = s->has_bias ? &c->bias_md : NULL;
    dnnl_convolution_desc_t dd, wd;
    dnnl_primitive_desc_t dpd = NULL, wpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    if (s->transposed) {
        TRY(dnnl_dilated_deconvolution_backward_data_desc_init(&dd, dnnl_deconvolution_direct,
            &src_out, &wei_in, &dst_in, s->strides, s->dilates, s->pad_l, s->pad_r));
        TRY(dnnl_dilated_deconvolution_backward_weights_desc_init(&wd, dnnl_deconvolution_direct,
            &src_in, &wei_out, bias, &dst_in, s->strides, s->dilates, s->pad_l, s->pad_r));
    } else {
        TRY(dnnl_dilated_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct,
            &src_out, &wei_in, &dst_in, s->strides, s->dilates, s->pad_l, s->pad_r));
        TRY(dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct,
            &src_in, &wei_out, bias, &dst_in, s->strides, s->dilates, s->pad_l, s->pad_r));
    }
    TRY(make_attr(&attr, 0));
    TRY(dnnl_primitive_desc_create(&dpd, &dd, attr, engine, c->fwd_pd));
    TRY(scratch_init(&c->d_scratch, dpd));
    TRY(dnnl_primitive_create(&c->bwd_data, dpd));
    TRY(arg_init(&c->d_ddst, &c->dst_md, Q(dpd, dnnl_query_diff_dst_md, 0), ARG_IN));
    TRY(arg_init(&c->d_wei, &c->wei_md, Q(dpd, dnnl_query_weights_md, 0), ARG_IN));
    TRY(arg_init(&c->d_dsrc, &c->src_md, Q(dpd, dnnl_query_diff_src_md, 0), ARG_OUT_ACC));
    TRY(dnnl_primitive_desc_create(&wpd, &wd, attr, engine, c->fwd_pd));
    TRY(scratch_init(&c->w_scratch, wpd));
    TRY(dnnl_primitive_create(&c->bwd_wei, wpd));
    TRY(arg_init(&c->w_src, &c->src_md, Q(wpd, dnnl_query_src_md, 0), ARG_IN));
    TRY(arg_init(&c->w_ddst, &c->dst_md, Q(wpd, dnnl_query_diff_dst_md, 0), ARG_IN));
    TRY(arg_init(&c->w_dwei, &c->wei_md, Q(wpd, dnnl_query_diff_weights_md, 0), ARG_OUT_ACC));
    if (s->has_bias) TRY(arg_init(&c->w_dbias, &c->bias_md, Q(wpd, dnnl_query_diff_weights_md, 1), ARG_OUT_ACC));
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    return st;
}

/* Gives a separate prim buffer its memory: for the step when a later call reuses it (the
 * forward's reordered inputs, a blocked copy), else for this call only. */
static dnnl_status_t bind_prim(nb_tape *tp, dnn_arg *a, int keep)
{
    if (a->prim == a->user) return dnnl_success;
    void *buf = keep ? nb_op_alloc(tp, a->bytes) : nb_op_scratch(tp, a->bytes);
    return buf ? dnnl_memory_set_data_handle(a->prim, buf) : dnnl_out_of_memory;
}

/* Runs a primitive: inputs reordered in (unless held already, or keep_in keeps them for the
 * step), outputs reordered out (added in, for an ACC output not written first) unless deferred,
 * then waits. */
static dnnl_status_t execute(nb_tape *tp, dnnl_primitive_t p, dnnl_memory_t scratch, int keep_in, int nin,
                             const exec_in *in, int nout, const exec_out *out)
{
    dnnl_exec_arg_t args[9];
    dnnl_status_t st = dnnl_success;
    int k = 0;
    if (scratch) { /* the primitive's working memory, for this step only */
        const dnnl_memory_desc_t *md;
        TRY(dnnl_memory_get_memory_desc(scratch, &md));
        void *buf = nb_op_scratch(tp, dnnl_memory_desc_get_size(md));
        if (!buf) return dnnl_out_of_memory;
        TRY(dnnl_memory_set_data_handle(scratch, buf));
        args[k++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratch};
    }
    for (int i = 0; i < nin; i++) {
        dnn_arg *a = in[i].arg;
        if (in[i].have && dnnl_memory_desc_equal(prim_md_of(in[i].have), prim_md_of(a))) {
            args[k++] = (dnnl_exec_arg_t){in[i].kind, in[i].have->prim};
            continue;
        }
        TRY(dnnl_memory_set_data_handle(a->user, (void *)in[i].data));
        if (in[i].blk && a->prim != a->user) {
            TRY(dnnl_memory_set_data_handle(a->prim, in[i].blk));
        } else {
            TRY(bind_prim(tp, a, keep_in));
            TRY(run_reorder(a, 0));
        }
        args[k++] = (dnnl_exec_arg_t){in[i].kind, a->prim};
    }
    for (int i = 0; i < nout; i++) {
        TRY(dnnl_memory_set_data_handle(out[i].arg->user, out[i].data));
        TRY(bind_prim(tp, out[i].arg, out[i].keep));
        args[k++] = (dnnl_exec_arg_t){out[i].kind, out[i].arg->prim};
    }
    TRY(dnnl_primitive_execute(p, stream, k, args));
    for (int i = 0; i < nout; i++)
        if (!out[i].defer) TRY(run_reorder(out[i].arg, out[i].first ? 2 : 1));
    st = dnnl_stream_wait(stream);
fail:
    return st;
}

static nb_status dnn_fail(nb_tape *tp, const nb_node *n, const char *what, dnnl_status_t st)
{
    return nb_tape_fail(tp, NB_ERR_BACKEND, "nb_%s: oneDNN %s failed (status %d)", n->op->name,
                    what, (int)st);
}

static conv_prims *prims_for(nb_tape *tp, nb_node *n)
{
    const dnnl_status_t es = nb__dnnl(&engine, &stream);
    if (es != dnnl_success) {
        dnn_fail(tp, n, "engine creation", es);
        return NULL;
    }
    conv_shape s = shape_of(n);
    conv_prims *c = nb_tape_cache_find(tp, &s, sizeof s);
    if (c) return c;
    dnnl_status_t st = dnnl_success;
    if (!(c = prims_create(&s, &st))) {
        dnn_fail(tp, n, "primitive creation", st);
        return NULL;
    }
    if (nb_tape_cache_add(tp, &s, sizeof s, c, prims_free)) return NULL;
    return c;
}

/* ---- the op -------------------------------------------------------------------------------- */

/* y += b per channel (b may be NULL), then ReLU as nb_relu's kernel has it (NaN passes), in
 * one pass over y: the f64 path's, and a transposed convolution's after its primitive */
static void bias_relu(nb_tensor *y, const nb_tensor *b, int relu)
{
    const int64_t N = y->shape[0], O = y->shape[1], HW = y->shape[2] * y->shape[3];
    const int f64 = y->dtype == NB_F64;
#pragma omp parallel for schedule(static) if (N * O * HW > (1 << 16))
    for (int64_t i = 0; i < N * O; i++) {
        if (f64) {
            double *row = (double *)y->data + i * HW;
            const double bias = b ? ((const double *)b->data)[i % O] : 0;
            if (b)
                for (int64_t j = 0; j < HW; j++) row[j] += bias;
            if (relu)
                for (int64_t j = 0; j < HW; j++) row[j] = row[j] < 0 ? 0 : row[j];
        } else {
            float *row = (float *)y->data + i * HW;
            const float bias = b ? ((const float *)b->data)[i % O] : 0;
            if (b)
                for (int64_t j = 0; j < HW; j++) row[j] += bias;
            if (relu)
                for (int64_t j = 0; j < HW; j++) row[j] = row[j] < 0 ? 0 : row[j];
        }
    }
}

/* bias_relu on a primitive's output y (dims) with its channels blocked by blk, before it is
 * copied out to NCHW; the padding channels stay 0. */
static void bias_relu_blocked(float *y, const dnnl_dims_t dims, int blk, const nb_tensor *b, int relu)
{
    const int64_t N = dims[0], O = dims[1], HW = dims[2] * dims[3], CB = (O + blk - 1) / blk;
    const float *bias = b ? b->data : NULL;
#pragma omp parallel for schedule(static) if (N * CB * HW * blk > (1 << 16))
    for (int64_t i = 0; i < N * CB; i++) {
        float bv[16] = {0}, *p = y + i * HW * blk;
        for (int c = 0; c < blk; c++) {
            const int64_t ch = i % CB * blk + c;
            bv[c] = bias && ch < O ? bias[ch] : 0;
        }
        for (int64_t j = 0; j < HW; j++, p += blk)
            for (int c = 0; c < blk; c++) {
                const float v = p[c] + bv[c];
                p[c] = relu && v < 0 ? 0 : v;
            }
    }
}

static nb_status fwd_conv(nb_tape *tp, nb_node *n)
{
    conv_aux *aux = n->saved;
    const nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    nb_tensor *y = n->out;
    const int transposed = n->op == &nb__op_conv_transpose2d;
    if (y->dtype == NB_F64) {
        nb_fill(y, 0.0);
        if (transposed)
            nb_conv_ref_bwd_data(&aux->g, x->data, w->data, y->data);
        else
            nb_conv_ref_fwd(&aux->g, x->data, w->data, y->data);
        if (b || aux->relu) bias_relu(y, b, aux->relu);
        return NB_OK;
    }
    if (!(aux->prims = prims_for(tp, n))) return nb_tape_status(tp);
    conv_prims *c = aux->prims;
    aux->seq = ++c->fwd_seq;
    const uint64_t gen = y->gen;
    const exec_in in[3] = {{DNNL_ARG_SRC, &c->f_src, x->data, NULL, blk_find(tp, gen, x->data, &c->f_src)},
                           {DNNL_ARG_WEIGHTS, &c->f_wei, w->data, NULL, NULL},
                           {DNNL_ARG_BIAS, &c->f_bias, b ? b->data : NULL, NULL, NULL}};
    /* oneDNN 2.6 adds a deconvolution's bias in a slow pass of its own and runs its ReLU post-op
     * 6x slower than the deconvolution: both run here (the conv VAE's forward at 1 thread: 16.4
     * -> 12.7 ms a step with the bias here, the same losses), on the primitive's output while it
     * is in cache and before its reorder when its layout allows */
    const int post = transposed && (b || aux->relu), blocked = c->f_dst.prim != c->f_dst.user;
    const int on_prim = post && c->f_dst.blk; /* else on y, after the copy out */
    const exec_out out = {DNNL_ARG_DST, &c->f_dst, y->data, blocked, 0, on_prim};
    dnnl_status_t st = execute(tp, c->fwd, c->f_scratch, 1, b && !transposed ? 3 : 2, in, 1, &out);
    if (!st && on_prim) {
        void *buf = NULL;
        if (!(st = dnnl_memory_get_data_handle(c->f_dst.prim, &buf))) {
            bias_relu_blocked(buf, prim_md_of(&c->f_dst)->dims, c->f_dst.blk, b, aux->relu);
            if (!(st = run_reorder(&c->f_dst, 1))) st = dnnl_stream_wait(stream);
        }
    }
    if (st) return dnn_fail(tp, n, "forward", st);
    if (post && !on_prim) bias_relu(y, b, aux->relu);
    if (blocked && (!post || on_prim)) blk_add(tp, gen, y->data, &c->f_dst); /* the copy is y's */
    return NB_OK;
}

static void bias_grad_f64(const nb_tensor *gy, nb_tensor *gb)
{
    nb_tensor v = *gb; /* (O) seen as (1, O, 1, 1) */
    v.ndim = 4;
    v.shape[0] = 1, v.shape[1] = gb->shape[0], v.shape[2] = v.shape[3] = 1;
    v.stride[0] = 0, v.stride[1] = 1, v.stride[2] = v.stride[3] = 0;
    nb_ew_reduce(NB_RED_SUM, &v, gy, 1);
}

static void bwd_f64(nb_tape *tp, nb_node *n, nb_tensor *gx, nb_tensor *gw, nb_tensor *gb)
{
    (void)tp;
    const conv_aux *aux = n->saved;
    const nb_tensor *x = n->in[0], *w = n->in[1], *gy = n->out->grad;
    if (n->op == &nb__op_conv_transpose2d) { /* the plain convolution runs from y back to x */
        if (gx) nb_conv_ref_fwd(&aux->g, gy->data, w->data, gx->data);
        if (gw) nb_conv_ref_bwd_weights(&aux->g, gy->data, x->data, gw->data);
    } else {
        if (gx) nb_conv_ref_bwd_data(&aux->g, gy->data, w->data, gx->data);
        if (gw) nb_conv_ref_bwd_weights(&aux->g, x->data, gy->data, gw->data);
    }
    if (gb) bias_grad_f64(gy, gb);
}

/* The backward primitives, made on the first backward: NULL with the error on the tape. */
static conv_prims *prims_bwd(nb_tape *tp, nb_node *n)
{
    const conv_aux *aux = n->saved;
    conv_prims *c = aux->prims;
    if (!c->bwd_tried) {
        c->bwd_tried = 1;
        conv_shape s = shape_of(n);
        const dnnl_status_t st = prims_backward(c, &s);
        if (st) {
            dnn_fail(tp, n, "backward primitive creation", st);
            return NULL;
        }
    }
    if (!c->bwd_data || !c->bwd_wei) {
        dnn_fail(tp, n, "backward primitive creation (earlier)", dnnl_runtime_error);
        return NULL;
    }
    return c;
}

/* Gradients are ARG_OUT_ACC arguments: written on their first use, else added in. gy_blk is
 * the output's gradient in the backward-data primitive's layout, or NULL. */
static void bwd_f32(nb_tape *tp, nb_node *n, void *gy_blk)
{
    const conv_aux *aux = n->saved;
    conv_prims *c = aux->prims;
    dnnl_status_t st;
    const nb_tensor *x = n->in[0], *w = n->in[1], *gy = n->out->grad;
    const uint64_t gen = n->out->gen;
    int fx = 0, fw = 0, fb = 0;
    nb_tensor *gx = nb_op_grad_fresh(tp, n, 0, &fx), *gw = nb_op_grad_fresh(tp, n, 1, &fw);
    nb_tensor *gb = n->nin > 2 ? nb_op_grad_fresh(tp, n, 2, &fb) : NULL;
    if (nb_tape_status(tp)) return;
    /* still in the forward's reordered buffers when no other forward used these primitives since */
    const int fresh = aux->seq == c->fwd_seq;
    if (gx) {
        const int keep = fx && one_reader(tp, x); /* then gx's blocked copy is all of gx */
        const exec_in in[2] = {{DNNL_ARG_DIFF_DST, &c->d_ddst, gy->data, NULL, gy_blk},
                               {DNNL_ARG_WEIGHTS, &c->d_wei, w->data, fresh ? &c->f_wei : NULL, NULL}};
        const exec_out out = {DNNL_ARG_DIFF_SRC, &c->d_dsrc, gx->data, keep, fx, 0};
        if ((st = execute(tp, c->bwd_data, c->d_scratch, 0, 2, in, 1, &out))) {
            dnn_fail(tp, n, "backward data", st);
            return;
        }
        if (keep) blk_add(tp, gen, gx->data, &c->d_dsrc);
    }
    if (gw || gb) { /* both are computed together; one the caller does not need goes to scratch */
        void *tw = gw ? gw->data : nb_op_scratch(tp, (size_t)nb_numel(w) * sizeof(float));
        void *tb = !c->has_bias ? NULL : gb ? gb->data : nb_op_scratch(tp, (size_t)nb_numel(n->in[2]) * sizeof(float));
        if (!tw || (c->has_bias && !tb)) return;
        const exec_in in[2] = {{DNNL_ARG_SRC, &c->w_src, x->data, fresh ? &c->f_src : NULL,
                                blk_find(tp, gen, x->data, &c->w_src)},
                               {DNNL_ARG_DIFF_DST, &c->w_ddst, gy->data, gx ? &c->d_ddst : NULL, gy_blk}};
        const exec_out out[2] = {{DNNL_ARG_DIFF_WEIGHTS, &c->w_dwei, tw, 0, !gw || fw, 0},
                                 {DNNL_ARG_DIFF_BIAS, &c->w_dbias, tb, 0, !gb || fb, 0}};
        st = execute(tp, c->bwd_wei, c->w_scratch, 0, 2, in, tb ? 2 : 1, out);
        if (st) dnn_fail(tp, n, "backward weights", st);
    }
}

static nb_status bwd_conv(nb_tape *tp, nb_node *n)
{
    const conv_aux *aux = n->saved;
    nb_tensor *gy = n->out->grad, masked;
    const int f32 = n->out->dtype == NB_F32;
    conv_prims *c = f32 ? prims_bwd(tp, n) : NULL;
    if (f32 && !c) return nb_tape_status(tp);
    /* the output's gradient in the primitives' layout, when the next convolution left it so
     * and both backward primitives read that layout (else they read gy, masked below) */
    void *gy_blk = f32 && dnnl_memory_desc_equal(prim_md_of(&c->d_ddst), prim_md_of(&c->w_ddst))
                       ? blk_find(tp, n->out->gen, gy->data, &c->d_ddst)
                       : NULL;
    if (aux->relu && gy_blk) { /* through the fused ReLU there, from the output's blocked copy */
        void *y_blk = blk_find(tp, n->out->gen, n->out->data, &c->d_ddst);
        nb_tensor g, y, m;
        const int64_t len = (int64_t)(c->d_ddst.bytes / sizeof(float));
        void *buf = y_blk ? nb_op_scratch(tp, c->d_ddst.bytes) : NULL;
        if (buf) {
            nb_tensor_wrap(&g, NB_F32, 1, &len, gy_blk);
            nb_tensor_wrap(&y, NB_F32, 1, &len, y_blk);
            nb_tensor_wrap(&m, NB_F32, 1, &len, buf);
            nb_ew(NB_EW_RELU_MASK, &m, &g, &y, NULL, 0, 0);
        }
        gy_blk = buf;
    }
    if (aux->relu && !gy_blk) { /* through the fused ReLU first: the gradient where the output is positive */
        void *buf = nb_op_scratch(tp, (size_t)nb_numel(gy) * nb_dtype_size(gy->dtype));
        if (!buf) return nb_tape_status(tp);
        nb_tensor_wrap(&masked, gy->dtype, gy->ndim, gy->shape, buf);
        nb_ew(NB_EW_RELU_MASK, &masked, gy, n->out, NULL, 0, 0);
        n->out->grad = &masked; /* for this call, which the scratch lives for */
    }
    if (f32) {
        bwd_f32(tp, n, gy_blk);
    } else {
        nb_tensor *gx = nb_op_grad(tp, n, 0), *gw = nb_op_grad(tp, n, 1);
        nb_tensor *gb = n->nin > 2 ? nb_op_grad(tp, n, 2) : NULL;
        bwd_f64(tp, n, gx, gw, gb);
    }
    n->out->grad = gy;
    return nb_tape_status(tp);
}

/* The output (N, O, H', W') was worked out by the constructor, which checked the geometry. */
static nb_status shape_conv(nb_tape *tp, const nb_node *n, int *nd, int64_t *shape)
{
    (void)tp;
    *nd = 4;
    for (int d = 0; d < 4; d++) shape[d] = n->i[d];
    return NB_OK;
}

const nb_op_def nb__op_conv2d = {.name = "conv2d", .shape = shape_conv, .forward = fwd_conv,
                                 .backward = bwd_conv};
const nb_op_def nb__op_conv_transpose2d = {.name = "conv_transpose2d", .shape = shape_conv,
                                           .forward = fwd_conv, .backward = bwd_conv};

static nb_tensor *conv_op(nb_tape *tp, const nb_op_def *op, nb_tensor *x, nb_tensor *w,
                          nb_tensor *b, nb_conv_cfg cfg, int relu)
{
    const char *name = op->name;
    const int transposed = op == &nb__op_conv_transpose2d;
    if (!nb_op_check(tp, name, b ? 3 : 2, (nb_tensor *[]){x, w, b})) return NULL;
    /* channels: x (N, C, H, W); Conv2d w (O, C, kh, kw); ConvTranspose2d w (C, O, kh, kw) */
    const int64_t C = x->ndim == 4 ? x->shape[1] : -1;
    const int64_t wc = w->ndim == 4 ? w->shape[transposed ? 0 : 1] : -2;
    const int64_t O = w->ndim == 4 ? w->shape[transposed ? 1 : 0] : -1;
    if (x->ndim != 4 || w->ndim != 4 || C != wc || (b && (b->ndim != 1 || b->shape[0] != O))) {
        nb_tape_fail(tp, NB_ERR_SHAPE, "nb_%s: input %s, weight %s, bias %s: want (N, C, H, W), %s, (%s)",
                 name, NB_SHP(x), NB_SHP(w), b ? NB_SHP(b) : "none",
                 transposed ? "(C, O, kh, kw)" : "(O, C, kh, kw)", "O");
        return NULL;
    }
    int64_t out[2];
    for (int d = 0; d < 2; d++) {
        const int k = (int)w->shape[2 + d];
        out[d] = transposed
                     ? nb_conv_transpose_out_size(x->shape[2 + d], k, cfg.stride[d], cfg.pad[d],
                                                  cfg.out_pad[d], cfg.dilation[d])
                     : (cfg.out_pad[d] ? -1
                                       : nb_conv_out_size(x->shape[2 + d], k, cfg.stride[d],
                                                          cfg.pad[d], cfg.dilation[d]));
        if (out[d] < 1) {
            nb_tape_fail(tp, NB_ERR_SHAPE, "nb_%s: input %s, kernel %lldx%lld, stride %d, padding %d, "
                     "output padding %d, dilation %d give no valid output along dim %d", name,
                     NB_SHP(x), (long long)w->shape[2], (long long)w->shape[3], cfg.stride[d],
                     cfg.pad[d], cfg.out_pad[d], cfg.dilation[d], 2 + d);
            return NULL;
        }
    }
    if (!(x = nb_contiguous(tp, x)) || !(w = nb_contiguous(tp, w))) return NULL;
    conv_aux *aux = nb_op_alloc(tp, sizeof *aux);
    if (!aux) return NULL;
    const int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
    /* g describes a plain convolution; a transposed one is the convolution from its output
     * (O channels, out size) back to its input (C channels, H x W) */
    aux->cfg = cfg;
    aux->prims = NULL;
    aux->bf16 = x->dtype == NB_F32 && nb_tape_precision(tp) == NB_PREC_BF16;
    aux->relu = relu;
    aux->g = transposed
                 ? (nb_conv_geom){N, O, out[0], out[1], C, w->shape[2], w->shape[3], H, W,
                                  cfg.stride[0], cfg.stride[1], cfg.pad[0], cfg.pad[1],
                                  cfg.dilation[0], cfg.dilation[1]}
                 : (nb_conv_geom){N, C, H, W, O, w->shape[2], w->shape[3], out[0], out[1],
                                  cfg.stride[0], cfg.stride[1], cfg.pad[0], cfg.pad[1],
                                  cfg.dilation[0], cfg.dilation[1]};
    nb_node n = {.nin = b ? 3 : 2, .in = {x, w, b}, .i = {N, O, out[0], out[1]}, .saved = aux};
    return nb_op_apply(tp, op, &n);
}

nb_tensor *nb_conv2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c)
{
    return conv_op(tp, &nb__op_conv2d, x, w, b, c, 0);
}

nb_tensor *nb_conv_transpose2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                               nb_conv_cfg c)
{
    return conv_op(tp, &nb__op_conv_transpose2d, x, w, b, c, 0);
}

/* ---- layers -------------------------------------------------------------------------------- */

static nb_status conv_layer_init(nb_conv_layer *l, nb_params *ps, const char *name, int in_ch,
                                 int out_ch, int k, nb_conv_cfg cfg, int bias, nb_rng *rng,
                                 int transposed)
{
    memset(l, 0, sizeof *l);
    l->cfg = cfg;
    l->transposed = transposed;
    if (!ps || !name) return nb_error(NB_ERR_ARG, "conv layer: the store or the name is NULL");
    if (in_ch < 1 || out_ch < 1 || k < 1 || in_ch > 65536 || out_ch > 65536 || k > 1024)
        return nb_error(NB_ERR_ARG, "conv layer %s: %d -> %d channels, kernel %d (channels 1 to "
                        "65536, kernel 1 to 1024)", name, in_ch, out_ch, k);
    char full[300];
    snprintf(full, sizeof full, "%s.weight", name);
    l->weight = nb_param(ps, full, NB_SHAPE(transposed ? in_ch : out_ch,
                                            transposed ? out_ch : in_ch, k, k));
    if (bias) {
        snprintf(full, sizeof full, "%s.bias", name);
        l->bias = nb_param(ps, full, NB_SHAPE(out_ch));
    }
    if (!l->weight || (bias && !l->bias)) return NB_ERR_ARG;
    /* PyTorch's defaults; fan_in is dim 1 times the kernel, which for a transposed convolution
     * is its output channels */
    nb_init_kaiming_uniform(l->weight, rng, sqrt(5.0));
    if (l->bias) {
        int64_t fan_in, fan_out;
        nb_fan(l->weight, &fan_in, &fan_out);
        nb_init_uniform(l->bias, rng, -1 / sqrt((double)fan_in), 1 / sqrt((double)fan_in));
    }
    return NB_OK;
}

nb_status nb_conv2d_init(nb_conv_layer *l, nb_params *ps, const char *name, int in_ch,
                         int out_ch, int k, nb_conv_cfg cfg, int bias, nb_rng *rng)
{
    return conv_layer_init(l, ps, name, in_ch, out_ch, k, cfg, bias, rng, 0);
}

nb_status nb_conv_transpose2d_init(nb_conv_layer *l, nb_params *ps, const char *name, int in_ch,
                                   int out_ch, int k, nb_conv_cfg cfg, int bias, nb_rng *rng)
{
    return conv_layer_init(l, ps, name, in_ch, out_ch, k, cfg, bias, rng, 1);
}

nb_tensor *nb_conv2d_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c)
{
    return conv_op(tp, &nb__op_conv2d, x, w, b, c, 1);
}

nb_tensor *nb_conv_transpose2d_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c)
{
    return conv_op(tp, &nb__op_conv_transpose2d, x, w, b, c, 1);
}

nb_tensor *nb_conv_relu_fwd(nb_tape *tp, const nb_conv_layer *l, nb_tensor *x)
{
    if (!l) {
        nb_tape_fail(tp, NB_ERR_ARG, "nb_conv_relu_fwd: the layer is NULL");
        return NULL;
    }
    return l->transposed ? nb_conv_transpose2d_relu(tp, x, l->weight, l->bias, l->cfg)
                         : nb_conv2d_relu(tp, x, l->weight, l->bias, l->cfg);
}

nb_tensor *nb_conv_fwd(nb_tape *tp, const nb_conv_layer *l, nb_tensor *x)
{
    return l->transposed ? nb_conv_transpose2d(tp, x, l->weight, l->bias, l->cfg)
                         : nb_conv2d(tp, x, l->weight, l->bias, l->cfg);
}
