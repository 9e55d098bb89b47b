/* nn/data.c — MNIST-style IDX files, datasets of byte images, their conversion to tensors, and
 * seeded minibatches.
 *
 * IDX (LeCun's MNIST format): a big-endian magic 0x0000TTDD (TT the element type, DD the number
 * of dims), DD big-endian u32 sizes, then the elements in row-major order. Only TT = 0x08
 * (unsigned byte) occurs in the MNIST family, so only that is supported. Files are read through
 * zlib, which reads uncompressed files transparently, so one path handles .gz and raw files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nabla/nn.h"
#include "tensor/error.h"

/* Every size is checked against this before anything is allocated; it also keeps each dim
 * within an int (channels, rows, cols). */
static const uint64_t IDX_MAX_BYTES = INT32_MAX;

/* Converting fewer elements than this stays out of OpenMP (as tensor/ew.c). A training batch
 * (128 x 784) is above it: each thread converts the rows its share of the first Linear reads. */
enum { PAR_MIN = 1 << 15 };

/* ---- IDX files ------------------------------------------------------------------------------ */

static const char *idx_type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

/* zlib's message already starts with the path; drop it, as ours does too. */
static const char *gz_message(gzFile f, const char *path, int *err)
{
    const char *m = gzerror(f, err);
    size_t n = strlen(path);
    return strncmp(m, path, n) == 0 && strncmp(m + n, ": ", 2) == 0 ? m + n + 2 : m;
}

static nb_status gz_fail(gzFile f, const char *path)
{
    int err;
    const char *m = gz_message(f, path, &err);
    return nb_error(err == Z_ERRNO ? NB_ERR_IO : NB_ERR_FORMAT, "%s: %s: %s", path,
                    err == Z_ERRNO ? "read error" : "gzip", m);
}

