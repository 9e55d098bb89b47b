/* autograd/params.c — the parameter store: named tensors over flat data and gradient blocks.
 *
 * Parameters are registered one at a time, but stored in one flat block (and their gradients in
 * a parallel one) so that an optimizer is a single loop and saving is one write. Each parameter
 * starts on a 64-byte boundary. When a block must grow it is reallocated and every tensor's
 * pointers are moved with it; the tensor structs themselves never move.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/autograd.h"
#include "tensor/error.h"

enum { ALIGN_BYTES = 64, NAME_MAX_LEN = 255 };

struct nb_params {
    nb_dtype dtype;
    int count, cap;
    nb_tensor **t;      /* each with t->grad: both structs are owned here */
    int64_t *offset;    /* element offset of each tensor in the blocks */
    void *data, *grad;  /* flat blocks of capacity values */
    int64_t used, capacity;
};

nb_params *nb_params_new(nb_dtype dt)
{
    if (dt != NB_F32 && dt != NB_F64) {
        nb_error(NB_ERR_DTYPE, "nb_params_new: unknown dtype %d", (int)dt);
        return NULL;
    }
    nb_params *ps = calloc(1, sizeof *ps);
    if (!ps) nb_error(NB_ERR_NOMEM, "nb_params_new: out of memory");
    else ps->dtype = dt;
    return ps;
}

void nb_params_free(nb_params *ps)
{
    if (!ps) return;
    for (int i = 0; i < ps->count; i++) {
        free((char *)ps->t[i]->name);
        free(ps->t[i]->grad);
        free(ps->t[i]);
    }
    free(ps->t);
    free(ps->offset);
    free(ps->data);
    free(ps->grad);
    free(ps);
}

nb_dtype nb_params_dtype(const nb_params *ps) { return ps ? ps->dtype : NB_F32; }
int nb_params_count(const nb_params *ps) { return ps ? ps->count : 0; }
nb_tensor *nb_params_at(nb_params *ps, int i) { return ps && i >= 0 && i < ps->count ? ps->t[i] : NULL; }

nb_tensor *nb_params_find(nb_params *ps, const char *name)
{
    for (int i = 0; ps && name && i < ps->count; i++)
        if (!strcmp(ps->t[i]->name, name)) return ps->t[i];
    return NULL;
}

int64_t nb_params_numel(const nb_params *ps)
{
    int64_t n = 0;
    for (int i = 0; ps && i < ps->count; i++) n += nb_numel(ps->t[i]);
    return n;
}

void nb_params_zero_grad(nb_params *ps)
{
    if (ps && ps->grad) memset(ps->grad, 0, (size_t)ps->used * nb_dtype_size(ps->dtype));
    for (int i = 0; ps && i < ps->count; i++) ps->t[i]->flags &= ~NB_GRAD_CLEARED;
}

void nb_params_clear_grad(nb_params *ps)
{
    for (int i = 0; ps && i < ps->count; i++) ps->t[i]->flags |= NB_GRAD_CLEARED;
}

void nb_params_flat(nb_params *ps, void **data, void **grad, int64_t *n)
{
    if (!ps) {
        if (data) *data = NULL;
        if (grad) *grad = NULL;
        if (n) *n = 0;
        return;
    }
    if (data) *data = ps->data;
    if (grad) { /* what no backward wrote since nb_params_clear_grad is zero */
        for (int i = 0; i < ps->count; i++)
            if (ps->t[i]->flags & NB_GRAD_CLEARED) {
                memset(ps->t[i]->grad->data, 0, (size_t)nb_numel(ps->t[i]) * nb_dtype_size(ps->dtype));
                ps->t[i]->flags &= ~NB_GRAD_CLEARED;
            }
        *grad = ps->grad;
    }
    if (n) *n = ps->used;
}

static void *zalloc(size_t bytes)
{
    void *p = aligned_alloc(ALIGN_BYTES, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static int grow_blocks(nb_params *ps, int64_t need)
{
    int64_t cap = ps->capacity ? 2 * ps->capacity : 1 << 16;
    while (cap < need) cap *= 2;
    const size_t es = nb_dtype_size(ps->dtype), bytes = (size_t)cap * es;
    void *data = zalloc(bytes), *grad = zalloc(bytes);
    if (!data || !grad) {
        free(data);
        free(grad);
        return 0;
    }
    if (ps->used) {
        memcpy(data, ps->data, (size_t)ps->used * es);
        memcpy(grad, ps->grad, (size_t)ps->used * es);
    }
    free(ps->data);
    free(ps->grad);
    ps->data = data;
    ps->grad = grad;
    ps->capacity = cap;
    for (int i = 0; i < ps->count; i++) {
        ps->t[i]->data = (char *)data + ps->offset[i] * (int64_t)es;
        ps->t[i]->grad->data = (char *)grad + ps->offset[i] * (int64_t)es;
    }
    return 1;
}

nb_tensor *nb_param(nb_params *ps, const char *name, int ndim, const int64_t *shape)
{
    if (!ps) {
        nb_error(NB_ERR_ARG, "nb_param: the store is NULL");
        return NULL;
    }
    if (!name || !*name || strlen(name) > NAME_MAX_LEN) {
        nb_error(NB_ERR_ARG, "nb_param: name must have 1 to %d characters", NAME_MAX_LEN);
        return NULL;
    }
    if (nb_params_find(ps, name)) {
        nb_error(NB_ERR_ARG, "nb_param: '%s' is already registered", name);
        return NULL;
    }
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim && !shape)) {
        nb_error(NB_ERR_ARG, "nb_param: '%s' has %d dims (0 to %d, with a shape)", name, ndim,
                 NB_MAX_DIMS);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            nb_error(NB_ERR_ARG, "nb_param: '%s' has a negative size", name);
            return NULL;
        }
        if (shape[i] && n > ((int64_t)1 << 40) / shape[i]) { /* a trillion values: a typo */
            nb_error(NB_ERR_ARG, "nb_param: '%s' would hold more than 2^40 values", name);
            return NULL;
        }
        n *= shape[i];
    }
    const int64_t per_align = ALIGN_BYTES / (int64_t)nb_dtype_size(ps->dtype);
    const int64_t padded = (n + per_align - 1) / per_align * per_align;

    if (ps->count == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        nb_tensor **t = realloc(ps->t, (size_t)cap * sizeof *t);
        if (t) ps->t = t;
        int64_t *off = realloc(ps->offset, (size_t)cap * sizeof *off);
        if (off) ps->offset = off;
        if (!t || !off) goto nomem;
        ps->cap = cap;
    }
    if (ps->used + padded > ps->capacity && !grow_blocks(ps, ps->used + padded)) goto nomem;

    nb_tensor *t = calloc(1, sizeof *t), *g = calloc(1, sizeof *g);
    char *nm = strdup(name);
    if (!t || !g || !nm) {
        free(t);
        free(g);
        free(nm);
        goto nomem;
    }
    const size_t es = nb_dtype_size(ps->dtype);
    nb_tensor_wrap(t, ps->dtype, ndim, shape, (char *)ps->data + ps->used * (int64_t)es);
    nb_tensor_wrap(g, ps->dtype, ndim, shape, (char *)ps->grad + ps->used * (int64_t)es);
    t->grad = g;
    t->flags = NB_REQUIRES_GRAD | NB_PARAM;
    t->name = nm;
    ps->t[ps->count] = t;
    ps->offset[ps->count] = ps->used;
    ps->count++;
    ps->used += padded;
    return t;
nomem:
    nb_error(NB_ERR_NOMEM, "nb_param: out of memory registering '%s'", name);
    return NULL;
}
