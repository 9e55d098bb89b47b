/* tensor/tensor.c — shape and stride bookkeeping, element access, thread count. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tensor/error.h"
#include "nabla/tensor.h"

static _Thread_local char last_error[512];

const char *nb_last_error(void) { return last_error; }

/* Formatted into a copy first: callers may pass nb_last_error() itself as an argument, to
 * wrap the message of the call that failed beneath them. */
nb_status nb_error(nb_status st, const char *fmt, ...)
{
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    return st;
}

const char *nb_status_str(nb_status st)
{
    switch (st) {
    case NB_OK: return "ok";
    case NB_ERR_ARG: return "invalid argument";
    case NB_ERR_SHAPE: return "shape mismatch";
    case NB_ERR_DTYPE: return "dtype mismatch";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_IO: return "I/O error";
    case NB_ERR_FORMAT: return "bad file format";
    case NB_ERR_NAN: return "non-finite value";
    case NB_ERR_BACKEND: return "oneDNN error";
    case NB_ERR_STATE: return "call out of order";
    }
    return "unknown status";
}

const char *nb_dtype_name(nb_dtype dt) { return dt == NB_F64 ? "f64" : "f32"; }

void nb_tensor_wrap(nb_tensor *t, nb_dtype dt, int ndim, const int64_t *shape, void *data)
{
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    t->data = data;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->stride[i] = s;
        s *= shape[i];
    }
}

int nb_is_contiguous(const nb_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

int nb_same_shape(const nb_tensor *a, const nb_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

char *nb_shape_str(const nb_tensor *t, char *buf, size_t size)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, size - k, "(");
    for (int i = 0; i < t->ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (k < size) snprintf(buf + k, size - k, ")");
    return buf;
}

static int64_t offset_of(const nb_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}

double nb_get(const nb_tensor *t, int64_t i)
{
    int64_t off = offset_of(t, i);
    return t->dtype == NB_F64 ? ((const double *)t->data)[off] : ((const float *)t->data)[off];
}

void nb_set(nb_tensor *t, int64_t i, double v)
{
    int64_t off = offset_of(t, i);
    if (t->dtype == NB_F64)
        ((double *)t->data)[off] = v;
    else
        ((float *)t->data)[off] = (float)v;
}

nb_status nb_copy_out(const nb_tensor *t, void *dst, int64_t cap)
{
    if (!t || (!dst && cap)) return nb_error(NB_ERR_ARG, "nb_copy_out: NULL argument");
    const int64_t n = nb_numel(t);
    if (cap < n)
        return nb_error(NB_ERR_ARG, "nb_copy_out: room for %lld values, the tensor has %lld", (long long)cap, (long long)n);
    size_t es = nb_dtype_size(t->dtype);
    if (nb_is_contiguous(t)) {
        if (n) memcpy(dst, t->data, (size_t)n * es);
        return NB_OK;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst + i * es, (const char *)t->data + offset_of(t, i) * es, es);
    return NB_OK;
}

int nb_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int64_t out[NB_MAX_DIMS])
{
    int n = na > nb ? na : nb;
    if (n > NB_MAX_DIMS) return -1;
    for (int i = 0; i < n; i++) {
        /* align from the right */
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) return -1;
        out[i] = da == 1 ? db : da;
    }
    return n;
}

void nb_set_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

int nb_get_threads(void) { return omp_get_max_threads(); }