/* Reads until n bytes or the end of the file; -1 on an error (left in f's state). */
static int64_t read_full(gzFile f, uint8_t *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        const int64_t want = n - got < (1 << 30) ? n - got : (1 << 30);
        const int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* What a short read leaves behind, for the message: a truncated .gz says so. */
static const char *gz_note(gzFile f, const char *path)
{
    int err;
    const char *m = gz_message(f, path, &err);
    return err == Z_OK ? "" : m;
}

static nb_status idx_body(gzFile f, const char *path, int nd, int64_t dims[3], uint8_t **data)
{
    uint8_t head[4 + 4 * 3];
    int64_t got = read_full(f, head, 4);
    if (got < 0) return gz_fail(f, path);
    if (got < 4)
        return nb_error(NB_ERR_FORMAT, "%s: truncated header: %d bytes expected, %" PRId64 " read",
                        path, 4 + 4 * nd, got);
    const uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
                           (uint32_t)head[2] << 8 | head[3];
    /* the type is only named when the rest of the magic looks like IDX */
    if (head[0] == 0 && head[1] == 0 && head[2] != 0x08 && head[3] == nd)
        return nb_error(NB_ERR_FORMAT,
                        "%s: unsupported data type 0x%02x (%s); only 0x08 (unsigned byte) is "
                        "supported", path, head[2], idx_type_name(head[2]));
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != nd)
        return nb_error(NB_ERR_FORMAT, "%s: bad magic 0x%08" PRIx32 " (expected 0x%08x for %d dims)",
                        path, magic, 0x800u | (unsigned)nd, nd);

    got = read_full(f, head + 4, 4 * nd);
    if (got < 0) return gz_fail(f, path);
    if (got < 4 * nd)
        return nb_error(NB_ERR_FORMAT, "%s: truncated header: %d bytes expected, %" PRId64 " read",
                        path, 4 + 4 * nd, 4 + got);

    char shape[64] = "";
    uint64_t total = 1;
    int zero = 0, large = 0;
    for (int i = 0; i < nd; i++) {
        const uint8_t *p = head + 4 + 4 * i;
        const uint64_t d = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        dims[i] = (int64_t)d;
        size_t len = strlen(shape);
        snprintf(shape + len, sizeof shape - len, "%s%" PRIu64, i ? " x " : "", d);
        zero |= d == 0;
        /* total stays <= IDX_MAX_BYTES, so the product cannot overflow */
        if (!large && d > 0 && total > IDX_MAX_BYTES / d) large = 1;
        if (!large) total *= d;
    }
    if (zero) return nb_error(NB_ERR_FORMAT, "%s: declared size %s is empty", path, shape);
    if (large)
        return nb_error(NB_ERR_FORMAT, "%s: declared size %s is too large (limit %" PRIu64 " bytes)",
                        path, shape, IDX_MAX_BYTES);

    uint8_t *buf = malloc(total);
    if (!buf) return nb_error(NB_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes", path, total);
    *data = buf; /* the caller frees it on failure */
    got = read_full(f, buf, (int64_t)total);
    if (got < 0) return gz_fail(f, path);
    if ((uint64_t)got < total) {
        const char *note = gz_note(f, path);
        return nb_error(NB_ERR_FORMAT, "%s: truncated: %" PRIu64 " data bytes declared, %" PRId64
                        " read%s%s%s", path, total, got, *note ? " (gzip: " : "", note,
                        *note ? ")" : "");
    }

    /* Trailing bytes mean the header lies about the size: count them for the message. */
    uint8_t rest[4096];
    int64_t extra = 0;
    while ((got = read_full(f, rest, sizeof rest)) > 0) extra += got;
    if (got < 0) return gz_fail(f, path);
    if (extra) return nb_error(NB_ERR_FORMAT, "%s: %" PRId64 " bytes after the declared data", path, extra);
    /* A .gz cut inside its trailer still yields all the data; the CRC was never checked. */
    if (*gz_note(f, path)) return gz_fail(f, path);
    return NB_OK;
}

nb_status nb_idx_read(const char *path, int expect_ndim, int64_t dims[3], uint8_t **data)
{
    *data = NULL;
    for (int i = 0; i < 3; i++) dims[i] = 1;
    if (expect_ndim < 1 || expect_ndim > 3)
        return nb_error(NB_ERR_ARG, "%s: nb_idx_read: %d dims asked for, 1 to 3 supported", path,
                        expect_ndim);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return nb_error(NB_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    uint8_t *buf = NULL;
    nb_status st = idx_body(f, path, expect_ndim, dims, &buf);
    gzclose(f);
    if (st) {
        free(buf);
        for (int i = 0; i < 3; i++) dims[i] = 0;
        return st;
    }
    *data = buf;
    return NB_OK;
}

/* ---- datasets ------------------------------------------------------------------------------- */

/* Fills path with the name that exists, .gz first. Returns 0 when neither does (path holds the
 * .gz name, errno the reason), -1 when the name does not fit. */
static int find_file(char *path, size_t size, const char *dir, const char *split, const char *kind)
{
    int n = snprintf(path, size, "%s/%s-%s.gz", dir, split, kind);
    if (n < 0 || (size_t)n >= size) return -1;
    if (access(path, F_OK) == 0) return 1;
    const int err = errno;
    path[n - 3] = '\0';
    if (access(path, F_OK) == 0) return 1;
    path[n - 3] = '.';
    errno = err;
    return 0;
}

nb_status nb_dataset_load(nb_dataset *ds, const char *dir, const char *split)
{
    *ds = (nb_dataset){0};
    char ipath[4096], lpath[4096];
    int found = find_file(ipath, sizeof ipath, dir, split, "images-idx3-ubyte");
    if (found < 0) return nb_error(NB_ERR_ARG, "%s/%s: path too long", dir, split);
    if (!found)
        return nb_error(NB_ERR_IO, "%s: cannot open: %s (nor without .gz)", ipath, strerror(errno));

    int64_t idims[3], ldims[3];
    uint8_t *images, *labels = NULL;
    nb_status st = nb_idx_read(ipath, 3, idims, &images);
    if (st) return st;

    found = find_file(lpath, sizeof lpath, dir, split, "labels-idx1-ubyte");
    if (found < 0) st = nb_error(NB_ERR_ARG, "%s/%s: path too long", dir, split);
    if (found > 0) st = nb_idx_read(lpath, 1, ldims, &labels);
    if (!st && labels && ldims[0] != idims[0])
        st = nb_error(NB_ERR_FORMAT, "%s: %" PRId64 " images but %" PRId64 " labels", lpath,
                      idims[0], ldims[0]);
    if (st) {
        free(images);
        free(labels);
        return st;
    }

    *ds = (nb_dataset){.n = idims[0], .channels = 1, .rows = (int)idims[1], .cols = (int)idims[2],
                       .images = images, .labels = labels, .owned = 1};
    for (int64_t i = 0; labels && i < ds->n; i++)
        if (labels[i] >= ds->nclasses) ds->nclasses = labels[i] + 1;
    return NB_OK;
}

void nb_dataset_free(nb_dataset *ds)
{
    if (ds->owned) {
        free(ds->images);
        free(ds->labels);
    }
    *ds = (nb_dataset){0};
}

static int64_t example_bytes(const nb_dataset *ds)
{
    return (int64_t)ds->channels * ds->rows * ds->cols;
}

/* Out-of-range requests are clamped to the examples that exist. */
nb_dataset nb_dataset_view(const nb_dataset *src, int64_t start, int64_t n)
{
    if (start < 0) start = 0;
    if (start > src->n) start = src->n;
    if (n < 0) n = 0;
    if (n > src->n - start) n = src->n - start;
    nb_dataset v = *src;
    v.n = n;
    v.images = src->images ? src->images + start * example_bytes(src) : NULL;
    v.labels = src->labels ? src->labels + start : NULL;
    v.owned = 0;
    return v;
}

void nb_dataset_shuffle(nb_dataset *ds, nb_rng *rng)
{
    const int64_t d = example_bytes(ds);
    for (int64_t i = ds->n - 1; i > 0; i--) {
        const int64_t j = (int64_t)nb_rng_below(rng, (uint64_t)i + 1);
        if (j == i) continue;
        uint8_t *a = ds->images + i * d, *b = ds->images + j * d;
        for (int64_t k = 0; k < d; k++) {
            uint8_t t = a[k];
            a[k] = b[k];
            b[k] = t;
        }
        if (ds->labels) {
            uint8_t t = ds->labels[i];
            ds->labels[i] = ds->labels[j];
            ds->labels[j] = t;
        }
    }
}

/* ---- conversion to tensors ------------------------------------------------------------------ */

/* Whether x is a contiguous f32/f64 tensor of count rows holding `per` values each. A mismatch,
 * like an index out of range, is the caller's bug: the conversions then write nothing and only
 * set nb_last_error(), since they return no status. */
static int fits(const nb_tensor *x, int64_t count, int64_t per, const char *fn)
{
    if (x->ndim >= 1 && x->shape[0] == count && nb_numel(x) == count * per && nb_is_contiguous(x) &&
        (x->dtype == NB_F32 || x->dtype == NB_F64))
        return 1;
    char s[64];
    nb_error(NB_ERR_SHAPE, "%s: %s tensor %s does not hold %" PRId64 " x %" PRId64 " values",
             fn, nb_dtype_name(x->dtype), nb_shape_str(x, s, sizeof s), count, per);
    return 0;
}

static int indices_ok(const nb_dataset *ds, const int64_t *idx, int64_t count, const char *fn)
{
    for (int64_t e = 0; e < count; e++)
        if (idx[e] < 0 || idx[e] >= ds->n) {
            nb_error(NB_ERR_ARG, "%s: index %" PRId64 " outside [0, %" PRId64 ")", fn, idx[e], ds->n);
            return 0;
        }
    return 1;
}

typedef struct convert_job {
    const nb_dataset *ds;
    const int64_t *idx;
    nb_tensor *x;
    const double *lut; /* pixel byte -> value, or -> probability for NB_BIN_DYNAMIC */
    int dynamic;       /* x already holds one uniform per element */
    int unit;          /* the byte / 255, no binarisation */
} convert_job;

/* The examples of a shuffled batch are far apart in the data set, so each row's bytes come from
 * memory: the next rows are fetched while this one converts (the conversion's share of a
 * 1-thread MLP VAE run: 1.9% -> 1.4% of perf samples). */
enum { PREFETCH_ROWS = 2 };

/* byte / 255 in float division equals the table's double v / 255.0 rounded to float for all 256
 * bytes, and vectorises where the table lookup did not (the conversion was 1.6% of a 1-thread
 * MLP VAE run). The division's vectors stay 256-bit wide (tensor/kern_tmpl.c says why). */
__attribute__((target_clones("avx2", "default")))
static void bytes_to_unit(const uint8_t *restrict src, float *restrict y, int64_t n)
{
    for (int64_t p = 0; p < n; p++) y[p] = (float)src[p] / 255.0f;
}

static void convert_row(const convert_job *j, int64_t e, int64_t count)
{
    const int64_t d = example_bytes(j->ds);
    const uint8_t *src = j->ds->images + j->idx[e] * d;
    for (int64_t f = e + 1; f <= e + PREFETCH_ROWS && f < count; f++)
        for (int64_t p = 0; p < d; p += 64) __builtin_prefetch(j->ds->images + j->idx[f] * d + p);
    if (j->x->dtype == NB_F64) {
        double *y = (double *)j->x->data + e * d;
        for (int64_t p = 0; p < d; p++) y[p] = j->dynamic ? y[p] < j->lut[src[p]] : j->lut[src[p]];
    } else if (j->unit) {
        bytes_to_unit(src, (float *)j->x->data + e * d, d);
    } else {
        float *y = (float *)j->x->data + e * d;
        for (int64_t p = 0; p < d; p++)
            y[p] = j->dynamic ? (float)(y[p] < j->lut[src[p]]) : (float)j->lut[src[p]];
    }
}

nb_status nb_dataset_images(const nb_dataset *ds, const int64_t *idx, int64_t count, nb_tensor *x,
                            nb_binarize bin, nb_rng *rng)
{
    if (!ds || !x || (count > 0 && !idx))
        return nb_error(NB_ERR_ARG, "nb_dataset_images: the data set, indices or tensor is NULL");
    if (count < 0) return nb_error(NB_ERR_ARG, "nb_dataset_images: count %" PRId64 " < 0", count);
    const int64_t d = example_bytes(ds);
    if (!fits(x, count, d, "nb_dataset_images")) return NB_ERR_SHAPE;
    if (!indices_ok(ds, idx, count, "nb_dataset_images")) return NB_ERR_ARG;
    if (bin != NB_BIN_NONE && bin != NB_BIN_THRESHOLD && bin != NB_BIN_DYNAMIC)
        return nb_error(NB_ERR_ARG, "nb_dataset_images: unknown binarisation %d", (int)bin);
    if (bin == NB_BIN_DYNAMIC && !rng)
        return nb_error(NB_ERR_ARG, "nb_dataset_images: NB_BIN_DYNAMIC needs an rng");
    if (count == 0) return NB_OK;

    double lut[256];
    for (int v = 0; v < 256; v++) lut[v] = bin == NB_BIN_THRESHOLD ? (v > 127) : v / 255.0;
    convert_job j = {.ds = ds, .idx = idx, .x = x, .lut = lut, .dynamic = bin == NB_BIN_DYNAMIC,
                     .unit = bin == NB_BIN_NONE};
    /* x doubles as the scratch for the uniforms: u < p is Bernoulli(p). nb_rng_uniform's stream
     * does not depend on the thread count, so neither do the pixels. */
    if (j.dynamic) nb_rng_uniform(rng, x, 0, 1);
    if (count * d >= PAR_MIN) {
#pragma omp parallel for schedule(static)
        for (int64_t e = 0; e < count; e++) convert_row(&j, e, count);
    } else {
        for (int64_t e = 0; e < count; e++) convert_row(&j, e, count);
    }
    return NB_OK;
}

nb_status nb_dataset_onehot(const nb_dataset *ds, const int64_t *idx, int64_t count, nb_tensor *y)
{
    if (!ds || !y || (count > 0 && !idx))
        return nb_error(NB_ERR_ARG, "nb_dataset_onehot: the data set, indices or tensor is NULL");
    if (!ds->labels) return nb_error(NB_ERR_ARG, "nb_dataset_onehot: the data set has no labels");
    if (count < 0) return nb_error(NB_ERR_ARG, "nb_dataset_onehot: count %" PRId64 " < 0", count);
    /* the width is the tensor's: a model's class count, which may exceed the data's */
    const int64_t k = y->ndim == 2 ? y->shape[1] : -1;
    if (k < 1) return nb_error(NB_ERR_SHAPE, "nb_dataset_onehot: y must be (count, classes)");
    if (!fits(y, count, k, "nb_dataset_onehot")) return NB_ERR_SHAPE;
    if (!indices_ok(ds, idx, count, "nb_dataset_onehot")) return NB_ERR_ARG;
    for (int64_t e = 0; e < count; e++)
        if (ds->labels[idx[e]] >= k)
            return nb_error(NB_ERR_ARG, "nb_dataset_onehot: example %" PRId64 " has label %d; the "
                            "one-hot width is %" PRId64 " classes", idx[e], ds->labels[idx[e]], k);
    for (int64_t e = 0; e < count; e++) {
        const int64_t c = ds->labels[idx[e]];
        for (int64_t i = 0; i < k; i++) {
            if (y->dtype == NB_F64)
                ((double *)y->data)[e * k + i] = i == c;
            else
                ((float *)y->data)[e * k + i] = (float)(i == c);
        }
    }
    return NB_OK;
}

/* ---- minibatches ---------------------------------------------------------------------------- */

nb_status nb_batcher_init(nb_batcher *b, const nb_dataset *ds, int64_t batch, int shuffle,
                          uint64_t seed)
{
    *b = (nb_batcher){0};
    if (batch < 1) return nb_error(NB_ERR_ARG, "nb_batcher_init: batch size %" PRId64 " < 1", batch);
    int64_t *order = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *order);
    if (!order)
        return nb_error(NB_ERR_NOMEM, "nb_batcher_init: cannot allocate an order of %" PRId64
                        " indices", ds->n);
    *b = (nb_batcher){.ds = ds, .order = order, .batch = batch, .seed = seed, .shuffle = shuffle};
    nb_batcher_epoch(b, 0);
    return NB_OK;
}

void nb_batcher_epoch(nb_batcher *b, int64_t epoch)
{
    const int64_t n = b->ds->n;
    b->pos = 0;
    for (int64_t i = 0; i < n; i++) b->order[i] = i;
    if (!b->shuffle) return;
    /* a fresh stream per epoch, so that an epoch's order never depends on the ones before */
    const nb_rng base = nb_rng_seed(b->seed);
    nb_rng r = nb_rng_fork(&base, (uint64_t)epoch);
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)nb_rng_below(&r, (uint64_t)i + 1);
        const int64_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

int64_t nb_batcher_next(nb_batcher *b, const int64_t **idx)
{
    *idx = b->order ? b->order + b->pos : NULL;
    if (!b->order) return 0;
    const int64_t left = b->ds->n - b->pos, k = left < b->batch ? left : b->batch;
    if (k <= 0) return 0;
    b->pos += k;
    return k;
}

void nb_batcher_free(nb_batcher *b)
{
    free(b->order);
    *b = (nb_batcher){0};
}
